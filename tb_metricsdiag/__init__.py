"""tb-metricsdiag: a TensorBoard tab that tells whether a classifier is actually good.

``MetricsDiagCallback`` is imported lazily: the TensorBoard backend imports this package and
must not pull in TensorFlow.
"""

from tb_metricsdiag.format.schema import PLUGIN_NAME
from tb_metricsdiag.version import VERSION as __version__

__all__ = ["MetricsDiagCallback", "PLUGIN_NAME", "__version__"]


def __getattr__(name):
    if name == "MetricsDiagCallback":
        from tb_metricsdiag.writing.keras_callback import MetricsDiagCallback

        return MetricsDiagCallback
    raise AttributeError("module 'tb_metricsdiag' has no attribute %r" % name)
