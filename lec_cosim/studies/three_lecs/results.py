"""The results contract of a three-LEC run (frameworks decentralised, distributed, p2p).

Files written into the run directory by the recorder (``federates/recorder.py`` running
:class:`MultiLecRecord`; all tidy; units in column names):

- ``members.csv``: per grid step and member (55 households, then the community batteries):
  ``time, step, member, lec, kind, load_kw, pv_kw, curtailed_kw, battery_kw, soc_kwh, net_kw``
  (battery positive when charging; net = load - pv + battery, positive drawing from the grid).
- ``lecs.csv``: per grid step and LEC: ``time, step, lec, net_import_kw, vm_min_pu, vm_max_pu,
  import_limit_kw, export_limit_kw`` (limits as the DSO published them; ``inf`` without the loop).
- ``grid.csv``: per grid step: ``time, step, vm_min_pu, vm_max_pu, bus_violations, line_overloads,
  p_loss_kw, q_loss_kvar, trafo_p_kw, max_line_loading_percent``.
- ``settlement.csv``: per hour and LEC: ``hour, lec, households, load_kwh, pv_kwh, net_kwh,
  exchange_in_kwh, exchange_out_kwh, grid_import_kwh, grid_export_kwh, grid_cost_eur,
  exchange_payment_eur, wheeling_eur, cost_eur, planned_limit_excess_kwh``. The LEC's metered
  energy of the hour (``net_kwh``, its members' powers summed) less what it bought from other LECs
  plus what it sold them is settled with the grid at the retail and feed-in tariffs.
- ``days.csv`` / ``months.csv``: per calendar day (``date``) or month (``month``, ``YYYY-MM``) and LEC:
  ``load_kwh, pv_kwh, grid_import_kwh, grid_export_kwh, exchange_in_kwh, exchange_out_kwh, cost_eur,
  self_sufficiency`` (sums of ``settlement.csv``; self-sufficiency as the KPI: 1 - (grid import + exchange in) / load).
- ``grid_days.csv`` / ``grid_months.csv``: per day or month: ``bus_violations, steps_with_bus_violations,
  line_overloads, losses_kwh, vm_min_pu, vm_max_pu, trafo_peak_import_kw, trafo_peak_export_kw``.
- ``exchanges.csv``: per hour, LEC and counterpart (``platform`` or a neighbour LEC):
  ``hour, lec, counterpart, bought_kwh, sold_kwh, price_eur_per_kwh, payment_eur, wheeling_eur``.
- ``negotiation.csv`` (distributed): per hour: ``hour, iterations, converged,
  primal_residual_kw, dual_residual_eur_per_kwh`` (the last iteration's largest over the edges);
  ``negotiation_residuals.csv``: per hour, iteration, LEC and neighbour.
- ``p2p_trades.csv`` (p2p): per hour and member: ``hour, lec, member, net_kwh, bought_kwh,
  sold_kwh, grid_import_kwh, grid_export_kwh, price_eur_per_kwh, import_cap_kw,
  import_fee_eur_per_kwh, fee_eur, cost_eur``. ``price_eur_per_kwh`` is the pool's uniform price,
  or with ``p2p.market: continuous`` the volume-weighted mean price of the member's trades of the
  hour (empty when it traded nothing); either way ``cost_eur`` = price x (bought - sold) + the grid
  import and export at the tariffs.
- ``p2p_cda_trades.csv`` (p2p, ``p2p.market: continuous``): one row per trade of each LEC's
  continuous double auction: ``hour, lec, sequence, buyer, seller, quantity_kwh,
  price_eur_per_kwh, maker_side`` (the trade's price is the resting order's, of side ``maker_side``).
- ``p2p_cda_vs_pool.csv`` (the same): per hour and LEC, the auction against the uniform-price pool of
  the same orders, cleared as a counterfactual: ``hour, lec, orders, trades, cda_volume_kwh,
  pool_volume_kwh, cda_welfare_eur, pool_welfare_eur, pool_price_eur_per_kwh,
  cda_price_mean_eur_per_kwh, cda_price_min_eur_per_kwh, cda_price_max_eur_per_kwh,
  cda_price_std_eur_per_kwh`` (mean and std weighted by kWh; ``trades`` and the prices count only trades of at
  least ``continuous_auction.MIN_TRADE_KWH``, the rest being rounding).
- ``p2p_cda_members.csv`` (the same): per member over the run: ``lec, member, bought_kwh, sold_kwh,
  paid_eur, received_eur, buy_price_mean_eur_per_kwh, sell_price_mean_eur_per_kwh`` (volume-weighted).
- ``forecast_errors.csv`` (only when the EMSs plan on a forecast, ``ems.forecast`` not ``perfect``): per LEC
  (and ``all``: the LECs' sums), signal (``load``, ``pv``: the PV before curtailment, ``net``: load - PV) and
  lead (``next_hour``: the hour the plan acts on; ``window``: every hour of every planning window):
  ``lec, signal, lead, forecasts, mae_kw, rmse_kw, bias_kw`` (bias: forecast minus actual, mean), over every
  hour's forecast of the LEC_EMS (its records' ``forecast_load_kw``, ``forecast_pv_kw``: hourly means over the
  window from the hour) against the members' metered hourly means.
- ``household_limits.csv`` (``dso.limits_per: household``): per grid step and household: ``time, step, member,
  lec, net_kw, curtailed_kw, import_limit_kw, export_limit_kw, over_import_limit_kw, over_export_limit_kw``: the
  DSO's limits in force at the step (published at the step before; ``inf`` at the first) and how far the
  household's net import (export) went above them.
- ``households.csv`` (the same): per household over the run: ``lec, member, load_kwh, pv_kwh, curtailed_kwh,
  curtailed_share, over_import_limit_kwh, over_export_limit_kwh, steps_over_import_limit``.
- ``line_overloads.csv`` (the same; written by the DSO, :mod:`lec_cosim.adapters.three_lec_grid`): per grid step
  and overloaded line or transformer phase, its direction and what the households behind it did.
- ``ems_soc.csv``: per hour and LEC, the energy in the batteries its LEC_EMS plans (home and community
  batteries; in p2p the community battery) at the hour's start: ``hour, lec, planned_soc_start_kwh`` (where
  the LEC_EMS's plan of the hour before had it; the initial state in the first hour),
  ``measured_soc_start_kwh`` (as the households measured it; the known initial state in the first hour),
  ``soc_start_gap_kwh`` (measured - planned),
  ``soc_start_kwh`` (what the LEC_EMS planned the hour from: the measured energy, but the known initial state
  in the first hour and the planned one where the two agree to 1e-9 kWh), ``planned_soc_end_kwh`` (where
  its plan of the hour has it at the hour's end).
- ``ems_records.jsonl``: every LEC_EMS's record of every hour as it published it (one JSON object
  per line: the state of charge it planned from, its set-points, the DSO limits it planned with,
  its trades and, in distributed, its negotiation).
- ``federation_graph.json``: each federate's answer to the ``exchanges`` query (endpoints,
  messages sent, publications, subscriptions), the message graph and the value graph.
- ``summary.json``: scenario, framework, whether the DSO loop was on, and the KPIs; with a forecast also
  ``forecast`` (its name) and the KPIs ``forecast_errors`` (per signal, over all LECs: ``mae_kw, rmse_kw,
  bias_kw, mae_next_hour_kw, rmse_next_hour_kw``).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from lec_cosim.adapters import extension_kpis, join_kpis
from lec_cosim.models.multi_lec import MultiLecMembers
from lec_cosim.models.multi_lec_ems import (
    hourly_tariffs,
    members_from_scenario,
    steps_per_hour,
)

GRAPH_FILE = "federation_graph.json"


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False, float_format="%.10g")
    tmp.replace(path)


class MultiLecRecord:
    """Everything the recorder collects during a run; :meth:`write` turns it into the contract.

    The three-LEC study's record for the recorder component (``federates/recorder.py``): at every
    grid step (:meth:`add`) it reads its input ports: the members' vectors, the grid's indicators
    and the per-LEC vectors (the ports the plan lists under ``columns``), and the records each
    LEC_EMS (``<lec>.record``) and the platform (``platform.record``) published since the last step.
    """

    def __init__(self, scenario, settings: dict, members: MultiLecMembers | None = None):
        self.scenario = scenario
        self.members = members if members is not None else members_from_scenario(scenario)
        self.columns: dict[str, list[str]] = settings.get("columns", {})
        self.tables: list[str] = settings.get("tables", [])
        """The framework's own tables: ``negotiation`` (and its residuals), ``p2p_trades``, and the market
        mechanism's: ``cda_trades`` (the continuous double auction's trades, its comparison with the pool, its
        members' prices)."""
        self.member_rows: dict[str, list] = defaultdict(list)
        self.grid_rows: list[dict] = []
        self.lec_rows: list[dict] = []
        self.ems_records: dict[tuple[int, str], dict] = {}
        self.platform_records: dict[int, dict] = {}
        self.extra_columns: list[str] = list(settings.get("added_columns", []))
        """Input ports of devices a study adds at its homes, recorded per step into ``components.csv``."""
        self.added_kpis: list[str] = list(settings.get("added_kpis", []))
        """``"module:function"``: each called with that table and the scenario, its KPIs join the summary's."""
        self.extra_rows: dict[str, list] = defaultdict(list)
        self.household_limit_rows: dict[str, list] = defaultdict(list)
        """``dso.limits_per: household``: the DSO's limits per household as published at each step."""

    def add(self, k: int, t_s: float, inputs) -> None:
        """Step ``k``: the records published since the last step, and the step's values (see the class)."""
        for lec in self.members.lec_names:
            if inputs.updated(f"{lec}.record"):
                self.add_ems_record(inputs.read(f"{lec}.record"))
        if "platform.record" in inputs.ports and inputs.updated("platform.record"):
            self.add_platform_record(inputs.read("platform.record"))
        for port in self.extra_columns:
            self.extra_rows[port].append(inputs.read(port))
        for port in self.columns.get("households", []):
            self.household_limit_rows[port].append(np.asarray(inputs.read(port), dtype=float))
        self.add_step(k, {v: inputs.read(v) for v in self.columns["members"]},
                      {v: inputs.read(v) for v in self.columns["grid"]},
                      {v.removeprefix("lec_"): inputs.read(v) for v in self.columns["lecs"]})

    def add_step(self, step: int, household_values: dict, grid: dict, lec_values: dict) -> None:
        for key, values in household_values.items():
            self.member_rows[key].append(np.asarray(values, dtype=float))
        self.grid_rows.append({"step": step, **grid})
        for i, lec in enumerate(self.members.lec_names):
            self.lec_rows.append({"step": step, "lec": lec, **{k: float(v[i]) for k, v in lec_values.items()}})

    def add_ems_record(self, record: dict) -> None:
        self.ems_records[(int(record["hour"]), record["lec"])] = record

    def add_platform_record(self, record: dict) -> None:
        self.platform_records[int(record["hour"])] = record

    # -- tables ----------------------------------------------------------------------------

    def _time(self, steps) -> pd.Series:
        m = self.members
        return pd.Series(m.start + pd.to_timedelta(np.asarray(steps) * m.grid_min, unit="min")).dt.strftime(
            "%Y-%m-%dT%H:%M:%S")

    def members_table(self) -> pd.DataFrame:
        m = self.members
        table = m.table
        n_steps = len(self.member_rows["net_kw"])
        frame = pd.DataFrame({
            "step": np.repeat(np.arange(n_steps), len(table)),
            "member": np.tile(table["member"].to_numpy(), n_steps),
            "lec": np.tile(table["lec"].to_numpy(), n_steps),
            "kind": np.tile(table["kind"].to_numpy(), n_steps),
            **{k: np.concatenate(self.member_rows[k]) for k in
               ("load_kw", "pv_kw", "curtailed_kw", "battery_kw", "soc_kwh", "net_kw")},
        })
        frame.insert(0, "time", self._time(frame["step"]))
        return frame

    def grid_table(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.grid_rows)
        frame.insert(0, "time", self._time(frame["step"]))
        return frame

    def lecs_table(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.lec_rows)
        frame.insert(0, "time", self._time(frame["step"]))
        return frame

    def exchanges_table(self) -> pd.DataFrame:
        rows = []
        for (hour, lec), record in sorted(self.ems_records.items()):
            platform = record.get("platform")
            if platform is not None:
                rows.append({"hour": hour, "lec": lec, "counterpart": "platform", "bought_kwh": platform["bought_kwh"],
                             "sold_kwh": platform["sold_kwh"], "price_eur_per_kwh": platform["price_eur_per_kwh"],
                             "payment_eur": platform["payment_eur"], "wheeling_eur": platform["wheeling_eur"]})
            for x in record.get("exchanges", []):
                rows.append({"hour": hour, "lec": lec, "counterpart": x["neighbour"],
                             "bought_kwh": max(0.0, -x["sent_kwh"]), "sold_kwh": max(0.0, x["sent_kwh"]),
                             "price_eur_per_kwh": x["price_eur_per_kwh"], "payment_eur": x["payment_eur"],
                             "wheeling_eur": x["wheeling_eur"]})
        columns = ["hour", "lec", "counterpart", "bought_kwh", "sold_kwh", "price_eur_per_kwh", "payment_eur",
                   "wheeling_eur"]
        return pd.DataFrame(rows, columns=columns)

    def settlement_table(self, exchanges: pd.DataFrame) -> pd.DataFrame:
        """Per hour and LEC, with the LECs' trades of :meth:`exchanges_table`."""
        m = self.members
        per_hour = steps_per_hour(m)
        retail, feed_in = hourly_tariffs(m, self.scenario.tariff.scheme, self.scenario.tariff.feed_in_eur_per_kwh)
        net = np.vstack(self.member_rows["net_kw"]).T  # (members, steps)
        load = np.vstack(self.member_rows["load_kw"]).T
        pv = np.vstack(self.member_rows["pv_kw"]).T
        n_hours = net.shape[1] // per_hour

        def hourly_lec(values):
            return m.lec_sum(values).reshape(len(m.lec_names), n_hours, per_hour).sum(axis=2) * m.dt_h

        net_kwh, load_kwh, pv_kwh = hourly_lec(net), hourly_lec(load), hourly_lec(pv)
        households = m.table[m.table["kind"] == "household"].groupby("lec").size()
        # each hour's and LEC's trades by their row positions: one pass, not a filter per hour (a year has 8,784)
        at = exchanges.groupby(["hour", "lec"]).indices if len(exchanges) else {}
        traded = {k: exchanges[k].to_numpy(dtype=float) for k in ("bought_kwh", "sold_kwh", "payment_eur",
                                                                   "wheeling_eur")}
        none = np.array([], dtype=int)
        rows = []
        for i, lec in enumerate(m.lec_names):
            for hour in range(n_hours):
                x = at.get((hour, lec), none)
                bought, sold = float(traded["bought_kwh"][x].sum()), float(traded["sold_kwh"][x].sum())
                balance = net_kwh[i, hour] - bought + sold
                grid_import, grid_export = max(0.0, balance), max(0.0, -balance)
                grid_cost = retail[hour] * grid_import - feed_in[hour] * grid_export
                payment, wheeling = float(traded["payment_eur"][x].sum()), float(traded["wheeling_eur"][x].sum())
                record = self.ems_records.get((hour, lec), {})
                rows.append({
                    "hour": hour, "lec": lec, "households": int(households[lec]), "load_kwh": load_kwh[i, hour],
                    "pv_kwh": pv_kwh[i, hour], "net_kwh": net_kwh[i, hour], "exchange_in_kwh": bought,
                    "exchange_out_kwh": sold, "grid_import_kwh": grid_import, "grid_export_kwh": grid_export,
                    "grid_cost_eur": grid_cost, "exchange_payment_eur": payment, "wheeling_eur": wheeling,
                    "cost_eur": grid_cost + payment + wheeling,
                    "planned_limit_excess_kwh": float(record.get("limit_excess_kw", 0.0))})
        return pd.DataFrame(rows)

    def soc_table(self) -> pd.DataFrame:
        """Per hour and LEC, the pooled batteries' energy at the hour's start as planned and as measured."""
        columns = ["planned_soc_start_kwh", "measured_soc_start_kwh", "soc_start_gap_kwh", "soc_start_kwh"]
        rows = [{"hour": hour, "lec": lec, **{c: record[c] for c in columns},
                 "planned_soc_end_kwh": record["planned_soc_kwh"]}
                for (hour, lec), record in sorted(self.ems_records.items())]
        return pd.DataFrame(rows, columns=["hour", "lec", *columns, "planned_soc_end_kwh"])

    def negotiation_tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        residuals = []
        for (hour, lec), record in sorted(self.ems_records.items()):
            for r in record.get("residuals", []):
                residuals.append({"hour": hour, "lec": lec, **r})
        residuals = pd.DataFrame(residuals, columns=["hour", "lec", "iteration", "neighbour", "primal_residual_kw",
                                                     "dual_residual_eur_per_kwh"])
        periods = []
        for hour, group in residuals.groupby("hour"):
            last = group[group["iteration"] == group["iteration"].max()]
            converged = all(self.ems_records[(hour, lec)]["converged"] for lec in group["lec"].unique())
            periods.append({"hour": hour, "iterations": int(group["iteration"].max()), "converged": converged,
                            "primal_residual_kw": float(last["primal_residual_kw"].max()),
                            "dual_residual_eur_per_kwh": float(last["dual_residual_eur_per_kwh"].max())})
        return pd.DataFrame(periods, columns=["hour", "iterations", "converged", "primal_residual_kw",
                                              "dual_residual_eur_per_kwh"]), residuals

    def p2p_table(self) -> pd.DataFrame:
        rows = []
        for (hour, lec), record in sorted(self.ems_records.items()):
            for t in record.get("trades", []):
                rows.append({"hour": hour, "lec": lec, **{k: v for k, v in t.items() if k != "hour"}})
        columns = ["hour", "lec", "member", "net_kwh", "bought_kwh", "sold_kwh", "grid_import_kwh", "grid_export_kwh",
                   "price_eur_per_kwh", "import_cap_kw", "import_fee_eur_per_kwh", "fee_eur", "cost_eur"]
        return pd.DataFrame(rows, columns=columns)

    def forecast_errors_table(self) -> pd.DataFrame | None:
        """The errors of the LEC_EMSs' forecasts (module docstring); None when they planned on the true profiles."""
        if not any("forecast_load_kw" in r for r in self.ems_records.values()):
            return None
        m = self.members
        per_hour = steps_per_hour(m)
        names = m.lec_names

        def hourly_lec(key, plus=None):
            values = np.vstack(self.member_rows[key]).T
            if plus is not None:
                values = values + np.vstack(self.member_rows[plus]).T
            lec = m.lec_sum(values)
            return lec.reshape(len(names), lec.shape[1] // per_hour, per_hour).mean(axis=2)

        load, pv = hourly_lec("load_kw"), hourly_lec("pv_kw", plus="curtailed_kw")  # PV before curtailment
        actual = {"load": load, "pv": pv, "net": load - pv}
        errors = []  # (lec, signal, lead, error kW)
        n_hours = load.shape[1]
        for (hour, lec), record in sorted(self.ems_records.items()):
            i = names.index(lec)
            forecast = {"load": np.asarray(record["forecast_load_kw"]), "pv": np.asarray(record["forecast_pv_kw"])}
            forecast["net"] = forecast["load"] - forecast["pv"]
            window = min(len(forecast["load"]), n_hours - hour)
            for signal, values in forecast.items():
                for k in range(window):
                    errors.append((lec, signal, k, hour, values[k] - actual[signal][i, hour + k]))
        frame = pd.DataFrame(errors, columns=["lec", "signal", "k", "hour", "error_kw"])
        community = frame.groupby(["signal", "k", "hour"], as_index=False)["error_kw"].sum().assign(lec="all")
        frame = pd.concat([frame, community], ignore_index=True)
        rows = []
        for lec in [*names, "all"]:
            for signal in ("load", "pv", "net"):
                mine = frame[(frame["lec"] == lec) & (frame["signal"] == signal)]
                for lead, chosen in (("next_hour", mine[mine["k"] == 0]), ("window", mine)):
                    e = chosen["error_kw"].to_numpy()
                    rows.append({"lec": lec, "signal": signal, "lead": lead, "forecasts": len(e),
                                 "mae_kw": float(np.abs(e).mean()), "rmse_kw": float(np.sqrt((e ** 2).mean())),
                                 "bias_kw": float(e.mean())})
        return pd.DataFrame(rows)

    def cda_tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The continuous double auction's trades, per hour and LEC against the pool of the same orders, and per
        member (:mod:`lec_cosim.models.continuous_auction`; the module docstring for the columns)."""
        from lec_cosim.models.continuous_auction import MIN_TRADE_KWH, price_stats

        trades, hours = [], []
        for (hour, lec), record in sorted(self.ems_records.items()):
            if record.get("market") != "continuous":
                continue
            mine = [{"hour": hour, "lec": lec, **t} for t in record["cda_trades"]]
            trades += mine
            stats = price_stats([t["price_eur_per_kwh"] for t in mine], [t["quantity_kwh"] for t in mine])
            pool = record["pool_counterfactual"]
            hours.append({"hour": hour, "lec": lec, "orders": len(record["cda_arrival"]), "trades": stats["trades"],
                          "cda_volume_kwh": float(sum(t["quantity_kwh"] for t in mine)),
                          "pool_volume_kwh": pool["volume_kwh"], "cda_welfare_eur": record["cda_welfare_eur"],
                          "pool_welfare_eur": pool["welfare_eur"], "pool_price_eur_per_kwh": pool["price_eur_per_kwh"],
                          **{f"cda_price_{k}": stats[f"{k}"] for k in
                             ("mean_eur_per_kwh", "min_eur_per_kwh", "max_eur_per_kwh", "std_eur_per_kwh")}})
        trades = pd.DataFrame(trades, columns=["hour", "lec", "sequence", "buyer", "seller", "quantity_kwh",
                                               "price_eur_per_kwh", "maker_side"])
        hours = pd.DataFrame(hours, columns=["hour", "lec", "orders", "trades", "cda_volume_kwh", "pool_volume_kwh",
                                             "cda_welfare_eur", "pool_welfare_eur", "pool_price_eur_per_kwh",
                                             "cda_price_mean_eur_per_kwh", "cda_price_min_eur_per_kwh",
                                             "cda_price_max_eur_per_kwh", "cda_price_std_eur_per_kwh"])
        table = self.members.table
        homes = table[table["kind"] == "household"]
        money = trades["quantity_kwh"] * trades["price_eur_per_kwh"]
        bought = trades["quantity_kwh"].groupby(trades["buyer"]).sum()
        sold = trades["quantity_kwh"].groupby(trades["seller"]).sum()
        paid, received = money.groupby(trades["buyer"]).sum(), money.groupby(trades["seller"]).sum()
        members = pd.DataFrame({"lec": homes["lec"].to_numpy(), "member": homes["member"].to_numpy()})
        for column, series in (("bought_kwh", bought), ("sold_kwh", sold), ("paid_eur", paid),
                               ("received_eur", received)):
            members[column] = members["member"].map(series).fillna(0.0).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):  # no mean price for a member whose trades are rounding
            members["buy_price_mean_eur_per_kwh"] = (members["paid_eur"] / members["bought_kwh"]).where(
                members["bought_kwh"] >= MIN_TRADE_KWH)
            members["sell_price_mean_eur_per_kwh"] = (members["received_eur"] / members["sold_kwh"]).where(
                members["sold_kwh"] >= MIN_TRADE_KWH)
        return trades, hours, members

    def household_limit_tables(self, members: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Per step and household, the limits in force and how far over; per household over the run."""
        homes = members[members["kind"] == "household"].reset_index(drop=True)
        n_homes = int((self.members.table["kind"] == "household").sum())
        in_force = {}
        for port, column in (("household_import_limit_kw", "import_limit_kw"),
                             ("household_export_limit_kw", "export_limit_kw")):
            published = [v if len(v) == n_homes else np.full(n_homes, np.inf) for v in self.household_limit_rows[port]]
            # what the DSO published at step k is in force from step k + 1 (households and LEC_EMSs read it then)
            in_force[column] = np.concatenate([np.full(n_homes, np.inf), *published[:-1]])
        table = homes[["time", "step", "member", "lec", "net_kw", "curtailed_kw"]].copy()
        table["import_limit_kw"], table["export_limit_kw"] = in_force["import_limit_kw"], in_force["export_limit_kw"]
        table["over_import_limit_kw"] = np.maximum(table["net_kw"] - table["import_limit_kw"], 0.0)
        table["over_export_limit_kw"] = np.maximum(-table["net_kw"] - table["export_limit_kw"], 0.0)
        dt_h = self.members.dt_h
        per_home = homes.groupby(["lec", "member"], sort=False).agg(
            load_kwh=("load_kw", "sum"), pv_kwh=("pv_kw", "sum"), curtailed_kwh=("curtailed_kw", "sum"))
        per_home[["load_kwh", "pv_kwh", "curtailed_kwh"]] *= dt_h
        # PV before curtailment: pv_kw is what ran
        per_home["pv_kwh"] += per_home["curtailed_kwh"]
        over = table.groupby(["lec", "member"], sort=False)
        per_home["curtailed_share"] = (per_home["curtailed_kwh"] / per_home["pv_kwh"]).where(per_home["pv_kwh"] > 0)
        per_home["over_import_limit_kwh"] = over["over_import_limit_kw"].sum() * dt_h
        per_home["over_export_limit_kwh"] = over["over_export_limit_kw"].sum() * dt_h
        per_home["steps_over_import_limit"] = over["over_import_limit_kw"].apply(lambda v: int((v > 1e-9).sum()))
        return table, per_home.reset_index()

    # -- the contract ----------------------------------------------------------------------

    def write(self, out: Path, *, replies: dict, wall_time_s: float) -> dict:
        out = Path(out)
        s = self.scenario
        members, grid, lecs = self.members_table(), self.grid_table(), self.lecs_table()
        exchanges = self.exchanges_table()
        settlement = self.settlement_table(exchanges)
        tables = {"members.csv": members, "grid.csv": grid, "lecs.csv": lecs, "settlement.csv": settlement,
                  "exchanges.csv": exchanges, "ems_soc.csv": self.soc_table()}
        negotiation = residuals = cda = None
        if "negotiation" in self.tables:
            negotiation, residuals = self.negotiation_tables()
            tables["negotiation.csv"] = negotiation
            tables["negotiation_residuals.csv"] = residuals
        tables.update(calendar_tables(settlement, grid, self.members.start, self.members.dt_h))
        if "p2p_trades" in self.tables:
            tables["p2p_trades.csv"] = self.p2p_table()
        if "cda_trades" in self.tables:
            cda = self.cda_tables()
            tables.update(zip(("p2p_cda_trades.csv", "p2p_cda_vs_pool.csv", "p2p_cda_members.csv"), cda))
        forecast_errors = self.forecast_errors_table()
        if forecast_errors is not None:
            tables["forecast_errors.csv"] = forecast_errors
        extra_kpis = {}
        if self.extra_columns:
            components = pd.DataFrame({"time": self._time(np.arange(len(self.extra_rows[self.extra_columns[0]]))),
                                       **self.extra_rows})
            tables["components.csv"] = components
            extra_kpis = extension_kpis(self.added_kpis, components, s)
        household_kpis = {}
        if self.household_limit_rows:
            tables["household_limits.csv"], tables["households.csv"] = self.household_limit_tables(members)
            household_kpis = household_limit_kpis(tables["households.csv"], out / "line_overloads.csv")
        for name, frame in tables.items():
            _write_csv(frame, out / name)
        lines = [json.dumps(record) for _, record in sorted(self.ems_records.items())]
        (out / "ems_records.jsonl").write_text("\n".join(lines) + "\n")
        graph = federation_graph(replies)
        (out / GRAPH_FILE).write_text(json.dumps(graph, indent=2))
        summary = {
            "kind": s.kind, "scenario": s.name, "framework": s.framework, "dso_limits": s.dso.limits,
            **({"dso_limits_per": "household", "dso_sharing": s.dso.sharing} if household_kpis else {}),
            "horizon_h": s.horizon_h, "grid_step_min": s.resolution.grid_min,
            # the warm start is the default, which scenario.json leaves out: the run says which it negotiated with
            **({"negotiation_warm_start": s.negotiation.warm_start,
                "negotiation_over_relaxation": s.negotiation.over_relaxation,
                "negotiation_adaptive_rho": s.negotiation.adaptive_rho} if s.framework == "distributed" else {}),
            **({"forecast": s.ems.forecast} if forecast_errors is not None else {}),
            "kpis": join_kpis(kpis(s, settlement, grid, members, negotiation, tables.get("p2p_trades.csv"), graph,
                                 self.members.dt_h, wall_time_s, cda=cda, forecast_errors=forecast_errors)
                         | household_kpis,
                              extra_kpis),
        }
        tmp = out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(out / "summary.json")
        return summary


def calendar_tables(settlement: pd.DataFrame, grid: pd.DataFrame, start, dt_h: float) -> dict[str, pd.DataFrame]:
    """The run by calendar day and month: ``days.csv`` / ``months.csv`` per period and LEC (energies, cost,
    self-sufficiency as the KPIs define it), ``grid_days.csv`` / ``grid_months.csv`` per period (violations,
    overloads, losses, voltage extremes, transformer peaks)."""
    start = pd.Timestamp(start)
    hours = start + pd.to_timedelta(settlement["hour"].to_numpy(), unit="h")
    steps = pd.to_datetime(grid["time"])
    energies = ["load_kwh", "pv_kwh", "grid_import_kwh", "grid_export_kwh", "exchange_in_kwh", "exchange_out_kwh",
                "cost_eur"]
    out = {}
    for name, fmt in (("days", "%Y-%m-%d"), ("months", "%Y-%m")):
        label = "date" if name == "days" else "month"
        lecs = settlement[["lec", *energies]].assign(**{label: hours.strftime(fmt)}).groupby(
            [label, "lec"], sort=True)[energies].sum().reset_index()
        outside = lecs["grid_import_kwh"] + lecs["exchange_in_kwh"]
        with np.errstate(invalid="ignore", divide="ignore"):
            lecs["self_sufficiency"] = (1.0 - outside / lecs["load_kwh"]).where(lecs["load_kwh"] > 0)
        out[f"{name}.csv"] = lecs
        g = grid.assign(**{label: steps.dt.strftime(fmt)}).groupby(label, sort=True)
        out[f"grid_{name}.csv"] = pd.DataFrame({
            "bus_violations": g["bus_violations"].sum(),
            "steps_with_bus_violations": g["bus_violations"].apply(lambda v: int((v > 0).sum())),
            "line_overloads": g["line_overloads"].sum(),
            "losses_kwh": g["p_loss_kw"].sum() * dt_h,
            "vm_min_pu": g["vm_min_pu"].min(), "vm_max_pu": g["vm_max_pu"].max(),
            "trafo_peak_import_kw": g["trafo_p_kw"].max().clip(lower=0.0),
            "trafo_peak_export_kw": (-g["trafo_p_kw"].min()).clip(lower=0.0),
        }).reset_index()
    return out


def federation_graph(replies: dict) -> dict:
    """The message graph and the value graph of a run, from the federates' ``exchanges`` answers.

    The households' hourly measurements to the LEC_EMSs (from their ``meter`` endpoint) are physics, sent as
    messages only because a value would tie the two federates in a loop of HELICS time requests
    (``docs/design/frameworks.md``): they are the graph's ``measurements``, not among its ``messages`` (what the
    frameworks coordinate by, and the ``messages`` KPI counts)."""
    from federates.topology import message_graph
    from lec_cosim.studies.three_lecs.wiring import HOUSEHOLDS_METER_ENDPOINT

    def only(reply: dict, measurements: bool) -> dict:
        sent = [m for m in reply["messages"] if (m["source"] == HOUSEHOLDS_METER_ENDPOINT) == measurements]
        return {**reply, "messages": sent}

    publisher = {key: name for name, reply in replies.items() for key in reply["publications"]}
    values = defaultdict(set)
    for name, reply in replies.items():
        for key in reply["subscriptions"]:
            if key in publisher:
                values[(publisher[key], name)].add(key)
    coordination = {name: only(reply, False) for name, reply in replies.items()}
    measured = {name: only(reply, True) for name, reply in replies.items()}
    return {
        "federates": replies,
        "messages": [{"source": a, "destination": b, "count": n} for a, b, n in message_graph(coordination)],
        "measurements": [{"source": a, "destination": b, "count": n} for a, b, n in message_graph(measured)],
        "values": [{"source": a, "destination": b, "keys": sorted(keys)} for (a, b), keys in sorted(values.items())],
    }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def kpis(scenario, settlement, grid, members, negotiation, p2p, graph, dt_h, wall_time_s, cda=None,
         forecast_errors=None) -> dict:
    per_lec = {}
    for lec, rows in settlement.groupby("lec", sort=True):
        load = float(rows["load_kwh"].sum())
        outside = float(rows["grid_import_kwh"].sum() + rows["exchange_in_kwh"].sum())
        cost = float(rows["cost_eur"].sum())
        households = int(rows["households"].iloc[0])
        per_lec[lec] = {
            "households": households, "load_kwh": load, "pv_kwh": float(rows["pv_kwh"].sum()),
            "grid_import_kwh": float(rows["grid_import_kwh"].sum()),
            "grid_export_kwh": float(rows["grid_export_kwh"].sum()),
            "exchange_in_kwh": float(rows["exchange_in_kwh"].sum()),
            "exchange_out_kwh": float(rows["exchange_out_kwh"].sum()),
            "cost_eur": cost, "cost_per_member_eur": cost / households,
            "self_sufficiency": 1.0 - outside / load if load > 0 else None,
            "curtailed_kwh": float(members.loc[members["lec"] == lec, "curtailed_kw"].sum() * dt_h),
        }
    load = float(settlement["load_kwh"].sum())
    households = int(settlement.groupby("lec")["households"].first().sum())
    messages = graph["messages"]
    result = {
        "lecs": per_lec,
        "total_cost_eur": float(settlement["cost_eur"].sum()),
        "cost_per_member_eur": float(settlement["cost_eur"].sum()) / households,
        "grid_import_kwh": float(settlement["grid_import_kwh"].sum()),
        "grid_export_kwh": float(settlement["grid_export_kwh"].sum()),
        "exchanged_kwh": float(settlement["exchange_out_kwh"].sum()),
        "self_sufficiency": 1.0 - float(settlement["grid_import_kwh"].sum()) / load,
        "curtailed_kwh": float(members["curtailed_kw"].sum() * dt_h),
        "trafo_peak_kw": float(grid["trafo_p_kw"].abs().max()),
        "trafo_peak_import_kw": float(grid["trafo_p_kw"].max()),
        "trafo_peak_export_kw": float(max(0.0, -grid["trafo_p_kw"].min())),
        "vm_min_pu": float(grid["vm_min_pu"].min()), "vm_max_pu": float(grid["vm_max_pu"].max()),
        "bus_violations": int(grid["bus_violations"].sum()),
        "steps_with_bus_violations": int((grid["bus_violations"] > 0).sum()),
        "line_overloads": int(grid["line_overloads"].sum()),
        "losses_kwh": float(grid["p_loss_kw"].sum() * dt_h),
        "planned_limit_excess_kwh": float(settlement["planned_limit_excess_kwh"].sum()),
        "messages": int(sum(m["count"] for m in messages)),
        "message_links": len(messages),
        "negotiation_tol_kw": None, "iterations_total": None, "iterations_max": None, "negotiation_converged": None,
        "wall_time_s": float(wall_time_s),
    }
    if negotiation is not None and len(negotiation):
        result.update({"negotiation_tol_kw": float(scenario.negotiation.tol_kw),
                       "iterations_total": int(negotiation["iterations"].sum()),
                       "iterations_max": int(negotiation["iterations"].max()),
                       "negotiation_converged": bool(negotiation["converged"].all())})
    if p2p is not None and len(p2p):
        result.update({"p2p_volume_kwh": float(p2p["bought_kwh"].sum()), "p2p_fees_eur": float(p2p["fee_eur"].sum())})
    if cda is not None:
        result.update(cda_kpis(*cda))
    if forecast_errors is not None:
        result["forecast_errors"] = forecast_error_kpis(forecast_errors)
    return result


def forecast_error_kpis(errors: pd.DataFrame) -> dict:
    """Per signal, over every LEC's forecasts (not the community's sums): MAE, RMSE and bias of every hour of the
    windows, and MAE and RMSE of the next hour, kW (``forecast_errors.csv``'s rows weighted by their counts)."""
    out = {}
    for signal in ("load", "pv", "net"):
        mine = errors[(errors["lec"] != "all") & (errors["signal"] == signal)]
        result = {}
        for lead, suffix in (("window", ""), ("next_hour", "_next_hour")):
            rows = mine[mine["lead"] == lead]
            weights = rows["forecasts"].to_numpy(dtype=float)
            result[f"mae{suffix}_kw"] = float(np.average(rows["mae_kw"], weights=weights))
            result[f"rmse{suffix}_kw"] = float(np.sqrt(np.average(rows["rmse_kw"] ** 2, weights=weights)))
            if lead == "window":
                result["bias_kw"] = float(np.average(rows["bias_kw"], weights=weights))
        out[signal] = result
    return out


def household_limit_kpis(households: pd.DataFrame, overloads_csv: Path) -> dict:
    """With the DSO's limits per household: curtailment per household and its fairness (Jain's index of the
    curtailed kWh over the households with PV), energy above the limits (load cannot be curtailed), and the
    thermal overloads that remain (the DSO's ``line_overloads.csv``, when it wrote one): in which direction,
    how many line sections, and in how many of the row-steps the households behind were over their import
    limits."""
    from lec_cosim.models.household_envelope import jain_index

    with_pv = households[households["pv_kwh"] > 0]
    kpis = {
        "curtailment_jain_index": jain_index(with_pv["curtailed_kwh"]),
        "households_curtailed": int((households["curtailed_kwh"] > 1e-6).sum()),
        "household_curtailed_kwh_max": float(households["curtailed_kwh"].max()),
        "household_curtailed_share_max": float(with_pv["curtailed_share"].max()) if len(with_pv) else None,
        "import_over_household_limits_kwh": float(households["over_import_limit_kwh"].sum()),
        "export_over_household_limits_kwh": float(households["over_export_limit_kwh"].sum()),
        "households_over_import_limit": int((households["over_import_limit_kwh"] > 1e-6).sum()),
    }
    if overloads_csv.exists():
        rows = pd.read_csv(overloads_csv)
        kpis.update({
            "overload_rows_import": int((rows["direction"] == "import").sum()),
            "overload_rows_export": int((rows["direction"] == "export").sum()),
            "overloaded_elements": int(rows["element"].nunique()),
            "overload_rows_over_import_limits": int((rows["over_import_limit_kw"] > 1e-6).sum()),
        })
    return kpis


def cda_kpis(trades: pd.DataFrame, hours: pd.DataFrame, members: pd.DataFrame) -> dict:
    """The continuous double auction against the pool of the same orders (both cleared every hour), and the
    spread of the prices members got: trade prices weighted by kWh, and the members' own mean prices."""
    from lec_cosim.models.continuous_auction import price_stats

    stats = price_stats(trades["price_eur_per_kwh"].to_numpy(), trades["quantity_kwh"].to_numpy())
    pool_welfare = float(hours["pool_welfare_eur"].sum())
    priced = hours["pool_price_eur_per_kwh"].notna() & (hours["pool_volume_kwh"] > 0)
    pool_volume = hours.loc[priced, "pool_volume_kwh"]
    member_prices = pd.concat([members["buy_price_mean_eur_per_kwh"], members["sell_price_mean_eur_per_kwh"]]).dropna()
    return {
        "p2p_cda_trades": stats["trades"],
        "p2p_cda_volume_kwh": float(trades["quantity_kwh"].sum()),
        "p2p_pool_counterfactual_volume_kwh": float(hours["pool_volume_kwh"].sum()),
        "p2p_cda_welfare_eur": float(hours["cda_welfare_eur"].sum()),
        "p2p_pool_counterfactual_welfare_eur": pool_welfare,
        # welfare of the auction as a share of the pool's, the largest welfare the same orders allow
        "p2p_cda_efficiency_ratio": float(hours["cda_welfare_eur"].sum()) / pool_welfare if pool_welfare > 0 else None,
        "p2p_cda_price_mean_eur_per_kwh": stats["mean_eur_per_kwh"],
        "p2p_cda_price_std_eur_per_kwh": stats["std_eur_per_kwh"],
        "p2p_cda_price_min_eur_per_kwh": stats["min_eur_per_kwh"],
        "p2p_cda_price_max_eur_per_kwh": stats["max_eur_per_kwh"],
        "p2p_pool_counterfactual_price_mean_eur_per_kwh": (
            float(np.average(hours.loc[priced, "pool_price_eur_per_kwh"], weights=pool_volume))
            if pool_volume.sum() > 0 else None),
        "p2p_cda_member_price_min_eur_per_kwh": float(member_prices.min()) if len(member_prices) else None,
        "p2p_cda_member_price_max_eur_per_kwh": float(member_prices.max()) if len(member_prices) else None,
    }
