"""The JSON output of the report. Pure: no I/O."""

import json


def format_json(reports, baseline=None, skipped=()):
    """``{"runs": [{"run", "findings", "not_run", ...}], "skipped": [{"reason", "count",
    "paths"}]}`` as strict JSON, with ``"baseline": {"run", "step"}`` when a baseline run was
    compared with.
    """
    document = {"runs": reports, "skipped": list(skipped)}
    if baseline is not None:
        document["baseline"] = baseline
    return json.dumps(document, indent=2, allow_nan=False) + "\n"
