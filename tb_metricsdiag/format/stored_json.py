"""Stored text and JSON: the text of a string datum, JSON decoded within a size and a nesting
depth checked before decoding, and the epoch logs as strict JSON (NaN and the infinities
spelled as strings).

Pure NumPy; a problem with what is read is a `FormatError`.
"""

import json
import re

import numpy as np

from tb_metricsdiag.format.schema import MAX_JSON_DEPTH, MAX_TEXT_BYTES, FormatError

# A JSON string, escapes included: removed before the nesting of the rest is measured.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def decode_json(text, what, max_bytes=MAX_TEXT_BYTES):
    """The JSON value of ``text`` (str or UTF-8 bytes), of at most ``max_bytes`` bytes and
    `MAX_JSON_DEPTH` levels of arrays and objects, both checked before decoding.

    Raises:
      FormatError: ``text`` is larger or deeper than that, not UTF-8, or not JSON.
    """
    if len(text) > max_bytes:
        raise FormatError(
            "%s of %d bytes, more than the %d accepted" % (what, len(text), max_bytes)
        )
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            raise FormatError("%s is not UTF-8: %s" % (what, error)) from error
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise FormatError(
            "%s is nested %d levels deep, more than the %d accepted" % (what, depth, MAX_JSON_DEPTH)
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise FormatError("%s: not JSON (%s)" % (what, error)) from error


def _json_depth(text):
    """Deepest nesting of ``[`` and ``{`` in JSON ``text``, brackets inside strings left out;
    without recursion, so any depth is measured.
    """
    skeleton = np.frombuffer(_JSON_STRING.sub("", text).encode("utf-8"), dtype=np.uint8)
    if skeleton.size == 0:
        return 0
    steps = np.isin(skeleton, (ord("["), ord("{"))).astype(np.int64)
    steps -= np.isin(skeleton, (ord("]"), ord("}")))
    return int(max(0, np.cumsum(steps).max()))


# How `encode_logs` spells the values strict JSON has no number for.
_NON_FINITE_LOGS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def encode_logs(logs):
    """The JSON text of a `KIND_LOGS` summary: ``{key: number}`` of the numeric values of
    ``logs`` (a Keras ``logs`` dict), NaN and infinities as the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``, so that the JSON stays strict. Values that are not one
    number are left out. None when no value is.
    """
    values = {}
    for key, value in (logs or {}).items():
        try:
            number = float(np.asarray(value))
        except (TypeError, ValueError):
            continue
        if np.isnan(number):
            values[str(key)] = "NaN"
        elif np.isinf(number):
            values[str(key)] = "Infinity" if number > 0 else "-Infinity"
        else:
            values[str(key)] = number
    if not values:
        return None
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def decode_logs(text):
    """``{key: float}`` of a `KIND_LOGS` summary's JSON text (`encode_logs`).

    Raises:
      FormatError: the text is not a JSON object whose values are numbers or the spellings
        of `encode_logs` for NaN and the infinities.
    """
    document = decode_json(text, "stored logs")
    if not isinstance(document, dict):
        raise FormatError("stored logs are a JSON %s, expected an object" % type(document).__name__)
    values = {}
    for key, value in document.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values[key] = float(value)
        elif isinstance(value, str) and value in _NON_FINITE_LOGS:
            values[key] = _NON_FINITE_LOGS[value]
        else:
            raise FormatError("stored log %r is %r, expected a number" % (key, value))
    return values


def text_of(datum):
    """The text of a string datum (a scalar, or the first element of a string tensor)."""
    value = np.asarray(datum.numpy)
    if value.size == 0:
        raise FormatError("stored text is an empty tensor")
    raw = value.item() if value.shape == () else value.reshape(-1)[0]
    try:
        return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError as error:
        raise FormatError("stored text is not UTF-8: %s" % error) from error


def json_of(datum):
    """The JSON value of a string datum (run information, overlap, events), bounded as by
    `decode_json`.
    """
    return decode_json(text_of(datum), "stored JSON")
