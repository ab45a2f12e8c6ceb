"""Finds the tab's frontend files and resolves request paths to them safely. No HTTP.

Installed, the files of ``frontend/`` are the package data of ``tb_metricsdiag.frontend``
(``setup.py`` maps the folder), i.e. ``tb_metricsdiag/frontend/`` inside the installed
package. In a source checkout or an editable install they stay in ``frontend/`` beside the
``tb_metricsdiag`` folder. The package folder is looked at first so that an installed copy
never serves files of some unrelated checkout.
"""

import os

import tb_metricsdiag

# Only these file types are served; anything else (``__init__.py``, editor backups) is not.
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}


def frontend_dir():
    """The folder holding the tab's frontend files (it may not exist yet)."""
    package_dir = os.path.dirname(os.path.abspath(tb_metricsdiag.__file__))
    installed = os.path.join(package_dir, "frontend")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(package_dir), "frontend")


def resolve(root, relative_path):
    """The file under ``root`` that ``relative_path`` names and its content type, or None.

    Args:
      root: the static folder.
      relative_path: the request path below the plugin's route prefix, with ``/``
        separators.

    Returns:
      ``(path, content_type)``, or None unless the path names a regular file of a served
      type that lies inside ``root``: empty, hidden (``.name``), ``..`` or backslash
      segments, NUL bytes and links leading outside ``root`` are all refused.
    """
    segments = relative_path.split("/")
    if not relative_path or "\\" in relative_path or "\x00" in relative_path:
        return None
    if any(not segment or segment.startswith(".") for segment in segments):
        return None
    content_type = CONTENT_TYPES.get(os.path.splitext(segments[-1])[1].lower())
    if content_type is None:
        return None
    real_root = os.path.realpath(root)
    path = os.path.realpath(os.path.join(real_root, *segments))
    if not path.startswith(real_root + os.sep) or not os.path.isfile(path):
        return None
    return path, content_type
