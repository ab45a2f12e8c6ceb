"""The writers: the `tf.summary` functions, the Keras callback and metric, and the framework adapters."""
