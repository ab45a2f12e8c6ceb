"""One strict-JSON conversion for every JSON writer (routes, findings, run info)."""

import json

import numpy as np

from tb_metricsdiag.core.json_values import to_json_value


def test_json_values_are_strict():
    value = {"a": np.array(3), "b": np.array([1.5, np.nan]), "c": (np.float32(np.inf), np.int64(2))}
    assert (
        json.dumps(to_json_value(value), allow_nan=False)
        == '{"a": 3, "b": [1.5, null], "c": [null, 2]}'
    )
