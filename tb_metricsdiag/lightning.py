"""`MetricsDiagCallback` for PyTorch Lightning (``lightning`` or ``pytorch_lightning``)::

    from tb_metricsdiag.lightning import MetricsDiagCallback

    trainer = lightning.pytorch.Trainer(callbacks=[MetricsDiagCallback(class_names=names)])

Defined in `tb_metricsdiag.writing.lightning_callback`; needs PyTorch and Lightning, not
TensorFlow. Importing ``tb_metricsdiag`` alone imports neither.
"""

from tb_metricsdiag.writing.lightning_callback import MetricsDiagCallback

__all__ = ["MetricsDiagCallback"]
