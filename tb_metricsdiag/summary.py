"""The `tf.summary` writers of metricsdiag data, for custom TensorFlow training loops.

The public home of the functions `MetricsDiagCallback` itself uses (defined in
`tb_metricsdiag.writing.tf_summary`). Call them inside ``with writer.as_default():``::

    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        summary.write_evaluation(y_val, model(x_val), step=epoch, from_logits=True)
        summary.write_logs({"loss": loss, "val_loss": val_loss}, step=epoch)
"""

from tb_metricsdiag.writing.tf_summary import *  # noqa: F403 (the public names)
from tb_metricsdiag.writing.tf_summary import __all__  # noqa: F401
