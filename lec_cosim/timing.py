"""Who holds a federation up: each federate's wall time per slot, written as it runs, and read back.

Every federate (``federates.common.Federate.run``) keeps a :class:`TimingLog` in its run folder:

- ``timing/<federate>.csv``, one row per slot (a granted time the federate acted at), columns
  :data:`SLOT_COLUMNS`: ``slot`` (index, from 0), ``slot_time_s`` (the slot's simulated time, s from
  the scenario start, phase offset included), ``granted_at_s`` (wall s from entering executing mode
  to the grant), ``wait_s`` (wall s blocked in the time request for the slot), ``work_s`` (wall s
  acting in the slot: reading, computing, publishing), ``messages_sent`` (messages sent from the
  federate's endpoints in the slot) and ``values_published`` (``publish*`` calls in the slot).
  The last row of a federate that failed is the slot it failed in (``work_s`` up to the failure).
- ``timing/<federate>.json``: start-up and state. ``process_started_unix_s``, ``created_s``,
  ``ready_s`` (its model built, executing mode requested) and ``startup_s`` (in executing mode: all
  federates ready), each wall s from the process start; ``period_s``, ``offset_s``,
  ``slots_planned`` (None: the federate's slots are generated as it goes); ``state``
  (``waiting`` for a grant, ``working`` in a slot, ``done`` or ``failed``) with
  ``state_slot_time_s`` and ``state_since_s`` (wall s from entering executing mode), and the
  totals so far ``slots_done``, ``work_s``, ``wait_s`` (and at the end ``stepping_s``).

Rows are buffered and written by a background thread every :data:`FLUSH_EVERY_S` seconds (the
time request releases Python's lock, so it writes while the federate waits), so a run that fails
or stalls keeps its timing up to a few seconds before it was killed, and its JSON says what each
federate was doing: the one ``working`` while all others are ``waiting`` holds the federation up.

The read side (:func:`read_timing`, :func:`hourly`, :func:`critical_federates`, :func:`totals`,
:func:`plot_timeline`) is what ``lec-cosim report`` shows. Only it imports numpy and pandas: the write side
runs in every federate and the watchdog (:mod:`lec_cosim.watchdog`) reads the state files, which need neither.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lec_cosim.files import write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

TIMING_DIR = "timing"
SLOT_COLUMNS = ("slot", "slot_time_s", "granted_at_s", "wait_s", "work_s", "messages_sent", "values_published")
FLUSH_EVERY_S = 2.0
"""How often the buffered rows are written (and the state file refreshed), wall seconds."""
CRITICAL_DEFINITION = (
    "The critical federate of an hour (marked) is the one with the most working wall time in it: no hour can "
    "take less wall time than its critical federate's work. Federates that read each other act in turn at their "
    "phase offsets; one that nobody else waits for (read only by the recorder, say) works on the other core while "
    "the rest go on to the next hours, so a run's wall time can be less than its hours' sum")


def process_started_unix_s(pid: int | None = None) -> float | None:
    """When this process (or ``pid``) started, Unix seconds (10 ms resolution); None off Linux.

    The start is counted in clock ticks after boot; it is placed on the Unix clock through the time since boot now
    (``CLOCK_BOOTTIME``), not through ``/proc/stat``'s ``btime``: that boot time is whole seconds, so starts came out
    up to a second early (0.6 s on the project's machine, 2026-12-07: every start-up figure that much too long)."""
    try:
        stat = Path(f"/proc/{pid or os.getpid()}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, starttime, clock ticks after boot
        now_unix, since_boot = time.time(), time.clock_gettime(time.CLOCK_BOOTTIME)
        return now_unix - (since_boot - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


# ---------------------------------------------------------------------------------------------
# Writing (in the federate)
# ---------------------------------------------------------------------------------------------
class TimingLog:
    """A federate's timing files (module docstring), buffered and flushed by a background thread.

    Parameters
    ----------
    output_dir
        The run folder; the files go to its ``timing/`` folder.
    federate
        The federate's name (the files' stem).
    created_unix_s
        When the federate was created (default: now).
    flush_every_s
        Seconds between writes of the buffered rows.
    """

    def __init__(self, output_dir: str | Path, federate: str, *, created_unix_s: float | None = None,
                 flush_every_s: float = FLUSH_EVERY_S):
        self.federate = federate
        self.folder = Path(output_dir) / TIMING_DIR
        self.csv_path = self.folder / f"{federate}.csv"
        self.json_path = self.folder / f"{federate}.json"
        self.flush_every_s = float(flush_every_s)
        self._rows: list[tuple] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._file = None
        self._entered = time.perf_counter()
        self.state: tuple[str, float | None, float] = ("starting", None, self._entered)
        self._written_state = None
        started = process_started_unix_s()
        created = time.time() if created_unix_s is None else created_unix_s
        self.info: dict = {"federate": federate, "process_started_unix_s": started,
                           "created_s": None if started is None else created - started}
        self.slots_done = 0
        self.work_s = self.wait_s = 0.0

    def ready(self) -> None:
        """The federate's model is built and it asks for executing mode: the state file says ``ready``.

        The launcher's watchdog reads it before executing mode (when no HELICS query can reach the
        federation without holding up its start): a federate without it after the stall time is the one
        still building its model.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state = ("ready", None, time.perf_counter())
        self._write_json()

    def start(self, *, ready_unix_s: float, entered_perf_s: float, period_s: float, offset_s: float,
              slots_planned: int | None) -> None:
        """The federate is in executing mode (``entered_perf_s``: ``time.perf_counter()`` then)."""
        now_unix = time.time()
        self._entered = entered_perf_s
        executing_unix = now_unix - (time.perf_counter() - entered_perf_s)
        started = self.info["process_started_unix_s"]
        self.info.update({
            "ready_s": None if started is None else ready_unix_s - started,
            "startup_s": None if started is None else executing_unix - started,
            "executing_unix_s": executing_unix, "period_s": float(period_s), "offset_s": float(offset_s),
            "slots_planned": slots_planned})
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = self.csv_path.open("w", encoding="utf-8")
        self._file.write(",".join(SLOT_COLUMNS) + "\n")
        self._file.flush()
        self.state = ("waiting", None, entered_perf_s)
        self._write_json()
        self._thread = threading.Thread(target=self._flusher, name=f"timing-{self.federate}", daemon=True)
        self._thread.start()

    def add(self, slot: int, slot_time_s: float, granted_perf_s: float, wait_s: float, work_s: float,
            messages_sent: int, values_published: int) -> None:
        """One slot done (or failed in): its row is buffered."""
        row = (slot, slot_time_s, granted_perf_s - self._entered, wait_s, work_s, messages_sent, values_published)
        with self._lock:
            self._rows.append(row)
        self.slots_done += 1
        self.work_s += work_s
        self.wait_s += wait_s

    def _flusher(self) -> None:
        while not self._stop.wait(self.flush_every_s):
            try:
                self.flush()
            except OSError:  # a full disk must not stop the federation; the end writes again
                pass

    def flush(self) -> None:
        """Write the buffered rows, and the state file when the state changed."""
        with self._lock:  # only the buffer: a slow or stuck disk must never hold up the federate's slots
            rows, self._rows = self._rows, []
        if rows and self._file is not None:
            self._file.write("".join(f"{k},{t!r},{g:.6f},{w:.6f},{a:.6f},{m},{v}\n"
                                     for k, t, g, w, a, m, v in rows))
            self._file.flush()
        if self.state is not self._written_state:
            self._write_json()

    def _write_json(self) -> None:
        state, slot_time, since = self.state
        self._written_state = self.state
        info = {**self.info, "state": state, "state_slot_time_s": slot_time,
                "state_since_s": since - self._entered, "written_s": time.perf_counter() - self._entered,
                "slots_done": self.slots_done, "work_s": self.work_s, "wait_s": self.wait_s}
        write_text_atomic(self.json_path, json.dumps(info, indent=1) + "\n")

    def close(self, *, failed: bool = False, stepping_s: float | None = None) -> None:
        """Stop the flusher and write everything: the state becomes ``done`` (or ``failed``)."""
        if self._file is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.state = ("failed" if failed else "done", self.state[1], time.perf_counter())
        if stepping_s is not None:
            self.info["stepping_s"] = stepping_s
        try:
            self.flush()
        finally:
            self._file.close()
            self._file = None


# ---------------------------------------------------------------------------------------------
# Reading (in the report)
# ---------------------------------------------------------------------------------------------
@dataclass
class RunTiming:
    """A run's timing files: ``slots`` (every CSV row, with a ``federate`` column) and ``info`` per federate."""

    slots: pd.DataFrame
    info: dict[str, dict]

    @property
    def federates(self) -> list[str]:
        """In the order they act within a step (phase offset), then by name."""
        def key(name):
            offset = self.info.get(name, {}).get("offset_s")
            return (offset if isinstance(offset, (int, float)) else math.inf, name)
        return sorted(set(self.slots["federate"]) | set(self.info), key=key)


def read_timing(run_dir: str | Path) -> RunTiming | None:
    """The timing files of a run, or None when it has none (runs from before they were recorded).

    Raises
    ------
    ValueError
        A timing CSV without the columns of :data:`SLOT_COLUMNS` (one line naming the file).
    """
    import pandas as pd

    folder = Path(run_dir) / TIMING_DIR
    csvs = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    if not csvs:
        return None
    frames, info = [], {}
    for path in csvs:
        try:
            frame = pd.read_csv(path, float_precision="round_trip")
        except pd.errors.EmptyDataError:
            frame = pd.DataFrame(columns=list(SLOT_COLUMNS))
        missing = [c for c in SLOT_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: column {missing[0]!r} missing (timing columns: {', '.join(SLOT_COLUMNS)})")
        frames.append(frame.assign(federate=path.stem))
        try:
            info[path.stem] = json.loads(path.with_suffix(".json").read_text())
        except (OSError, ValueError):
            info[path.stem] = {}
    slots = pd.concat(frames, ignore_index=True)
    return RunTiming(slots=slots[["federate", *SLOT_COLUMNS]], info=info)


def hour_bins(n_hours: int, max_bins: int = 96) -> int:
    """Hours per bin of the timeline: 1 up to ``max_bins`` hours, then whole days or more."""
    if n_hours <= max_bins:
        return 1
    return 24 * math.ceil(n_hours / max_bins / 24)


def hourly(timing: RunTiming, bin_h: int = 1) -> pd.DataFrame:
    """Working and waiting wall time per federate and simulated hour (or bins of ``bin_h`` hours).

    Returns
    -------
    pandas.DataFrame
        Columns ``hour`` (first hour of the bin, from the scenario start), ``federate``, ``work_s``,
        ``wait_s``, ``slots``; one row per federate and bin with slots in it.
    """
    import numpy as np

    s = timing.slots
    hour = (np.floor(s["slot_time_s"].to_numpy(dtype=float) / 3600.0 / bin_h) * bin_h).astype(int)
    grouped = s.assign(hour=hour).groupby(["hour", "federate"], sort=True)
    return grouped.agg(work_s=("work_s", "sum"), wait_s=("wait_s", "sum"), slots=("slot", "size")).reset_index()


def critical_federates(per_hour: pd.DataFrame) -> pd.Series:
    """The critical federate of each hour of :func:`hourly`: the most working time (ties: first by name).

    See :data:`CRITICAL_DEFINITION`.
    """
    import pandas as pd

    if per_hour.empty:
        return pd.Series(dtype=object, name="federate")
    ordered = per_hour.sort_values(["hour", "work_s", "federate"], ascending=[True, False, True])
    return ordered.drop_duplicates("hour").set_index("hour")["federate"]


TOTAL_COLUMNS = ("federate", "slots", "work_s", "wait_s", "messages_sent", "values_published", "startup_s",
                 "ready_s", "critical_hours")


def totals(timing: RunTiming) -> pd.DataFrame:
    """Per federate (order of :attr:`RunTiming.federates`): the sums of its CSV and its start-up.

    Columns :data:`TOTAL_COLUMNS`: slots, working and waiting wall s, messages sent and values
    published (sums of the CSV), ``startup_s`` (process start to executing mode), ``ready_s``
    (process start to its model built: the largest holds every federate's start-up up) and
    ``critical_hours`` (hours it was the critical federate of).
    """
    import pandas as pd

    s = timing.slots
    sums = s.groupby("federate").agg(slots=("slot", "size"), work_s=("work_s", "sum"), wait_s=("wait_s", "sum"),
                                     messages_sent=("messages_sent", "sum"),
                                     values_published=("values_published", "sum"))
    critical = critical_federates(hourly(timing)).value_counts()
    rows = []
    for name in timing.federates:
        row = sums.loc[name].to_dict() if name in sums.index else {
            "slots": 0, "work_s": 0.0, "wait_s": 0.0, "messages_sent": 0, "values_published": 0}
        info = timing.info.get(name, {})
        rows.append({"federate": name, **row, "startup_s": info.get("startup_s"), "ready_s": info.get("ready_s"),
                     "critical_hours": int(critical.get(name, 0))})
    frame = pd.DataFrame(rows, columns=list(TOTAL_COLUMNS))
    for column in ("slots", "messages_sent", "values_published", "critical_hours"):
        frame[column] = frame[column].astype(int)
    return frame


def plot_timeline(timing: RunTiming, output_png: str | Path, title: str | None = None) -> int:
    """The timeline figure: one row per federate, working and waiting wall time per simulated hour.

    Each row is a bar chart on the same scale: per hour (or bin, :func:`hour_bins`) a bar of the
    federate's working time (its colour) with its waiting time stacked on it (grey); a black
    triangle over the bar marks the hour's critical federate (:func:`critical_federates`).

    Returns
    -------
    int
        Hours per bar.
    """
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    names = timing.federates
    last_hour = int(np.floor(timing.slots["slot_time_s"].max() / 3600.0)) if len(timing.slots) else 0
    bin_h = hour_bins(last_hour + 1)
    per_hour = hourly(timing, bin_h)
    critical = critical_federates(per_hour)
    scale = float((per_hour["work_s"] + per_hour["wait_s"]).max()) if len(per_hour) else 0.0
    scale = scale if scale > 0 else 1.0
    fig, ax = plt.subplots(figsize=(11, 1.5 + 0.55 * len(names)))  # 1100 px wide: shown at its own size
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    band = 0.8  # of a row's height
    for i, name in enumerate(names):
        y0 = len(names) - 1 - i
        mine = per_hour[per_hour["federate"] == name]
        x = mine["hour"].to_numpy(dtype=float)
        work = mine["work_s"].to_numpy() / scale * band
        wait = mine["wait_s"].to_numpy() / scale * band
        colour = colours[i % len(colours)]
        ax.bar(x, work, width=0.85 * bin_h, bottom=y0 - band / 2, align="edge", color=colour, linewidth=0)
        ax.bar(x, wait, width=0.85 * bin_h, bottom=y0 - band / 2 + work, align="edge", color="#d0d4da", linewidth=0)
        ax.axhline(y0 - band / 2, color="#888", lw=0.4)
        hot = [h for h in mine["hour"] if critical.get(h) == name]
        if hot:
            top = dict(zip(mine["hour"], work + wait))
            ax.plot(np.array(hot, dtype=float) + 0.425 * bin_h, [y0 - band / 2 + top[h] + 0.06 for h in hot], "v",
                    color="black", ms=5, clip_on=False)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(list(reversed(names)))
    ax.set_ylim(-0.6, len(names) - 0.2)
    ax.set_xlim(0, (last_hour // bin_h + 1) * bin_h)
    ax.set_xlabel("simulated time (h from the scenario start)" + (f"; bars of {bin_h} h" if bin_h > 1 else ""))
    ax.set_title((title + ": " if title else "") + f"wall time per simulated {'hour' if bin_h == 1 else 'bar'}; "
                 f"a full bar = {scale:.3g} s", fontsize=10)
    ax.legend(handles=[Patch(color=colours[0], label="working (each federate's colour)"),
                       Patch(color="#d0d4da", label="waiting for the grant"),
                       Line2D([], [], marker="v", color="black", lw=0, label="critical federate (most working time)")],
              loc="upper center", bbox_to_anchor=(0.5, -0.32 if len(names) < 4 else -0.18), ncol=3, fontsize=8,
              frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(output_png, dpi=100)
    plt.close(fig)
    return bin_h
