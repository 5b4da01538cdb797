"""The three-LEC study's grid for the DSO component: the IEEE European LV feeder, three-phase, and the DSO loop.

At every grid step it reads the members' powers (input ports ``net_kw`` and ``load_kvar``: households,
then community batteries), solves the feeder (:class:`lec_cosim.models.multi_lec_grid.MultiLecGrid`)
and returns the grid's indicators and each LEC's voltages and net import. With ``dso.limits`` it also
returns each LEC's import and export limits (:class:`~lec_cosim.models.multi_lec_grid.OperatingEnvelope`),
which the LEC_EMSs read at the next hour's start and respect from then on: the most restrictive over
the steps of the hour so far and, at the hour's last step, also over its forecast of the next hour
(the members' own load and PV, batteries idle: one power flow per step). Limits from the measured
hour alone come an hour late: a PV ramp in the morning violated the band before any limit from it
could act (measured on the shipped day: the one step out of band, at 09:30, was no better with such
a loop than without it). Without the loop the limits are infinite.

With ``dso.limits_per: household`` the limits are each household's, from voltages and line and transformer
loadings (:class:`~lec_cosim.models.household_envelope.HouseholdEnvelope`, shared on common branches by
``dso.sharing``), taken over the same states: it publishes them (``household_import_limit_kw``,
``household_export_limit_kw``, one value per household) and, as each LEC's limits, the sums of its households'.
Thermal limits change with the hour (the evening's load), unlike the voltage limits, which the LEC_EMSs apply to
every remaining hour: so it also publishes each LEC's limits for every hour of the run from its forecast (the
members' own load and PV, batteries idle; ``import_limit_day_kw``, ``export_limit_day_kw``: LEC by LEC, hour by
hour), which the LEC_EMSs plan their later hours with; without them a plan discharged its batteries in the evening
down to what it could not recharge by midnight within the night's limits. At its last step it also writes
``line_overloads.csv``: every overloaded thermal row (line section or
transformer side, and phase) of every grid step, its direction, the households behind it and how far they were
over the limits in force (:meth:`ThreeLecGrid.overload_rows`).

In its last step it writes each bus's lowest and highest voltage and each line's and the
transformer's peak loading over the run's grid steps (not the forecasts; ``bus_voltage_extremes.csv``,
``line_loading_peaks.csv``: :class:`lec_cosim.models.grid_extremes.GridExtremes`) into the run folder
(the config's ``output_dir``): before the recorder's last slot, so before ``summary.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INDICATORS = ("vm_min_pu", "vm_max_pu", "p_loss_kw", "q_loss_kvar", "trafo_p_kw", "max_line_loading_percent",
              "bus_violations", "line_overloads")
"""Output ports named as the fields of the grid's result (``LemGridResult``) they carry."""
PER_LEC = ("lec_vm_min_pu", "lec_vm_max_pu", "lec_net_import_kw")
"""Output ports named as the fields of the feeder's result (``MultiLecGridResult``), one value per LEC."""
LIMITS = ("import_limit_kw", "export_limit_kw")
"""Output ports of the DSO loop, one value per LEC."""
HOUSEHOLD_LIMITS = ("household_import_limit_kw", "household_export_limit_kw", "import_limit_day_kw",
                    "export_limit_day_kw")
"""Output ports of the DSO loop per household (``dso.limits_per: household``; settings ``household_limits``):
each household's limits, and each LEC's for every hour of the run from the forecast (``n_lecs x n_hours``, LEC by
LEC)."""
OVERLOADS_FILE = "line_overloads.csv"
OVERLOAD_COLUMNS = ["step", "element", "phase", "loading_percent", "direction", "households_behind",
                    "net_import_kw", "import_limit_kw", "over_import_limit_kw", "export_limit_kw",
                    "over_export_limit_kw", "battery_discharge_kw", "battery_room_kw", "relief_needed_kw", "cause"]
