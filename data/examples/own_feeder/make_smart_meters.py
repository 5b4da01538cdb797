"""Write smart_meters_kw.csv, the tutorial's smart-meter readings, from the shipped SimBench household profiles.

The tutorial "Your own feeder and households" (docs/tutorials/own-feeder.md) needs what a user would export from
a meter-data platform: a ``time`` column of local times and one column of kW per household, every 15 minutes.
No such data of real households ships with lec-cosim, so this script derives it, the same way every time, from
``data/household/simbench_H0_household_profiles_2016_15min.csv`` (SimBench's household profiles H0-A, B, C, G and L,
relative to each profile's yearly peak; provenance and licence in data/README.md):

* household h takes the ``_pload`` column of its profile (``HOUSEHOLDS`` below) times its peak in kW, rounded to
  the watt;
* the week 6-12 June 2016 (672 quarter-hours); a household with ``weeks_back`` k takes the values of the week k
  weeks earlier (same weekdays), so that households sharing a profile do not move in step;
* SimBench's rows are taken by position, row k being k x 15 min after 2016-01-01 00:00 on the simulation clock
  (local standard time, UTC+01:00 all year): its own time labels follow German summer time and are not used
  (see data/README.md). The times written are on that clock, ``YYYY-MM-DDTHH:MM``.

Run from anywhere: ``python data/examples/own_feeder/make_smart_meters.py`` (rewrites the file beside it; a test
checks the shipped file is what it writes).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
PROFILES = HERE.parents[1] / "household" / "simbench_H0_household_profiles_2016_15min.csv"
OUTPUT = HERE / "smart_meters_kw.csv"
FIRST_DAY = pd.Timestamp("2016-06-06")
DAYS = 7
CLOCK_START = pd.Timestamp("2016-01-01")  # row 0 of the SimBench file

HOUSEHOLDS = [  # (household, SimBench profile, weeks back, peak kW): the names of households.csv
    ("Birch Lane 1", "H0-A", 0, 3.0),
    ("Birch Lane 2", "H0-B", 0, 4.0),
    ("Birch Lane 3", "H0-C", 0, 7.0),
    ("Birch Lane 4", "H0-G", 0, 5.0),
    ("Birch Lane 5", "H0-L", 0, 6.0),
    ("Birch Lane 6", "H0-A", 1, 3.5),
    ("Mill Road 1", "H0-B", 1, 3.5),
    ("Mill Road 2", "H0-C", 1, 8.0),
    ("Mill Road 3", "H0-G", 1, 4.5),
    ("Mill Road 4", "H0-L", 1, 5.5),
    ("Mill Road 5", "H0-A", 2, 3.0),
    ("Church Close 1", "H0-B", 2, 4.5),
    ("Church Close 2", "H0-G", 2, 9.0),
    ("Church Close 3", "H0-C", 2, 3.5),
    ("Church Close 4a", "H0-L", 2, 4.0),
    ("Church Close 4b", "H0-A", 3, 2.5),
]


def smart_meters() -> pd.DataFrame:
    """The readings: column ``time`` and one column of kW per household."""
    table = pd.read_csv(PROFILES)
    steps = DAYS * 96
    first = int((FIRST_DAY - CLOCK_START) / pd.Timedelta(minutes=15))
    times = pd.date_range(FIRST_DAY, periods=steps, freq="15min")
    out = {"time": times.strftime("%Y-%m-%dT%H:%M")}
    for household, profile, weeks_back, peak_kw in HOUSEHOLDS:
        start = first - weeks_back * 7 * 96
        values = table[f"{profile}_pload"].to_numpy()[start:start + steps]
        out[household] = (values * peak_kw).round(3)
    return pd.DataFrame(out)


if __name__ == "__main__":
    smart_meters().to_csv(OUTPUT, index=False, float_format="%.3f", lineterminator="\n")
    print(f"wrote {OUTPUT}")
