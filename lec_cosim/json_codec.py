"""JSON messages and float texts, written and read by orjson's C code with the standard library's meaning.

The federates' messages are JSON, and a year of the local market sends ~2,000 of them of up to a few hundred kB
(a day's orders, answers and book): ``json.dumps`` and ``json.loads`` were, after the garbage collector, the largest
item of the market's and the participants' profiles, and the recorder formats ~15 M floats with ``repr``
(households.csv alone is 181 MB). orjson does both several times faster (a million floats: 0.64 s by ``repr``,
0.14 s). Its meaning differs from the standard library's in a few corners, so where it may differ this module
goes to the standard library, and every value sent, read or written is the one the standard library gives:

- NaN and infinities: orjson writes ``null``. A message whose orjson text holds ``null`` anywhere (a None, a NaN,
  or the word in a string) is written by ``json.dumps`` instead: NaN stays ``NaN``, as before.
- Keys that are not strings, integers beyond 64 bits, subclasses of str, int, list and dict, dataclasses, dates
  and objects orjson does not know: it raises ``TypeError``; ``json.dumps`` then writes them (or raises its own
  error). Two kinds the standard library refuses are written all the same: ``enum.Enum`` members (as their value)
  and ``uuid.UUID`` (as its text); no message of the project holds either.
- Reading: ``NaN``, ``Infinity``, anything orjson refuses, and a text with an integer of 19 digits or more (orjson
  reads one beyond 64 bits as a float) go to ``json.loads``.
  Floats are read correctly rounded by both, so the same text gives the same double.
- A float's text: orjson's shortest round-trip digits are Python's ``repr`` for every finite float from 1e-4 to
  1e16 (checked on every power of ten and ~600 k random bit patterns, ``tests/test_json_codec.py``); outside
  that range (``1e-05`` against orjson's ``0.00001``), NaN and infinities, ``repr`` writes it.

Non-ASCII text goes out as UTF-8 rather than ``\\uXXXX`` escapes; both read back as the same string.
"""

from __future__ import annotations

import json

import numpy as np
import orjson

_REPR_LOW, _REPR_HIGH = 1e-4, 1e16
"""Finite floats of magnitude in [low, high) have the same text from orjson as from ``repr`` (and zero)."""

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19
"""19 digits (read as zeros): a number with that many digits in a row that are not a float's fraction is an
integer orjson may read otherwise than the standard library (beyond 64 bits, as a float); a fraction (up to 20
digits here: ``0.00012345678901234567``) follows its point."""


def _may_hold_long_integer(data: bytes) -> bool:
    # C loops over the text (a regular expression took longer than orjson's parse): every run of 19 digits is a
    # fraction's, right after its point, or the text may hold a long integer (or a fraction of 38 digits or more,
    # which the standard library then reads: the same value)
    digits = data.translate(_DIGITS_AS_ZERO)
    return digits.count(_LONG_RUN) != digits.count(b"." + _LONG_RUN)


_AS_THE_STANDARD_LIBRARY = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | \
    orjson.OPT_PASSTHROUGH_SUBCLASS
"""What orjson would write and the standard library refuses (dataclasses, dates), or writes its own way (subclasses
of str, int, list and dict), it raises on: ``json.dumps`` writes (or refuses) them."""


def dumps(payload) -> bytes:
    """``json.dumps(payload).encode()``'s meaning (the same value read back by any JSON reader that reads it)."""
    try:
        text = orjson.dumps(payload, option=_AS_THE_STANDARD_LIBRARY)
    except TypeError:  # non-string keys, big integers, subclasses, objects orjson does not serialise
        return json.dumps(payload).encode()
    if b"null" in text:  # a None, or a NaN / infinity orjson wrote as null: the standard library's text
        return json.dumps(payload).encode()
    return text


def loads(data: bytes | str):
    """``json.loads(data)``'s value, bytes read as ``json.loads(data.decode())`` reads them (strict UTF-8, a byte
    order mark an error: as the federates read messages before)."""
    if _may_hold_long_integer(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data):
        return _standard_loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:  # NaN, Infinity, or what the standard library may read and orjson not
        return _standard_loads(data)


def _standard_loads(data: bytes | str):
    return json.loads(data.decode() if isinstance(data, bytes) else data)


def float_reprs(values: np.ndarray) -> list[str]:
    """``repr`` of each float of a 1-D float64 array (NaN as ``'nan'``), computed in C."""
    if not len(values):
        return []
    fields = orjson.dumps(values.tolist())[1:-1].decode().split(",")  # inside the list's brackets
    magnitude = np.abs(values)
    with np.errstate(invalid="ignore"):
        odd = np.flatnonzero(~((magnitude >= _REPR_LOW) & (magnitude < _REPR_HIGH)) & (magnitude != 0))
    for i in odd.tolist():  # NaN, infinities, tiny and huge floats: repr's own text
        fields[i] = float(values[i]).__repr__()
    return fields
