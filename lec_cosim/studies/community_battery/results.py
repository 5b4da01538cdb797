"""The results contract: ``summary.json``, ``ems.csv``, ``pcc.csv``, ``grid.csv`` and ``signals.csv``.

- ``signals.csv``: one row per grid step, every value the recorder saw (units in the names).
- ``grid.csv``: one row per grid step, the DSO's view: ``time, vm_min_pu, vm_max_pu,
  bus_violations, line_overloads, p_loss_kw, q_loss_kvar``.
- ``pcc.csv``: one row per grid step: ``time, p_mw, q_mvar, vm_pu`` (+ LV busbar voltage,
  transformer loading, losses).
- ``ems.csv``: one row per EMS step: ``time, price, export_price, load_mw, pv_mw, charge_mw,
  discharge_mw, soc_mwh, import_mw``; powers are means over the step, ``soc_mwh`` is at its end,
  ``import_mw < 0`` is export, and ``import_mw = load_mw - pv_mw + charge_mw - discharge_mw``.
- ``summary.json``: scenario, framework, objective, battery, KPIs, wall time and versions; on a feeder source
  (``grid.source``) also ``grid_source`` and the feeder's extremes (:func:`feeder_kpis`), and ``signals.csv`` a
  ``max_line_loading_percent`` column after the others.

``energy_cost`` prices each EMS step's import at the spot price and credits its export at the
export price, exactly as the ``min_cost`` objective does.
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.adapters import extension_kpis, join_kpis
from lec_cosim.files import write_text_atomic

SIGNAL_COLUMNS = [
    "time", "price", "export_price", "setpoint_mw", "planned_soc_mwh", "load_p_mw", "load_q_mvar",
    "pv_p_mw", "battery_p_mw", "soc_mwh", "pcc_p_mw", "pcc_q_mvar", "pcc_vm_pu", "lv_vm_pu",
    "trafo_loading_percent", "losses_mw", "losses_mvar", "vm_min_pu", "vm_max_pu", "bus_violations",
    "line_overloads",
]


def grid_table(signals: pd.DataFrame) -> pd.DataFrame:
    """The DSO's view of each grid step (losses in kW and kvar)."""
    return pd.DataFrame({
        "time": signals["time"],
        "vm_min_pu": signals["vm_min_pu"],
        "vm_max_pu": signals["vm_max_pu"],
        "bus_violations": signals["bus_violations"].astype(int),
        "line_overloads": signals["line_overloads"].astype(int),
        "p_loss_kw": signals["losses_mw"] * 1000.0,
        "q_loss_kvar": signals["losses_mvar"] * 1000.0,
    })


def ems_table(signals: pd.DataFrame, grid_step_s: int, ems_step_s: int) -> pd.DataFrame:
    """Aggregate grid-step records to EMS steps."""
    per = ems_step_s // grid_step_s
    group = np.arange(len(signals)) // per
    battery = signals["battery_p_mw"]
    frame = pd.DataFrame(
        {
            "time": signals["time"].to_numpy()[::per],
            "price": signals["price"].groupby(group).mean().to_numpy(),
            "export_price": signals["export_price"].groupby(group).mean().to_numpy(),
            "load_mw": signals["load_p_mw"].groupby(group).mean().to_numpy(),
            "pv_mw": signals["pv_p_mw"].groupby(group).mean().to_numpy(),
            "charge_mw": battery.clip(lower=0).groupby(group).mean().to_numpy(),
            "discharge_mw": (-battery).clip(lower=0).groupby(group).mean().to_numpy(),
            "soc_mwh": signals["soc_mwh"].groupby(group).last().to_numpy(),
        }
    )
    frame["import_mw"] = frame.load_mw - frame.pv_mw + frame.charge_mw - frame.discharge_mw
    return frame


def kpis(signals: pd.DataFrame, ems: pd.DataFrame, grid_step_s: int, ems_step_s: int,
         import_limit_mw: float | None = None) -> dict:
    """Key figures of a run (energies in MWh, cost in the price currency).

    With ``import_limit_mw`` (the scenario's ``grid.import_limit_mw``) also how often and by how
    much the realised import of a grid step exceeded it: the EMS keeps its hourly plan below the
    limit, but the import varies within the hour.
    """
    dt_ems = ems_step_s / 3600.0
    dt_grid = grid_step_s / 3600.0
    imp = ems.import_mw.clip(lower=0)
    exp = (-ems.import_mw).clip(lower=0)
    pv_mwh = float(ems.pv_mw.sum() * dt_ems)
    export_mwh = float(exp.sum() * dt_ems)
    net_grid = signals.load_p_mw - signals.pv_p_mw + signals.battery_p_mw
    return {
        "import_mwh": float(imp.sum() * dt_ems),
        "export_mwh": export_mwh,
        "energy_cost": float(((ems.price * imp - ems.export_price * exp) * dt_ems).sum()),
        "peak_import_mw": float(net_grid.max()),
        "self_consumption_ratio": (1.0 - export_mwh / pv_mwh) if pv_mwh > 0 else None,
        "vm_min_pu": float(signals.pcc_vm_pu.min()),
        "vm_max_pu": float(signals.pcc_vm_pu.max()),
        "pcc_peak_p_mw": float(signals.pcc_p_mw.max()),
        "pcc_min_p_mw": float(signals.pcc_p_mw.min()),
        "lv_vm_min_pu": float(signals.lv_vm_pu.min()),
        "lv_vm_max_pu": float(signals.lv_vm_pu.max()),
        "losses_mwh": float(signals.losses_mw.sum() * dt_grid),
        "losses_kwh": float(signals.losses_mw.sum() * dt_grid * 1000.0),
        "losses_kvarh": float(signals.losses_mvar.sum() * dt_grid * 1000.0),
        "bus_violations": int(signals.bus_violations.sum()),
        "line_overloads": int(signals.line_overloads.sum()),
        "load_mwh": float(signals.load_p_mw.sum() * dt_grid),
        "pv_mwh": float(signals.pv_p_mw.sum() * dt_grid),
        "steps_above_import_limit": None if import_limit_mw is None else int((net_grid > import_limit_mw + 1e-9).sum()),
        "max_import_above_limit_mw": None if import_limit_mw is None
        else float(max(net_grid.max() - import_limit_mw, 0.0)),
    }


