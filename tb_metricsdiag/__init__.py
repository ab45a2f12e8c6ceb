"""tb-metricsdiag: a TensorBoard tab that tells whether a classifier is actually good.

``MetricsDiagCallback`` and ``MetricsDiagWriter`` are imported lazily: the TensorBoard backend
imports this package and must not pull in TensorFlow, and the writer needs only NumPy and
TensorBoard.
"""

from tb_metricsdiag.format.schema import PLUGIN_NAME
from tb_metricsdiag.version import VERSION as __version__

__all__ = ["MetricsDiagCallback", "MetricsDiagWriter", "PLUGIN_NAME", "__version__"]


def __getattr__(name):
    if name == "MetricsDiagCallback":
        from tb_metricsdiag.writing.keras_callback import MetricsDiagCallback

        return MetricsDiagCallback
    if name == "MetricsDiagWriter":
        from tb_metricsdiag.writing.event_writer import MetricsDiagWriter

        return MetricsDiagWriter
    raise AttributeError("module 'tb_metricsdiag' has no attribute %r" % name)
