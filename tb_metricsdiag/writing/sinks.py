"""Where `MetricsDiagCallback` writes: `records.Record` lists, by one of two ways to the same
event files.

On the TensorFlow backend, ``tf.summary`` (as `tf_summary` writes the same records in a custom
TensorFlow loop); on JAX and PyTorch, the TensorFlow-free `MetricsDiagWriter`, so that those
trainings need no TensorFlow. The records are the same, so are the tags and the stored bytes.
"""

import os

import keras


class NullSink:
    """Writes nothing: a non-chief worker of a multi-worker training."""

    def write(self, written, step):
        """Write the `records.Record` list ``written`` at ``step``."""

    def flush(self):
        """Write what is buffered to disk."""


class SummarySink(NullSink):
    """Through a ``tf.summary`` file writer."""

    def __init__(self, log_dir):
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(os.fspath(log_dir))

    def write(self, written, step):
        # One event for all of a step's records: a ``tf.summary.write`` per record costs an
        # eager op each, which the headline scalars multiply. The tensors are stored as
        # ``tf.summary.write`` stores them (`event_writer.tensor_proto`).
        from tb_metricsdiag.writing.event_writer import summary_of

        written = list(written)
        if not written:
            return
        with self._writer.as_default():
            self._tf.summary.experimental.write_raw_pb(
                summary_of(written).SerializeToString(), step=step
            )

    def flush(self):
        self._writer.flush()


class WriterSink(NullSink):
    """Through `MetricsDiagWriter`, which needs neither TensorFlow nor any other framework."""

    def __init__(self, log_dir):
        from tb_metricsdiag.writing.event_writer import MetricsDiagWriter

        self._writer = MetricsDiagWriter(log_dir)

    def write(self, written, step):
        self._writer.write_records(written, step)

    def flush(self):
        self._writer.flush()


def create_sink(log_dir, write=True):
    """The sink of a callback on this process's Keras backend (`NullSink` when not ``write``)."""
    if not write:
        return NullSink()
    if keras.backend.backend() == "tensorflow":
        return SummarySink(log_dir)
    return WriterSink(log_dir)
