"""The local-market tables are written without pandas where it is safe (lec_cosim/studies/local_market/results.py,
csv_rows): the bytes must be those of pandas' to_csv, and what is not known to be the same goes to pandas."""

import io

import numpy as np
import pandas as pd
import pytest

from lec_cosim.studies.local_market.results import _write_csv, csv_rows

EDGES = [0.0, -0.0, 1.0, -1.5, 0.1, 1 / 3, 1e16, 1e-4, 9.999e-5, 1e-320, 5e-324, 1.7976931348623157e308, 123456789.125,
         np.nan, np.inf, -np.inf, 2.0 ** 53, 0.30000000000000004]


def _pandas(frame: pd.DataFrame, header: bool) -> str:
    out = io.StringIO()
    frame.to_csv(out, index=False, header=header)
    return out.getvalue()


def _ours(frame: pd.DataFrame, header: bool) -> str:
    out = io.StringIO()
    _write_csv(out, frame, list(frame.columns), header=header)
    return out.getvalue()


@pytest.mark.parametrize("header", [True, False])
def test_floats_ints_and_names_are_written_as_pandas_writes_them(header):
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2 ** 63, size=2000, dtype=np.int64)
    random = bits.view(np.float64)
    random = random[np.isfinite(random)]
    floats = np.concatenate([np.array(EDGES), random, rng.normal(size=500) * 10.0 ** rng.integers(-12, 12, 500)])
    n = len(floats)
    frame = pd.DataFrame({"time": np.array([f"2016-05-{1 + k % 28:02d}T00:00" for k in range(n)], dtype=object),
                          "participant": np.array([f"LOAD{k % 55 + 1}" for k in range(n)], dtype=object),
                          "bus": np.arange(n) % 907, "value_kw": floats, "other_kw": floats[::-1].copy()})
    assert csv_rows(frame, list(frame.columns)) is not None  # the fast path, not pandas
    assert _ours(frame, header) == _pandas(frame, header)


@pytest.mark.parametrize("column", [
    pd.array([1, None, 3], dtype="Int64"),  # a nullable integer: pandas writes 1, "", 3
    pd.Categorical(["a", "b", "a"]),
    np.array(["x,y", "plain", 'say "hi"'], dtype=object),  # fields that need quotes
    np.array([True, False, True]),
    np.array([1.5, 2.5, 3.5], dtype=np.float32),
])
def test_what_pandas_writes_differently_goes_to_pandas(column):
    frame = pd.DataFrame({"a": column, "b": [1.0, np.nan, -0.0]})
    assert csv_rows(frame, ["a", "b"]) is None
    assert _ours(frame, True) == _pandas(frame, True)


def test_an_empty_table_is_its_header():
    frame = pd.DataFrame({"a": np.zeros(0), "b": np.zeros(0, dtype=np.int64)})
    assert _ours(frame, True) == _pandas(frame, True)
