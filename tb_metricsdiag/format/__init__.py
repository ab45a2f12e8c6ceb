"""The event-file contract, one module per stored format.

`schema` (tags, kinds, versions, split names, limits), `metadata` (plugin content: created and
parsed), `threshold_grid`, `threshold_counts`, `confusion_counts`, `histograms`, `stored_json`,
the example records of format version 6 (`example_records`, `example_ids`, `previews`), and
what the encodings share: `integer_counts` (the compact integer types) and `packed` (payloads
read with every length checked first).
"""
