"""What the local market's federates do faster must give what the slower way gave: a message's JSON read by the
runtime (lec_cosim/json_codec.py, through federates/common.py) is json.loads' value or error, and a table a CsvStream
writes a chunk at a time (lec_cosim/studies/local_market/results.py) is the bytes of pandas' to_csv of the whole
table."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from lec_cosim.json_codec import loads as _json_loads
from lec_cosim.studies.local_market.results import CsvStream


@pytest.mark.parametrize("text", [
    ('{"period": 3, "participant": "LOAD1", "orders": [{"side": "buy", "price_eur_per_kwh": 0.158, '
     '"quantity_kwh": 0.30000000000000004}]}'),
    '{"price_eur_per_kwh": null, "x": [NaN, Infinity, -Infinity, -0.0, 1e-05, 1e+16], "s": "\\u00e9\\"\\n"}',
    ' {"blank": "around"} \n',  # blanks around a value: json.loads' way
    "[]", "12", '"text"',
])
def test_a_message_is_read_as_json_loads_reads_it(text):
    got, expected = _json_loads(text), json.loads(text)
    assert json.dumps(got) == json.dumps(expected)  # NaN != NaN: compared as text


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "{'a': 1}", "[1, 2,]"])
def test_a_message_that_is_not_json_fails_as_json_loads_fails(text):
    with pytest.raises(json.JSONDecodeError) as ours:
        _json_loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_a_table_streamed_in_chunks_is_the_table_to_csv_writes(tmp_path):
    rng = np.random.default_rng(3)
    day = rng.random(50) * 3.0
    # the same values day after day (as the loads), zeros of both signs, NaN, infinities, floats whose repr is
    # in exponent form (tiny and huge: orjson's digits are not repr's there), and values seen only once
    odd = np.array([0.0, -0.0, np.nan, -0.0, 0.0, np.nan, np.inf, -np.inf, 1e-05, -3.2e-07, 5e-324, 1e16, 2.5e20,
                    9.999e-05, 1e-04, 9999999999999998.0])
    values = np.concatenate([day, day, odd, rng.random(50), day])
    n = len(values)
    frame = pd.DataFrame({"time": np.array([f"2016-05-{1 + k // 50:02d}T00:00:00" for k in range(n)], dtype=object),
                          "participant": np.array([f"LOAD{k % 55 + 1}" for k in range(n)], dtype=object),
                          "bus": np.arange(n) % 907, "load_kw": values, "net_kw": -values})
    stream = CsvStream(tmp_path / "t.csv", list(frame.columns))
    for start in range(0, n, 37):
        stream.append({c: frame[c].to_numpy()[start:start + 37] for c in frame.columns})
    written = stream.close().read_text(encoding="utf-8")
    expected = io.StringIO()
    frame.to_csv(expected, index=False)
    assert written == expected.getvalue()


def test_a_federate_process_takes_its_start_up_out_of_the_collectors_passes():
    import gc

    from federates.common import frozen_after

    def build(fed):
        fed.kept = [[k] for k in range(1000)]  # what a start-up builds and keeps

        def step(k, t):
            return None

        step.finish = "its attributes kept"
        return step

    class Fed:
        pass

    fed = Fed()
    before = gc.get_freeze_count()
    try:
        step = frozen_after(build)(fed)
        assert step.finish == "its attributes kept"
        assert gc.get_freeze_count() >= before + 1000  # the start-up's lists are frozen
        scanned = {id(x) for x in gc.get_objects()}  # the generations the collector passes over
        assert not any(id(x) in scanned for x in fed.kept)
    finally:
        gc.unfreeze()
