"""``tensorboard`` with or without the metricsdiag plugin, for `backend_latency`.

Usage: ``python _tensorboard_app.py with|without TENSORBOARD_ARGS...``. "without" serves
TensorBoard's own plugins and every installed plugin but this one, as if tb-metricsdiag were
not installed; "with" adds this checkout's `MetricsDiagLoader`.
"""

import sys

import _common  # noqa: F401 (puts this checkout first on sys.path)
from absl import app
from tensorboard import default, program
from tensorboard.plugins import base_plugin


def _plugins(with_plugin):
    others = [
        plugin
        for plugin in default.get_dynamic_plugins()
        if not getattr(plugin, "__module__", "").startswith("tb_metricsdiag")
    ]
    plugins = default.get_static_plugins() + others
    if with_plugin:
        from tb_metricsdiag.backend.plugin import MetricsDiagLoader

        plugins.append(MetricsDiagLoader)
    return plugins


def main():
    mode = sys.argv.pop(1)
    if mode not in ("with", "without"):
        raise SystemExit("first argument: 'with' or 'without' (the plugin)")
    tensorboard = program.TensorBoard(plugins=_plugins(mode == "with"))
    try:
        app.run(tensorboard.main, flags_parser=tensorboard.configure)
    except base_plugin.FlagsError as error:
        raise SystemExit("Error: %s" % error) from error


if __name__ == "__main__":
    main()
