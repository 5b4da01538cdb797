"""pandapower's own time series (``run_timeseries``) computing the LEM grid alone, and its check.

    .venv/bin/python benchmarks/pandapower_baseline.py [--scenario scenarios/ieee_eu_lv_lem_plain.yaml]
        [--days N] [--chp zero|capacity|RUN_DIR] [--repeat N] [--no-check] [--json FILE]

The baseline of the benchmark "the whole federation vs pandapower's own ``run_timeseries`` computing
the grid alone, same feeder and profiles". :func:`run_pandapower_timeseries` takes a
:class:`~lec_cosim.models.lem_grid.LemGrid` (the LEM federation's feeder: the IEEE European LV
feeder with 55 household ``asymmetric_load``, 42 PV and 6 CHP ``asymmetric_sgen``) and the
participants' powers per step, and runs pandapower's ``pandapower.timeseries.run_timeseries`` with
``run=pandapower.runpp_3ph`` on a copy of ``grid.net``:

* one ``ConstControl`` per element table and phase column (``asymmetric_load`` ``p_a_mw`` ..
  ``q_c_mvar``, ``asymmetric_sgen`` ``p_a_mw`` .. ``p_c_mw``) over one ``DFData`` source
  (time steps x elements, MW / Mvar), written exactly as ``LemGrid`` writes them: a household's
  load P and Q on its own phase of its feeder load (0 on the other two), a prosumer's PV on its
  phase of the sgen ``PV <name>``, a CHP balanced over the three phases of the sgen ``<name>``
  (P/3 each), sgen Q = 0. The mapping is built from the names in ``grid.net`` and the participants'
  table (bus phases), not from ``LemGrid``'s private arrays;
* an ``OutputWriter`` logging ``res_bus_3ph.vm_{a,b,c}_pu`` of the LV buses, the per-phase losses
  of the feeder lines (``res_line_3ph.pl_*_mw``, ``ql_*_mvar``, without the source impedance) and
  of the transformer, and its HV-side active power;

and returns per step ``vm_min_pu``, ``vm_max_pu``, ``p_loss_kw``, ``q_loss_kvar`` and
``trafo_p_kw`` (the definitions of :class:`~lec_cosim.models.lem_grid.LemGridResult`), with the
wall time of ``run_timeseries``.

The ``__main__`` builds the scenario's community (``community_from_scenario``) and grid, runs the
baseline over the scenario's horizon or ``--days`` days at its grid step (the shipped LEM cases:
one day, 96 steps of 15 min; ``--days 7`` or ``scenarios/ieee_eu_lv_lem_plain_week.yaml``: a week),
prints the time per step, and then solves the same steps with ``LemGrid.solve()`` and checks the
two step by step (``vm_min``/``vm_max`` within 1e-6 pu; losses and transformer power printed): with
LemGrid's pandapower backend (the same ``runpp_3ph``), and, if the scenario's ``grid.solver`` is
another one (power-grid-model, what the federation's DSO runs), with that one too. So the baseline
is shown to compute the same grid as the federation. The CHP outputs come from the
market in the federation; for the grid alone they are an argument: ``zero`` (default),
``capacity`` (every CHP at full output all the time), or a recorded run's ``households.csv``
(``--chp RUN_DIR``: the ``chp_kw`` of every CHP and grid step; the results are then also compared
with that run's ``grid.csv``, what its DSO federate computed).

Longer horizons: if ``build_community`` refuses more than 24 h (the one-day community), the 24 h
arrays are tiled ``--days`` times, and the output says so. numba is used if installed, as pandapower's
users run it: ``make bench`` installs it (the ``bench`` extra); a week of ``runpp_3ph`` steps took 161 ms
a step with it, 241 ms without (2026-12-07, a shared 2-core machine, ``benchmarks/federation_vs_opendss.py
--pandapower``).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from host import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lec_cosim.models.ieee_eulv import PHASES, SOURCE_IMPEDANCE_LINE_NAME  # noqa: E402

RESULT_COLUMNS = ["vm_min_pu", "vm_max_pu", "p_loss_kw", "q_loss_kvar", "trafo_p_kw"]
HOUSEHOLD_KINDS = ("consumer", "prosumer")


def _numba_installed() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


# Mapping of participants to the net's rows and phases --------------------------------------------
@dataclass(frozen=True)
class PhaseMapping:
    """Where every participant's power goes in ``grid.net`` (positions are rows of the arrays).

    Attributes
    ----------
    load_part, load_row, load_phase : numpy.ndarray
        Household participants (positions in the participants' table), their ``asymmetric_load``
        index label and phase number (0, 1, 2 for a, b, c).
    pv_part, pv_row, pv_phase : numpy.ndarray
        Prosumers, their PV ``asymmetric_sgen`` (named ``PV <participant>``) and phase.
    chp_part, chp_row : numpy.ndarray
        CHPs and their ``asymmetric_sgen`` (named like the participant), balanced over the phases.
    """

    load_part: np.ndarray
    load_row: np.ndarray
    load_phase: np.ndarray
    pv_part: np.ndarray
    pv_row: np.ndarray
    pv_phase: np.ndarray
    chp_part: np.ndarray
    chp_row: np.ndarray


def phase_mapping(grid, table: pd.DataFrame) -> PhaseMapping:
    """Map the participants of ``table`` (the grid's participants table, rows in array order) to
    ``grid.net``'s ``asymmetric_load`` / ``asymmetric_sgen`` rows and phases, by name."""
    table = table.reset_index(drop=True)
    net = grid.net
    phase_no = {ph: i for i, ph in enumerate(PHASES)}

    def rows(frame, names, what):
        by_name = pd.Series(frame.index, index=frame["name"].astype(str))
        if not by_name.index.is_unique:
            raise ValueError(f"{what}: duplicate names in grid.net")
        missing = [n for n in names if n not in by_name.index]
        if missing:
            raise ValueError(f"{what}: not in grid.net: {missing[:5]}")
        return by_name.loc[list(names)].to_numpy()

    households = table[table["kind"].isin(HOUSEHOLD_KINDS)]
    prosumers = table[table["kind"] == "prosumer"]
    chps = table[table["kind"] == "chp"]
    if tuple(households["participant"]) != tuple(grid.household_names) or \
            tuple(prosumers["participant"]) != tuple(grid.prosumer_names) or \
            tuple(chps["participant"]) != tuple(grid.chp_names):
        raise ValueError("the table is not the grid's participants table")
    mapping = PhaseMapping(
        load_part=households.index.to_numpy(),
        load_row=rows(net.asymmetric_load, households["participant"], "households"),
        load_phase=households["phase"].map(phase_no).to_numpy(dtype=int),
        pv_part=prosumers.index.to_numpy(),
        pv_row=rows(net.asymmetric_sgen, [f"PV {n}" for n in prosumers["participant"]], "PV"),
        pv_phase=prosumers["phase"].map(phase_no).to_numpy(dtype=int),
        chp_part=chps.index.to_numpy(),
        chp_row=rows(net.asymmetric_sgen, list(chps["participant"]), "CHP"),
    )
    if len(set(mapping.pv_row) | set(mapping.chp_row)) != len(mapping.pv_row) + len(mapping.chp_row):
        raise ValueError("a PV and a CHP share an asymmetric_sgen")
    return mapping


def phase_profiles(grid, table, load_kw, load_kvar, pv_kw, chp_kw) -> dict[tuple[str, str], pd.DataFrame]:
    """Per element table and column (``("asymmetric_load", "p_a_mw")`` ...), the values of every time
    step (rows 0..n-1) and element (columns: index labels of the table), in MW / Mvar."""
    m = phase_mapping(grid, table)
    arrays = [np.asarray(a, dtype=float) for a in (load_kw, load_kvar, pv_kw, chp_kw)]
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays) or len(shape) != 2 or shape[0] != len(table):
        raise ValueError(f"load_kw, load_kvar, pv_kw and chp_kw must all be (n_participants={len(table)}, n_steps)")
    load_p, load_q, pv_p, chp_p = (a / 1000.0 for a in arrays)  # kW -> MW
    n_steps = shape[1]
    net = grid.net
    al_index, sg_index = net.asymmetric_load.index, net.asymmetric_sgen.index
    al_pos, sg_pos = al_index.get_indexer(m.load_row), sg_index.get_indexer(m.pv_row)
    chp_pos = sg_index.get_indexer(m.chp_row)
    out = {}
    for i, ph in enumerate(PHASES):
        p = np.zeros((n_steps, len(al_index)))
        q = np.zeros((n_steps, len(al_index)))
        on = m.load_phase == i
        p[:, al_pos[on]] = load_p[m.load_part[on]].T
        q[:, al_pos[on]] = load_q[m.load_part[on]].T
        out[("asymmetric_load", f"p_{ph}_mw")] = pd.DataFrame(p, columns=al_index)
        out[("asymmetric_load", f"q_{ph}_mvar")] = pd.DataFrame(q, columns=al_index)
        s = np.zeros((n_steps, len(sg_index)))
        on = m.pv_phase == i
        s[:, sg_pos[on]] = pv_p[m.pv_part[on]].T
        s[:, chp_pos] = chp_p[m.chp_part].T / 3.0
        out[("asymmetric_sgen", f"p_{ph}_mw")] = pd.DataFrame(s, columns=sg_index)
    return out


# The baseline ------------------------------------------------------------------------------------
def run_pandapower_timeseries(grid, load_kw, load_kvar, pv_kw, chp_kw, *, table: pd.DataFrame,
                              init: str = "results", numba: bool | None = None,
                              check_controllers: bool = True) -> tuple[pd.DataFrame, float]:
    """Run pandapower's ``run_timeseries`` (``run=pandapower.runpp_3ph``) on a copy of ``grid.net``.

    Parameters
    ----------
    grid : lec_cosim.models.lem_grid.LemGrid
        The feeder with the participants on it; not changed (its net is copied).
    load_kw, load_kvar, pv_kw, chp_kw : array_like, shape (n_participants, n_steps)
        Powers of every participant (rows in the order of ``table``) and step, kW / kvar, as
        ``Community.load_kw`` etc.; ``chp_kw`` is the CHP output (0 in household rows).
    table : pandas.DataFrame
        The participants' table the grid was built from (``Community.table``: ``participant, kind,
        phase`` ...).
    init : str
        ``runpp_3ph``'s ``init`` at every step; ``"results"`` (as ``LemGrid.solve``) starts each step
        from the previous one (the first from pandapower's default when there are none).
    numba : bool, optional
        Default: whether numba is installed.
    check_controllers : bool
        ``run_timeseries``'s controller diagnostic (pandapower's default, on).

    Returns
    -------
    results : pandas.DataFrame
        One row per step: ``vm_min_pu, vm_max_pu`` (over the LV buses and phases), ``p_loss_kw,
        q_loss_kvar`` (feeder lines and transformer), ``trafo_p_kw`` (HV side, into the feeder).
    seconds : float
        Wall time of ``run_timeseries`` (controllers, power flows, output writer; not the set-up).
    """
    import pandapower as pp
    from pandapower.control import ConstControl
    from pandapower.timeseries import DFData, OutputWriter, run_timeseries

    if numba is None:
        numba = _numba_installed()
    profiles = phase_profiles(grid, table, load_kw, load_kvar, pv_kw, chp_kw)
    n_steps = len(next(iter(profiles.values())))
    net = copy.deepcopy(grid.net)
    for ph in PHASES:  # sgens run at unity power factor, as LemGrid writes them
        net.asymmetric_sgen[f"q_{ph}_mvar"] = 0.0

    columns, frames = {}, []
    for (element, variable), frame in profiles.items():
        names = [f"{element}.{variable}.{idx}" for idx in frame.columns]
        columns[(element, variable)] = (frame.columns, names)
        frames.append(frame.set_axis(names, axis=1))
    data = DFData(pd.concat(frames, axis=1))
    for (element, variable), (index, names) in columns.items():
        ConstControl(net, element=element, variable=variable, element_index=index, data_source=data,
                     profile_name=names)

    lv_buses = [int(b) for b in grid.lv_buses]
    feeder_lines = net.line.index[net.line["name"] != SOURCE_IMPEDANCE_LINE_NAME].tolist()
    writer = OutputWriter(net, time_steps=range(n_steps), output_path=None, log_variables=[])
    for ph in PHASES:
        writer.log_variable("res_bus_3ph", f"vm_{ph}_pu", index=lv_buses)
        writer.log_variable("res_line_3ph", f"pl_{ph}_mw", index=feeder_lines)
        writer.log_variable("res_line_3ph", f"ql_{ph}_mvar", index=feeder_lines)
        writer.log_variable("res_trafo_3ph", f"pl_{ph}_mw")
        writer.log_variable("res_trafo_3ph", f"ql_{ph}_mvar")
        writer.log_variable("res_trafo_3ph", f"p_{ph}_hv_mw")

    started = time.perf_counter()
    run_timeseries(net, time_steps=range(n_steps), run=pp.runpp_3ph, init=init, numba=numba, verbose=False,
                   check_controllers=check_controllers)
    seconds = time.perf_counter() - started

    out = writer.output
    if out["Parameters"].get("powerflow_failed", pd.Series(False)).fillna(False).astype(bool).any():
        raise RuntimeError("run_timeseries: a power flow did not converge")

    def phases(table_, variable):
        return np.stack([out[f"{table_}.{variable.format(ph=ph)}"].to_numpy() for ph in PHASES], axis=2)

    vm = phases("res_bus_3ph", "vm_{ph}_pu")  # (steps, buses, 3)
    if not np.isfinite(vm).all():
        raise RuntimeError("run_timeseries: a power flow returned no voltages (singular Jacobian?)")
    p_loss = (phases("res_line_3ph", "pl_{ph}_mw").sum(axis=(1, 2))
              + phases("res_trafo_3ph", "pl_{ph}_mw").sum(axis=(1, 2)))
    q_loss = (phases("res_line_3ph", "ql_{ph}_mvar").sum(axis=(1, 2))
              + phases("res_trafo_3ph", "ql_{ph}_mvar").sum(axis=(1, 2)))
    results = pd.DataFrame({
        "vm_min_pu": vm.min(axis=(1, 2)),
        "vm_max_pu": vm.max(axis=(1, 2)),
        "p_loss_kw": p_loss * 1000.0,
        "q_loss_kvar": q_loss * 1000.0,
        "trafo_p_kw": phases("res_trafo_3ph", "p_{ph}_hv_mw").sum(axis=(1, 2)) * 1000.0,
    }, index=pd.RangeIndex(n_steps, name="step"))
    return results, seconds


# The same steps with LemGrid.solve ---------------------------------------------------------------
def lemgrid_steps(grid, table, load_kw, load_kvar, pv_kw, chp_kw) -> tuple[pd.DataFrame, float]:
    """``LemGrid.solve()`` at every step (injections set by name); the results and the seconds."""
    table = table.reset_index(drop=True)
    hh = table.index[table["kind"].isin(HOUSEHOLD_KINDS)].to_numpy()
    pros = table.index[table["kind"] == "prosumer"].to_numpy()
    chp = table.index[table["kind"] == "chp"].to_numpy()
    names = table["participant"].to_numpy()
    rows, started = [], time.perf_counter()
    for k in range(np.shape(load_kw)[1]):
        grid.set_injections(load_kw=pd.Series(load_kw[hh, k], index=names[hh]),
                            load_kvar=pd.Series(load_kvar[hh, k], index=names[hh]),
                            pv_kw=pd.Series(pv_kw[pros, k], index=names[pros]),
                            chp_kw=pd.Series(chp_kw[chp, k], index=names[chp]))
        r = grid.solve()
        rows.append([r.vm_min_pu, r.vm_max_pu, r.p_loss_kw, r.q_loss_kvar, r.trafo_p_kw])
    seconds = time.perf_counter() - started
    return pd.DataFrame(rows, columns=RESULT_COLUMNS, index=pd.RangeIndex(len(rows), name="step")), seconds


# Scenario inputs ---------------------------------------------------------------------------------
def scenario_grid(scenario, table, solver: str | None = "pandapower"):
    """The scenario's :class:`LemGrid` (as the DSO builds it) for the participants' ``table``.

    ``solver`` picks LemGrid's power-flow backend where LemGrid has that choice (``None``: its default).
    """
    from lec_cosim.models.lem_grid import LemGrid

    g = scenario.grid
    kwargs = dict(table=table, data_dir=scenario.feeder.data_dir, vm_min_pu=g.vm_min_pu, vm_max_pu=g.vm_max_pu,
                  max_loading_percent=g.max_loading_percent, va_max_deviation_degree=g.va_max_deviation_degree,
                  violation_model=g.dn_impact_counts, step_h=scenario.resolution.grid_min / 60.0)
    if solver is not None and "solver" in inspect.signature(LemGrid).parameters:
        kwargs["solver"] = solver
    return LemGrid(**kwargs)


def community_for_days(scenario, days: int):
    """The scenario's community over ``days`` days, and how it was made.

    Asks ``community_from_scenario`` for ``24 * days`` hours; if the scenario or ``build_community``
    refuses a horizon beyond one day, builds the one-day community and tiles its arrays.
    """
    from lec_cosim.models.lem_community import Community, community_from_scenario
    from lec_cosim.scenario import load_scenario

    hours = 24 * days
    if scenario.horizon_h == hours:
        return community_from_scenario(scenario), "community_from_scenario"
    try:
        data = json.loads(scenario.to_json())
        data["horizon_h"] = hours
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{scenario.name}_{days}d.json"
            path.write_text(json.dumps(data))
            longer = load_scenario(path)
        return community_from_scenario(longer), f"community_from_scenario over {hours} h"
    except ValueError as exc:  # ScenarioError is a ValueError
        reason = str(exc).splitlines()[0]
    data = json.loads(scenario.to_json())
    data["horizon_h"] = 24
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{scenario.name}_1d.json"
        path.write_text(json.dumps(data))
        day = community_from_scenario(load_scenario(path))
    tile = lambda a: np.tile(a, (1, days))  # noqa: E731
    community = Community(table=day.table, grid_min=day.grid_min, load_kw=tile(day.load_kw),
                          load_kvar=tile(day.load_kvar), pv_kw=tile(day.pv_kw), load_scale=day.load_scale,
                          b_eur_per_kwh=day.b_eur_per_kwh)
    return community, f"one day tiled {days} times (a longer horizon was refused: {reason})"


def chp_profile(community, how: str) -> tuple[np.ndarray, str]:
    """CHP output (n_participants, n_steps), kW: ``zero``, ``capacity`` or a recorded run's directory."""
    shape = community.load_kw.shape
    cap = community.chp_kw
    if how == "zero":
        return np.zeros(shape), "CHPs off"
    if how == "capacity":
        return np.repeat(cap[:, None], shape[1], axis=1), "CHPs at capacity"
    path = Path(how)
    if path.is_dir():
        path = path / "households.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{how}: neither zero, capacity, nor a run directory with households.csv")
    recorded = pd.read_csv(path, usecols=["time", "participant", "chp_kw"])
    wide = recorded.pivot(index="time", columns="participant", values="chp_kw").sort_index()
    names = community.names
    missing = [n for n, c in zip(names, cap) if c > 0 and n not in wide.columns]
    if missing:
        raise ValueError(f"{path}: no chp_kw of {missing}")
    values = wide.reindex(columns=names).fillna(0.0).to_numpy().T
    if values.shape[1] < shape[1]:
        if shape[1] % values.shape[1]:
            raise ValueError(f"{path}: {values.shape[1]} recorded steps do not divide the {shape[1]} steps")
        values = np.tile(values, (1, shape[1] // values.shape[1]))
    return values[:, : shape[1]] * (cap > 0)[:, None], f"CHP outputs recorded in {path}"


def main(argv=None) -> int:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "ieee_eu_lv_lem_plain.yaml"))
    parser.add_argument("--days", type=int, default=None,
                        help="days at the scenario's grid step (default: the scenario's horizon; one day for the "
                             "shipped LEM cases)")
    parser.add_argument("--chp", default="zero", help="zero, capacity, or a recorded run's directory (households.csv)")
    parser.add_argument("--repeat", type=int, default=1, help="run the time series N times, report the median")
    parser.add_argument("--no-check", action="store_true", help="skip the step-by-step check against LemGrid.solve")
    parser.add_argument("--tolerance", type=float, default=1e-6, help="largest vm_min/vm_max difference, pu")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = parser.parse_args(argv)

    from lec_cosim.models.lem_community import community_from_scenario
    from lec_cosim.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if scenario.framework != "local_market":
        print(f"error: {args.scenario}: not a local-market scenario", file=sys.stderr)
        return 2
    import pandapower

    t0 = time.perf_counter()
    days = args.days if args.days is not None else scenario.horizon_h / 24.0
    if args.days is None:
        community, how = community_from_scenario(scenario), "community_from_scenario"
    else:
        community, how = community_for_days(scenario, args.days)
    chp_kw, chp_how = chp_profile(community, args.chp)
    grid = scenario_grid(scenario, community.table)
    setup_s = time.perf_counter() - t0
    n_steps = community.load_kw.shape[1]
    numba = _numba_installed()
    print(f"scenario {scenario.name}: {days:g} day(s) from {scenario.start.date()}, {n_steps} steps of "
          f"{community.grid_min} min; profiles: {how}; {chp_how}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable); "
          f"pandapower {pandapower.__version__}, numba {'on' if numba else 'off (not installed)'}; "
          "other processes share the machine: timings are noisy")
    print(f"set-up (community, grid): {setup_s:.1f} s")

    times = []
    for _ in range(max(1, args.repeat)):
        results, seconds = run_pandapower_timeseries(grid, community.load_kw, community.load_kvar,
                                                     community.pv_kw, chp_kw, table=community.table, numba=numba)
        times.append(seconds)
    seconds = float(np.median(times))
    spread = "" if len(times) == 1 else (f" (median of {len(times)} runs; fastest {min(times) / n_steps * 1e3:.1f}, "
                                         f"slowest {max(times) / n_steps * 1e3:.1f} ms per step)")
    print(f"pandapower run_timeseries (runpp_3ph, ConstControl/DFData, OutputWriter): {seconds:.2f} s, "
          f"{seconds / n_steps * 1e3:.1f} ms per step{spread}")
    figures = {"scenario": scenario.name, "days": days, "steps": n_steps, "profiles": how, "chp": chp_how,
               "machine": cpu_model(), "cores": os.cpu_count(), "pandapower": pandapower.__version__,
               "numba": numba, "run_timeseries_s": seconds, "run_timeseries_runs_s": times,
               "run_timeseries_ms_per_step": seconds / n_steps * 1e3}
    status = 0
    if not args.no_check:
        backends = ["pandapower"]
        scenario_solver = getattr(scenario.grid, "solver", "pandapower")
        if scenario_solver not in backends:
            backends.append(scenario_solver)  # the backend the federation's DSO uses
        figures["checks"] = {}
        for backend in backends:
            reference, ref_s = lemgrid_steps(scenario_grid(scenario, community.table, backend), community.table,
                                             community.load_kw, community.load_kvar, community.pv_kw, chp_kw)
            diff = (results - reference).abs().max()
            same = bool(diff["vm_min_pu"] <= args.tolerance and diff["vm_max_pu"] <= args.tolerance)
            role = "the same pandapower runpp_3ph" if backend == "pandapower" else "the scenario's grid.solver"
            print(f"LemGrid.solve() over the same steps, {backend} backend ({role}): {ref_s:.2f} s, "
                  f"{ref_s / n_steps * 1e3:.1f} ms per step")
            print("  max |run_timeseries - LemGrid.solve| over the steps: "
                  + ", ".join(f"{c} {diff[c]:.1e}" for c in RESULT_COLUMNS))
            print(f"  vm_min/vm_max within {args.tolerance:g} pu at every step: {'yes' if same else 'NO'}")
            figures["checks"][backend] = {"lemgrid_solve_s": ref_s, "lemgrid_solve_ms_per_step": ref_s / n_steps * 1e3,
                                          "max_diff": {c: float(diff[c]) for c in RESULT_COLUMNS}, "same": same}
            status = status or (0 if same else 1)
        recorded_grid = Path(args.chp) / "grid.csv" if Path(args.chp).is_dir() else None
        if recorded_grid is not None and recorded_grid.is_file():
            recorded = pd.read_csv(recorded_grid)
            if len(recorded) == n_steps:
                cols = [c for c in RESULT_COLUMNS if c in recorded.columns]
                diff = (results[cols].reset_index(drop=True) - recorded[cols]).abs().max()
                print(f"the recorded run's own {recorded_grid} (its DSO's power flows): max |diff| "
                      + ", ".join(f"{c} {diff[c]:.1e}" for c in cols))
                figures["checks"]["recorded_grid_csv"] = {"max_diff": {c: float(diff[c]) for c in cols}}
            else:
                print(f"{recorded_grid}: {len(recorded)} steps, not {n_steps}: not compared")
        print(f"range over the steps: vm_min {results.vm_min_pu.min():.4f}..{results.vm_min_pu.max():.4f} pu, "
              f"vm_max {results.vm_max_pu.min():.4f}..{results.vm_max_pu.max():.4f} pu, losses "
              f"{results.p_loss_kw.min():.2f}..{results.p_loss_kw.max():.2f} kW")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
