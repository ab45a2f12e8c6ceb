"""The `tf.summary` writers of metricsdiag data, for custom TensorFlow training loops.

The public home of `tb_metricsdiag.writing.tf_summary`: they write the same records
(`tb_metricsdiag.writing.records`) as `MetricsDiagCallback` and `MetricsDiagWriter`, so the tab,
the routes and the CLI read them alike. Call them inside ``with writer.as_default():``::

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        summary.write_evaluation(y_val, model(x_val), step=epoch, from_logits=True)
        summary.write_logs({"loss": loss, "val_loss": val_loss}, step=epoch)
"""

from tb_metricsdiag.writing.tf_summary import *  # noqa: F403 (the public names)
from tb_metricsdiag.writing.tf_summary import __all__  # noqa: F401
