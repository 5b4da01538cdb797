"""lec_cosim.json_codec: orjson's speed with the standard library's meaning. Every message value is json.loads' of
json.dumps' text, every float text is repr's, on the corners where orjson alone differs (NaN written as null,
non-string keys, big integers, exponent forms)."""

import json
import math

import numpy as np
import pytest

from lec_cosim.json_codec import dumps, float_reprs, loads


def _every_kind_of_float() -> np.ndarray:
    rng = np.random.default_rng(11)
    powers = [float(f"{m}e{e}") for e in range(-323, 308) for m in ("1", "-1.2345678901234567", "9.99999999")]
    bits = rng.integers(0, 2 ** 63, 300_000, dtype=np.int64).view(np.float64)
    bits = np.concatenate([bits, -bits])
    edges = [0.0, -0.0, 5e-324, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 1.0, -1.0, 0.1, 100.0,
             math.nan, math.inf, -math.inf, 2.0 ** 53, 2.0 ** 53 + 2]
    return np.concatenate([np.array(powers), bits, np.array(edges), rng.random(100_000) * 10.0,
                           rng.standard_normal(100_000) * 1e3])


def test_float_texts_are_repr_for_every_kind_of_float():
    values = _every_kind_of_float()
    assert float_reprs(values) == [float.__repr__(v) for v in values.tolist()]
    assert float_reprs(np.zeros(0)) == []
    assert float_reprs(np.array([0.5])) == ["0.5"]
    assert float_reprs(values[::7]) == [float.__repr__(v) for v in values[::7].tolist()]  # a strided view


def _same(a, b) -> bool:
    return json.dumps(a) == json.dumps(b)  # NaN != NaN: compared as the standard library writes them


@pytest.mark.parametrize("payload", [
    {"periods": [0, 1], "participant": "LOAD1", "orders": [[["buy", 0.158, 0.30000000000000004]]]},
    {"price_eur_per_kwh": [None, 0.2], "volume_kwh": [0.0, -0.0]},  # None: the standard library writes it
    {"x": [math.nan, math.inf, -math.inf, 1e-05, 1e+16, 5e-324]},  # orjson would write null for NaN
    {1: "an integer key", 2.5: "a float key"},  # orjson refuses non-string keys
    {"big": 2 ** 70, "neg": -(2 ** 65)},  # beyond 64 bits
    {"s": "é \" \n \u0000 \U0001f600 null"},  # escapes, non-ASCII, a NUL, and the word null in a string
    [np.float64(0.1), 3, True, False, (1, 2)],  # numpy's float, a tuple
    {"nested": {"a": [{"b": [1.5, [2.5, {"c": None}]]}]}},
    [], {}, "text", 12, 1.0,
])
def test_a_message_reads_back_as_the_standard_library_writes_and_reads_it(payload):
    text = dumps(payload)
    assert isinstance(text, bytes) and b"\x00" not in text  # a C string for HELICS
    assert _same(loads(text), json.loads(json.dumps(payload)))
    assert _same(json.loads(text), json.loads(json.dumps(payload)))  # any JSON reader (NaN: Python's) reads it


def test_every_float_of_a_message_reads_back_to_its_bits():
    values = _every_kind_of_float()
    finite = values[np.isfinite(values)].tolist()
    back = loads(dumps({"v": finite}))["v"]
    assert np.array_equal(np.array(back).view(np.int64), np.array(finite).view(np.int64))
    back = loads(json.dumps({"v": values.tolist()}))["v"]  # the standard library's text, NaN and all
    assert np.array_equal(np.array(back), values, equal_nan=True)


def test_what_json_cannot_write_fails_as_the_standard_library_fails():
    import dataclasses
    import datetime

    @dataclasses.dataclass
    class Point:
        x: int

    for payload in ({"set": {1, 2}}, {(1, 2): "a tuple key"}, {"when": datetime.date(2016, 1, 1)},
                    {"point": Point(1)}):
        with pytest.raises(TypeError):
            json.dumps(payload)
        with pytest.raises(TypeError):
            dumps(payload)


def test_subclasses_are_written_as_the_standard_library_writes_them():
    import enum

    class Name(str):
        pass

    class Level(enum.IntEnum):
        HIGH = 3

    payload = {Name("key"): [Name("a"), Level.HIGH], "list": type("Row", (list,), {})([1.5])}
    assert dumps(payload) == json.dumps(payload).encode()


@pytest.mark.parametrize("data", [b"\xef\xbb\xbf[1]", b"[1, \xff]", "[\"\\ud800\"]", '"\ud800"'])
def test_what_reads_otherwise_reads_as_the_messages_were_read_before(data):
    """Before: ``json.loads(bytes.decode())`` (a byte order mark an error, strict UTF-8), and str as it is."""
    def before():
        return json.loads(data.decode() if isinstance(data, bytes) else data)

    try:
        expected = before()
    except (ValueError, UnicodeError) as exc:
        with pytest.raises(type(exc)):
            loads(data)
    else:
        assert loads(data) == expected


def test_the_markets_messages_take_the_fast_path(monkeypatch):
    """A day's orders and answers (floats down to 1e-4 with their leading zeros: ``0.0024422321250948953``, 19
    digits) are written and read by orjson, not by the standard library's fallback."""
    import lec_cosim.json_codec as codec

    def refused(*args, **kwargs):
        raise AssertionError("the standard library's path")

    monkeypatch.setattr(codec.json, "loads", refused)
    monkeypatch.setattr(codec.json, "dumps", refused)
    message = {"periods": list(range(24)), "participants": {
        "LOAD1": [[["buy", 0.158, 0.0024422321250948953], ["sell", 0.045, 12345.678901234567]]] * 24,
        "CHP1": [[["sell", 0.2802047004398423, 0.00010000000000000009]]] * 24}}
    assert loads(dumps(message)) == message


@pytest.mark.parametrize("text", ["12345678901234567890", "[1, -98765432109876543210]", '{"a":\n 18446744073709551616}',
                                  '{"a": 1, "b":[0.5,\t99999999999999999999.0]}'])
def test_integers_beyond_64_bits_read_as_the_standard_library_reads_them(text):
    assert _same(loads(text), json.loads(text)) and _same(loads(text.encode()), json.loads(text))