"""``line_overloads.csv``: per grid step and overloaded thermal row; the sums are over the households behind it
(the limits those in force at the step, ``inf`` before the first): their home batteries' discharge (positive) and
the discharge they could still add for the step (power and stored energy), and the change of the households' net
power behind the row that would bring it to its rating (the envelope's linear model: less import for an import
overload, less export for an export one). ``cause``: ``batteries behind too small`` when that change is more than
the home batteries behind could still give (import) or take (export), else ``batteries behind not used`` (``no
household behind``: a branch to a community battery alone)."""


def dso_grid(scenario, members, feeder=None):
    """The DSO's three-phase grid of a three-LEC scenario (its ``dso`` band, loading limit and solver) for its
    ``members``: on the IEEE feeder of ``feeder.data_dir``, or on ``feeder`` (a ``feeder.source`` already read)."""
    from lec_cosim.models.multi_lec_grid import MultiLecGrid

    d = scenario.dso
    return MultiLecGrid(members, vm_min_pu=d.vm_min_pu, vm_max_pu=d.vm_max_pu,
                        max_loading_percent=d.max_loading_percent, step_h=members.dt_h,
                        data_dir=scenario.feeder.data_dir, feeder=feeder, solver=d.solver)


class ThreeLecGrid:
    @staticmethod
    def ports(settings: dict) -> tuple:
        """The members' vectors and any home loads a study adds in; the grid's indicators, each LEC's values and
        the DSO loop's limits (infinite without it) out."""
        from lec_cosim.adapters import MEANINGS
        from lec_cosim.components import Port, unit_of

        counts = ("bus_violations", "line_overloads")
        return (Port("net_kw", "in", "vector", "kW", "each member's net import"),
                Port("load_kvar", "in", "vector", "kvar", "each member's reactive load"),
                *(Port(v, "in", "vector", unit_of(v), "connected by the three-LEC wiring, not read", optional=True)
                  for v in ("load_kw", "pv_kw", "curtailed_kw", "battery_kw", "soc_kwh")),
                *(Port(name, "in", "vector", "kW", "a home load a study adds (extra_loads_kw), per household")
                  for name in settings.get("extra_loads_kw", [])),
                *(Port(v, "out", "integer" if v in counts else "double", unit_of(v), MEANINGS[v]) for v in INDICATORS),
                *(Port(v, "out", "vector", unit_of(v), MEANINGS[v]) for v in PER_LEC + LIMITS),
                *(Port(v, "out", "vector", unit_of(v), MEANINGS[v]) for v in HOUSEHOLD_LIMITS
                  if settings.get("household_limits")))

    def __init__(self, scenario, settings: dict):
        # imported here: the compiler reads ports() without loading the grid engines
        from lec_cosim.models.feeder_source import feeder_of
        from lec_cosim.models.grid_extremes import GridExtremes
        from lec_cosim.models.multi_lec_ems import members_from_scenario, steps_per_hour
        from lec_cosim.models.multi_lec_grid import OperatingEnvelope

        s = scenario
        feeder = feeder_of(s)  # None: the IEEE feeder of feeder.data_dir
        self.members = members = members_from_scenario(s, feeder)
        kinds = members.table["kind"].to_numpy()
        self.n_members = len(kinds)
        self.households, self.batteries = kinds == "household", kinds == "community_battery"
        self.grid = dso_grid(s, members, feeder)
        self.per_household = s.dso.limits and s.dso.limits_per == "household"
        if self.per_household:
            from lec_cosim.models.household_envelope import HouseholdEnvelope

            self.envelope = HouseholdEnvelope.build(self.grid, rule=s.dso.sharing, margin_pu=s.dso.margin_pu)
        else:
            self.envelope = OperatingEnvelope.build(self.grid, margin_pu=s.dso.margin_pu) if s.dso.limits else None
        n_homes = int(self.households.sum())
        self.in_force = (np.full(n_homes, np.inf), np.full(n_homes, np.inf))
        """The household limits the last step published: in force at the next (households and LEC_EMSs read them)."""
        self.overloads: list[dict] = []
        self.per_hour = steps_per_hour(members)
        self.n_steps = round(s.end_s / s.grid_step_s)
        self.forecast = self.day_limits = None
        if self.per_household:
            # the members' own load and PV, batteries idle: the same whatever the run does, so solved once
            self.forecast = [self.grid.solve_step(n) for n in range(self.n_steps)]
            self.day_limits = self.day_forecast()
        self.output_dir = Path(settings.get("output_dir", "."))
        self.hour_results = []
        self.extremes = GridExtremes(self.grid.lem_grid)
        self.write_extremes = True
        self.extra_loads: list[str] = list(settings.get("extra_loads_kw", []))
        """Input ports of loads a study adds at the homes (``lec_cosim.home_devices``): vectors, kW, one value
        per household."""

    def reset(self) -> None:
        """A learning environment's next episode (``Federate.run_episodes``): the feeder's extremes anew."""
        from lec_cosim.models.grid_extremes import GridExtremes

        self.hour_results.clear()
        self.extremes = GridExtremes(self.grid.lem_grid)
        self.overloads.clear()
        self.in_force = tuple(np.full_like(v, np.inf) for v in self.in_force)
        self.write_extremes = False  # an environment's episodes keep no results files

    def step(self, k: int, t_s: float, inputs) -> dict:
        net = np.array(inputs.read("net_kw"))
        kvar = np.array(inputs.read("load_kvar"))
        if len(net) != self.n_members:
            raise RuntimeError(f"dso: step {k}: expected {self.n_members} member powers, got {len(net)}")
        for port in self.extra_loads:
            extra = np.array(inputs.read(port))
            if len(extra) != self.households.sum():
                raise RuntimeError(f"dso: step {k}: {port}: {len(extra)} values for {self.households.sum()} homes")
            net[self.households] += extra
        # The grid model counts a community battery positive when it discharges.
        result = self.grid.solve(net[self.households], kvar[self.households], -net[self.batteries])
        self.extremes.add(result.grid)
        published = {name: getattr(result.grid, name) for name in INDICATORS}
        published.update({name: getattr(result, name) for name in PER_LEC})
        if k % self.per_hour == 0:
            self.hour_results.clear()
        self.hour_results.append(result)
        if self.per_household:
            charge = np.array(inputs.read("battery_kw"))  # members' batteries, charging positive
            soc = np.array(inputs.read("soc_kwh"))
            self.overloads += self.overload_rows(k, result, net[self.households], charge[self.households],
                                                 soc[self.households])
            homes = self.household_limits(k)
            self.in_force = homes
            published.update(zip(HOUSEHOLD_LIMITS, homes))
            published.update(zip(LIMITS, (self.envelope.lec_sums(v, len(self.members.lec_names)) for v in homes)))
            published.update(zip(HOUSEHOLD_LIMITS[2:], self.day_limits))
        else:
            published.update(zip(LIMITS, self.limits(k)))
        if k == self.n_steps - 1 and self.write_extremes:
            self.extremes.write(self.output_dir)
            if self.per_household:
                self.write_overloads()
        return published

    def household_limits(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each household's import and export limits after step ``k``: as :meth:`limits`, per household."""
        states = list(self.hour_results)
        hour = k // self.per_hour
        if k % self.per_hour == self.per_hour - 1 and k + 1 < self.n_steps:
            states += self.forecast[k + 1:k + 1 + self.per_hour]
            hour += 1
        return self.envelope.period_limits(states, self.needs(hour))

    def needs(self, hour: int) -> tuple[np.ndarray, np.ndarray]:
        """Each household's largest own import and export over the hour's forecast steps (load minus PV, batteries
        idle): the proportional rule's needs for every state of the hour, measured or forecast."""
        nets = np.array([r.household_net_kw for r in self.forecast[hour * self.per_hour:(hour + 1) * self.per_hour]])
        return nets.max(axis=0), (-nets).max(axis=0)

    def day_forecast(self) -> tuple[np.ndarray, np.ndarray]:
        """Each LEC's import and export limits for every hour of the run from the forecast states: the sums of its
        households' most restrictive limits over the hour's steps, flattened LEC by LEC (``n_lecs x n_hours``)."""
        n_lecs, n_hours = len(self.members.lec_names), self.n_steps // self.per_hour
        imports, exports = np.empty((n_lecs, n_hours)), np.empty((n_lecs, n_hours))
        for h in range(n_hours):
            homes = self.envelope.period_limits(self.forecast[h * self.per_hour:(h + 1) * self.per_hour],
                                                self.needs(h))
            imports[:, h], exports[:, h] = (self.envelope.lec_sums(v, n_lecs) for v in homes)
        return imports.ravel(), exports.ravel()

    def overload_rows(self, k: int, result, household_net_kw, home_battery_charge_kw, home_soc_kwh) -> list[dict]:
        """The overloaded thermal rows of step ``k``: direction (the sign of its households' active flow), the
        households behind it and, summed over them, their net import, the limits in force and how far over."""
        env = self.envelope
        loading = np.concatenate([result.grid.line_phase_loading_values.ravel(),
                                  result.grid.trafo_phase_loading_values.ravel()])
        over = np.flatnonzero(loading > env.max_loading_percent)
        if not len(over):
            return []
        imports, exports = self.in_force
        charge = np.asarray(home_battery_charge_kw, dtype=float)
        homes = self.members.table[self.households]
        power = homes["battery_kw"].to_numpy(dtype=float)
        energy = homes["battery_kwh"].to_numpy(dtype=float)
        leg = np.sqrt(np.where(energy > 0, homes["battery_efficiency"].to_numpy(dtype=float), 1.0))
        dt_h = self.members.dt_h
        soc = np.asarray(home_soc_kwh, dtype=float)
        # what each home battery could still add for the step: more discharge (import relief), more charge (export)
        more_discharge = np.maximum(np.minimum(power, soc * leg / dt_h) + charge, 0.0)
        more_charge = np.maximum(np.minimum(power, (energy - soc) / (leg * dt_h)) - charge, 0.0)
        room = env.active_room(result)
        rows = []
        for r in over:
            mine = env.behind(r)
            net = household_net_kw[mine]
            flow = float(env.thermal[r, mine] @ net)
            element, phase = env.thermal_rows[r]
            importing = flow >= 0
            # the linear model's change of the households' net behind the row that brings it to its rating (a row
            # no household is behind carries a community battery alone: nothing of theirs can relieve it)
            relief = max(abs(flow) - room[r], 0.0) / float(env.thermal[r, mine].mean()) if len(mine) else 0.0
            battery_room = float((more_discharge if importing else more_charge)[mine].sum())
            rows.append({"step": k, "element": element, "phase": phase, "loading_percent": float(loading[r]),
                         "direction": "import" if importing else "export", "households_behind": len(mine),
                         "net_import_kw": float(net.sum()), "import_limit_kw": float(imports[mine].sum()),
                         "over_import_limit_kw": float(np.maximum(net - imports[mine], 0.0).sum()),
                         "export_limit_kw": float(exports[mine].sum()),
                         "over_export_limit_kw": float(np.maximum(-net - exports[mine], 0.0).sum()),
                         "battery_discharge_kw": float(-charge[mine].sum()), "battery_room_kw": battery_room,
                         "relief_needed_kw": relief,
                         "cause": "no household behind" if not len(mine) else "batteries behind too small"
                         if relief > battery_room else "batteries behind not used"})
        return rows

    def write_overloads(self) -> None:
        import pandas as pd

        frame = pd.DataFrame(self.overloads, columns=OVERLOAD_COLUMNS)
        times = self.members.start + pd.to_timedelta(frame["step"] * self.members.grid_min, unit="min")
        frame.insert(0, "time", pd.Series(times).dt.strftime("%Y-%m-%dT%H:%M:%S"))
        frame.to_csv(self.output_dir / OVERLOADS_FILE, index=False, float_format="%.10g")

    def limits(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Each LEC's import and export limits after step ``k`` (infinite without the DSO loop)."""
        if self.envelope is None:
            return (np.full(len(self.members.lec_names), np.inf),) * 2
        imports, exports = self.envelope.period_limits(self.hour_results)
        if k % self.per_hour == self.per_hour - 1 and k + 1 < self.n_steps:
            forecast = [self.grid.solve_step(n) for n in range(k + 1, k + 1 + self.per_hour)]
            expected = self.envelope.period_limits(forecast)
            imports, exports = np.minimum(imports, expected[0]), np.minimum(exports, expected[1])
        return imports, exports