def feeder_kpis(signals: pd.DataFrame, scenario) -> dict:
    """On a feeder source (``grid.source``): the feeder's extremes over the run, every bus, line and transformer
    (the built-in grid's results have none of these: its PCC and LV busbar are its buses)."""
    if scenario.grid.source is None:
        return {}
    return {
        "grid_vm_min_pu": float(signals.vm_min_pu.min()),
        "grid_vm_max_pu": float(signals.vm_max_pu.max()),
        "max_line_loading_percent": float(signals.max_line_loading_percent.max()),
        "max_trafo_loading_percent": float(signals.trafo_loading_percent.max()),
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def versions(solver: str) -> dict:
    import helics

    from lec_cosim import __version__
    from lec_cosim.models.lp_solvers import solver_version  # without Pyomo (see there)

    return {
        "lec_cosim": __version__,
        "helics": helics.helicsGetVersion(),
        "pandapower": _version("pandapower"),
        "pyomo": _version("pyomo"),
        "solver": {"name": solver, "version": solver_version(solver)},
    }


def write_results(signals: pd.DataFrame, scenario, out_dir: Path, wall_time_s: float,
                  extra_kpis: dict | None = None) -> dict:
    """Write the contract files for a run; returns the summary.

    Columns of ``signals`` beyond :data:`SIGNAL_COLUMNS` (the values of the devices a study adds at its
    homes) go to ``signals.csv`` after them; ``extra_kpis`` (those components' KPIs) join the KPIs.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ems = ems_table(signals, scenario.grid_step_s, scenario.ems_step_s)
    pcc = signals[["time", "pcc_p_mw", "pcc_q_mvar", "pcc_vm_pu", "lv_vm_pu", "trafo_loading_percent", "losses_mw"]]
    pcc = pcc.rename(columns={"pcc_p_mw": "p_mw", "pcc_q_mvar": "q_mvar", "pcc_vm_pu": "vm_pu"})
    extra_columns = [c for c in signals.columns if c not in SIGNAL_COLUMNS]
    write_text_atomic(out_dir / "signals.csv", signals[SIGNAL_COLUMNS + extra_columns].to_csv(index=False))
    write_text_atomic(out_dir / "grid.csv", grid_table(signals).to_csv(index=False))
    write_text_atomic(out_dir / "pcc.csv", pcc.to_csv(index=False))
    write_text_atomic(out_dir / "ems.csv", ems.to_csv(index=False))
    b = scenario.battery
    summary = {
        "kind": scenario.kind,
        "scenario": scenario.name,
        "framework": scenario.framework,
        "objective": scenario.ems.objective,
        "start": scenario.start.isoformat(),
        "horizon_h": scenario.horizon_h,
        "ems_step_h": scenario.ems_step_s / 3600.0,
        "grid_step_h": scenario.grid_step_s / 3600.0,
        "currency": scenario.market.currency,
        "battery": {"capacity_mwh": b.capacity_mwh, "power_mw": b.power_mw, "efficiency": b.efficiency,
                    "soc_min": b.soc_min, "soc_max": b.soc_max},
        "import_limit_mw": scenario.grid.import_limit_mw,
        "kpis": join_kpis({**kpis(signals, ems, scenario.grid_step_s, scenario.ems_step_s,
                                  scenario.grid.import_limit_mw), **feeder_kpis(signals, scenario)},
                          extra_kpis or {}),
        "wall_time_s": wall_time_s,
        "versions": versions(scenario.ems.solver),
    }
    if scenario.grid.source is not None:
        summary["grid_source"] = scenario.grid.source
    # summary.json last: its presence marks a complete result directory.
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def read_run(run_dir: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Summary, EMS table and PCC table of a finished run."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no summary.json (not a finished run)")
    summary = json.loads(summary_path.read_text())
    ems = pd.read_csv(run_dir / "ems.csv", parse_dates=["time"])
    pcc = pd.read_csv(run_dir / "pcc.csv", parse_dates=["time"])
    return summary, ems, pcc


class CommunityBatteryRecord:
    """The community battery's record for the recorder component: every input port, every grid step.

    Columns are the recorder's input ports (the plan names them as ``SIGNAL_COLUMNS`` does). Devices added
    at the homes bring their KPIs as ``added_kpis`` in the recorder's settings: ``"module:function"``, each
    called with the recorded signals and the scenario, returning KPIs (units in their names) that join
    ``summary.json``'s.
    """

    def __init__(self, scenario, settings: dict):
        self.scenario = scenario
        self.added_kpis: list[str] = list(settings.get("added_kpis", []))
        self.times: list[str] = []
        self.columns: dict[str, list] = {}

    def add(self, k: int, t_s: float, inputs) -> None:
        self.times.append((self.scenario.start + dt.timedelta(seconds=t_s)).isoformat())
        for port in inputs.ports:
            self.columns.setdefault(port, []).append(inputs.read(port))

    def write(self, output_dir: Path, wall_time_s: float, replies=None) -> dict:
        signals = pd.DataFrame({"time": self.times, **self.columns})
        extra = extension_kpis(self.added_kpis, signals, self.scenario)
        return write_results(signals, self.scenario, output_dir, wall_time_s=wall_time_s, extra_kpis=extra)
