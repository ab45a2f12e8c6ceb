"""Plain, strict-JSON values from NumPy data: one conversion shared by every JSON writer."""

import math

import numpy as np


def to_json_value(value):
    """``value`` with NumPy arrays and scalars turned into Python ones, tuples into lists, and
    NaN / ±infinity into None (strict JSON has no NaN: an undefined ratio is ``null``).
    """
    if isinstance(value, dict):
        return {str(key): to_json_value(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        # Whole arrays at once: a 1,000-class matrix is a million values.
        if value.dtype.kind in "biu":
            return value.tolist()  # a 0-d array becomes its scalar
        if value.dtype.kind == "f":
            finite = np.isfinite(value)
            value = value.astype(object)
            value[~finite] = None
            return value.tolist()
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_json_value(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
