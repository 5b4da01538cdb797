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
- ``summary.json``: scenario, framework, whether the DSO loop was on, and the KPIs.
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

    def add(self, k: int, t_s: float, inputs) -> None:
        """Step ``k``: the records published since the last step, and the step's values (see the class)."""
        for lec in self.members.lec_names:
            if inputs.updated(f"{lec}.record"):
                self.add_ems_record(inputs.read(f"{lec}.record"))
        if "platform.record" in inputs.ports and inputs.updated("platform.record"):
            self.add_platform_record(inputs.read("platform.record"))
        for port in self.extra_columns:
            self.extra_rows[port].append(inputs.read(port))
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
        rows = []
        for i, lec in enumerate(m.lec_names):
            for hour in range(n_hours):
                x = exchanges[(exchanges["hour"] == hour) & (exchanges["lec"] == lec)]
                bought, sold = float(x["bought_kwh"].sum()), float(x["sold_kwh"].sum())
                balance = net_kwh[i, hour] - bought + sold
                grid_import, grid_export = max(0.0, balance), max(0.0, -balance)
                grid_cost = retail[hour] * grid_import - feed_in[hour] * grid_export
                payment, wheeling = float(x["payment_eur"].sum()), float(x["wheeling_eur"].sum())
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
        if "p2p_trades" in self.tables:
            tables["p2p_trades.csv"] = self.p2p_table()
        if "cda_trades" in self.tables:
            cda = self.cda_tables()
            tables.update(zip(("p2p_cda_trades.csv", "p2p_cda_vs_pool.csv", "p2p_cda_members.csv"), cda))
        extra_kpis = {}
        if self.extra_columns:
            components = pd.DataFrame({"time": self._time(np.arange(len(self.extra_rows[self.extra_columns[0]]))),
                                       **self.extra_rows})
            tables["components.csv"] = components
            extra_kpis = extension_kpis(self.added_kpis, components, s)
        for name, frame in tables.items():
            _write_csv(frame, out / name)
        lines = [json.dumps(record) for _, record in sorted(self.ems_records.items())]
        (out / "ems_records.jsonl").write_text("\n".join(lines) + "\n")
        graph = federation_graph(replies)
        (out / GRAPH_FILE).write_text(json.dumps(graph, indent=2))
        summary = {
            "kind": s.kind, "scenario": s.name, "framework": s.framework, "dso_limits": s.dso.limits,
            "horizon_h": s.horizon_h, "grid_step_min": s.resolution.grid_min,
            "kpis": join_kpis(kpis(s, settlement, grid, members, negotiation, tables.get("p2p_trades.csv"), graph,
                                 self.members.dt_h, wall_time_s, cda=cda),
                              extra_kpis),
        }
        tmp = out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(out / "summary.json")
        return summary


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


def kpis(scenario, settlement, grid, members, negotiation, p2p, graph, dt_h, wall_time_s, cda=None) -> dict:
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
    return result


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
