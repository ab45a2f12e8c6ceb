"""`MetricsDiagCallback` for the Hugging Face Transformers ``Trainer``::

    from tb_metricsdiag.transformers import MetricsDiagCallback

    cb = MetricsDiagCallback(class_names=None, log_dir=None)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=train,
                                   eval_dataset=val, compute_metrics=cb.compute_metrics(fn),
                                   callbacks=[cb])

Defined in `tb_metricsdiag.writing.transformers_callback`; needs ``transformers`` and PyTorch,
not TensorFlow. Importing ``tb_metricsdiag`` alone imports neither.
"""

from tb_metricsdiag.writing.transformers_callback import MetricsDiagCallback

__all__ = ["MetricsDiagCallback"]
