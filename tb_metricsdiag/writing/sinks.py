"""Where `MetricsDiagCallback` writes: one small interface, two ways to the same event files.

On the TensorFlow backend, ``tf.summary`` (the `tf_summary` functions, as a custom TensorFlow
loop uses them); on JAX and PyTorch, the TensorFlow-free `MetricsDiagWriter`, so that those
trainings need no TensorFlow. Both write the same tags and the same bytes in the counts.
"""

import os

import keras


class NullSink:
    """Writes nothing: a non-chief worker of a multi-worker training."""

    def run_info(self, info):
        pass

    def label_distribution(self, distribution, split, class_names):
        pass

    def overlap(self, overlap):
        pass

    def logs(self, logs, step):
        pass

    def counts(self, counts, step, split, class_names):
        pass

    def events(self, events, step):
        pass

    def flush(self):
        pass


class SummarySink(NullSink):
    """Through a ``tf.summary`` file writer and the `tf_summary` functions."""

    def __init__(self, log_dir):
        import tensorflow as tf

        from tb_metricsdiag.writing import tf_summary

        self._summary = tf_summary
        self._writer = tf.summary.create_file_writer(os.fspath(log_dir))

    def run_info(self, info):
        with self._writer.as_default():
            self._summary.write_run_info(info, step=0)

    def label_distribution(self, distribution, split, class_names):
        with self._writer.as_default():
            self._summary.write_label_distribution(distribution, 0, split, class_names)

    def overlap(self, overlap):
        with self._writer.as_default():
            self._summary.write_overlap(overlap, step=0)

    def logs(self, logs, step):
        with self._writer.as_default():
            self._summary.write_logs(logs, step=step)

    def counts(self, counts, step, split, class_names):
        with self._writer.as_default():
            self._summary.write_counts(counts, step, split, class_names)

    def events(self, events, step):
        with self._writer.as_default():
            self._summary.write_events(events, step=step)

    def flush(self):
        self._writer.flush()


class WriterSink(NullSink):
    """Through `MetricsDiagWriter`, which needs neither TensorFlow nor any other framework."""

    def __init__(self, writer):
        self._writer = writer

    def run_info(self, info):
        self._writer.add_run_info(info)

    def label_distribution(self, distribution, split, class_names):
        self._writer.add_label_distribution(distribution, split=split)

    def overlap(self, overlap):
        self._writer.add_overlap(overlap)

    def logs(self, logs, step):
        self._writer.add_logs(logs, step)

    def counts(self, counts, step, split, class_names):
        self._writer.add_counts(counts, step, split=split)

    def events(self, events, step):
        self._writer.add_events(events, step)

    def flush(self):
        self._writer.flush()


def create_sink(log_dir, class_names, thresholds, write=True):
    """The sink of a callback on this process's Keras backend (`NullSink` when not ``write``)."""
    if not write:
        return NullSink()
    if keras.backend.backend() == "tensorflow":
        return SummarySink(log_dir)
    from tb_metricsdiag.writing.event_writer import MetricsDiagWriter

    return WriterSink(MetricsDiagWriter(log_dir, class_names=class_names, thresholds=thresholds))
