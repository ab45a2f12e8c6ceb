"""The runs ``keras.callbacks.TensorBoard`` writes beside a training run: ``log_dir/train`` and
``log_dir/validation``, grouped with the run at ``log_dir`` into one training run.
"""

# Keras TensorBoard's sub-runs, and the prefix its validation metrics get in `logs`.
KERAS_SUBRUNS = {"train": "", "validation": "val_"}
KERAS_EPOCH_PREFIX = "epoch_"


def keras_parent(run):
    """(parent run, split) for a run named like Keras's sub-runs, else None."""
    head, _, tail = run.rpartition("/")
    if tail in KERAS_SUBRUNS:
        return head or ".", tail
    return None


def keras_subrun(parent, split):
    """The run name `keras_parent` maps to (``parent``, ``split``)."""
    return split if parent == "." else parent + "/" + split
