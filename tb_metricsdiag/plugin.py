"""Placeholder TensorBoard loader until the backend lands (issue 3)."""

from tensorboard.plugins import base_plugin


class MetricsDiagLoader(base_plugin.TBLoader):
    def load(self, context):
        return None
