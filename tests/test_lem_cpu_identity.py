"""What the local market's federates do faster must give what the slower way gave: a message's JSON read by the
runtime (federates/common.py, _json_loads) is json.loads' value or error, and a table a CsvStream writes a chunk at a
time, keeping the texts of the floats it has written (lec_cosim/studies/local_market/results.py), is the bytes of
pandas' to_csv of the whole table."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from federates.common import _json_loads
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


@pytest.mark.parametrize("repeats", [True, False])
def test_a_table_streamed_in_chunks_with_its_float_texts_kept_is_the_table_to_csv_writes(tmp_path, repeats):
    rng = np.random.default_rng(3)
    day = rng.random(50) * 3.0
    # the same values day after day (as the loads), zeros of both signs, NaN, and values seen only once
    values = np.concatenate([day, day, np.array([0.0, -0.0, np.nan, -0.0, 0.0, np.nan]), rng.random(50), day])
    n = len(values)
    frame = pd.DataFrame({"time": np.array([f"2016-05-{1 + k // 50:02d}T00:00:00" for k in range(n)], dtype=object),
                          "participant": np.array([f"LOAD{k % 55 + 1}" for k in range(n)], dtype=object),
                          "bus": np.arange(n) % 907, "load_kw": values, "net_kw": -values})
    stream = CsvStream(tmp_path / "t.csv", list(frame.columns), repeats=repeats)
    for start in range(0, n, 37):
        stream.append({c: frame[c].to_numpy()[start:start + 37] for c in frame.columns})
    written = stream.close().read_text(encoding="utf-8")
    expected = io.StringIO()
    frame.to_csv(expected, index=False)
    assert written == expected.getvalue()


def test_a_columns_float_texts_are_looked_up_while_they_repeat_and_are_reprs_either_way():
    from lec_cosim.studies.local_market.results import FloatTexts

    rng = np.random.default_rng(5)
    day, fresh = rng.random(1000), rng.random(1000)
    texts = FloatTexts()
    assert texts.fields(day) == [repr(x) for x in day.tolist()]  # all missed: next chunk without look-ups
    assert not texts.look_up
    assert texts.fields(fresh) == [repr(x) for x in fresh.tolist()]
    assert texts.look_up  # then tried again
    assert texts.fields(day) == [repr(x) for x in day.tolist()] and texts.look_up  # all found
