"""The TensorBoard backend: reader over the data provider, cache, views and the HTTP routes."""
