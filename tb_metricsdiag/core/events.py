"""Problems met while recording, after training began: their kinds, named once.

From train begin on a writer never raises (a long training run must not die for its
diagnostics): what goes wrong is written as an event, ``{"kind", "message", ...}``, under the
run's events tag, and the diagnostics report it (`diagnostics/recording.py`,
`diagnostics/training.py`). Each kind has one constructor here, used by every writer.
"""

BAD_BATCH = "bad_batch"  # a batch whose labels or outputs did not fit: left out
CALLBACK_ERROR = "callback_error"  # an epoch that could not be recorded at all
NONFINITE_PREDICTIONS = "nonfinite_predictions"  # NaN or infinite scores: left out
DISTRIBUTED_COUNTS = "distributed_counts"  # processes' counts summed as they are

# The kinds that say the recording itself went wrong (NaN predictions say the model did).
RECORDING_PROBLEMS = (CALLBACK_ERROR, BAD_BATCH, DISTRIBUTED_COUNTS)


def bad_batch(split, error):
    """A batch of ``split`` left out: its labels or outputs did not fit (``error``)."""
    return {"kind": BAD_BATCH, "split": split, "message": str(error)}


def callback_error(error):
    """An epoch the writer could not record: ``error``, an exception."""
    return {"kind": CALLBACK_ERROR, "message": "%s: %s" % (type(error).__name__, error)}


def nonfinite_predictions(split, count):
    """``count`` predictions of ``split`` left out of the counts as NaN or infinite."""
    return {
        "kind": NONFINITE_PREDICTIONS,
        "split": split,
        "count": int(count),
        "message": "%d predictions were NaN or infinite and were left out of the counts" % count,
    }


def distributed_counts(split, message):
    """The processes' rows of ``split`` were summed as they are (``message`` says why)."""
    return {"kind": DISTRIBUTED_COUNTS, "split": split, "message": message}
