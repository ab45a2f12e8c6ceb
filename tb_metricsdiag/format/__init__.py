"""The event-file contract, one module per stored format.

`schema` (tags, kinds, versions, limits), `metadata` (plugin content: created and parsed),
`threshold_grid`, `threshold_counts`, `confusion_counts`, `histograms`, `stored_json`, and
`integer_counts` (the compact integer types the encodings share).
"""
