"""Check and time ``LECGrid.solve`` against a plain pandapower ``pp.runpp`` of the same net.

    .venv/bin/python benchmarks/grid_solve.py [--scenario scenarios/trondelag_arbitrage.yaml] [--points 200]

Draws random operating points (load 0..1 MW at the scenario's power factor, PV 0..1 MW, battery
-0.6..0.6 MW), solves each with ``LECGrid.solve`` and with ``pp.runpp`` on an independent net
(the options the DSO used before: NR, 1e-10 MVA; and pandapower's defaults, whose own
tolerance is 1e-8 MVA, for information), compares every ``GridResult`` field, and prints the
per-call times; it also compares every column of the net's result tables. Exits 1 if the first comparison is off by more than 1e-9 pu / MW / MVAr (1e-7 %
for loadings).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pandapower as pp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lec_cosim.models.grid import GridResult, LECGrid  # noqa: E402
from lec_cosim.scenario import load_scenario  # noqa: E402

FIELDS = list(GridResult.__dataclass_fields__)
TOLERANCE = 1e-9  # pu, MW, MVAr; loadings in percent get 100 times that (1e-9 of the rating)


def tolerance(field: str) -> float:
    return TOLERANCE * 100 if field.endswith("_percent") else TOLERANCE


def plain_runpp(grid: LECGrid, point, **options) -> tuple[GridResult, np.ndarray]:
    """The result of ``pp.runpp(grid.net, **options)`` with the point's injections."""
    net = grid.net
    load_p, load_q, pv_p, battery_p = point
    net.load.at[grid.load, "p_mw"] = load_p
    net.load.at[grid.load, "q_mvar"] = load_q
    net.sgen.at[grid.pv, "p_mw"] = pv_p
    net.storage.at[grid.storage, "p_mw"] = battery_p
    pp.runpp(net, **options)
    result = GridResult(
        pcc_p_mw=float(net.res_trafo.at[grid.trafo, "p_hv_mw"]),
        pcc_q_mvar=float(net.res_trafo.at[grid.trafo, "q_hv_mvar"]),
        pcc_vm_pu=float(net.res_bus.at[grid.pcc_bus, "vm_pu"]),
        lv_vm_pu=float(net.res_bus.at[grid.lv_bus, "vm_pu"]),
        trafo_loading_percent=float(net.res_trafo.at[grid.trafo, "loading_percent"]),
        line_loading_percent=float(net.res_line.at[grid.line, "loading_percent"]),
        losses_mw=float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()),
    )
    return result, net.res_bus.vm_pu.to_numpy().copy()


def main(argv=None) -> int:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "trondelag_arbitrage.yaml"))
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    scenario = load_scenario(args.scenario)
    tan_phi = math.tan(math.acos(scenario.households.power_factor))
    rng = np.random.default_rng(args.seed)
    points = []
    for _ in range(args.points):
        load = rng.uniform(0.0, 1.0)
        points.append((load, load * tan_phi, rng.uniform(0.0, 1.0), rng.uniform(-0.6, 0.6)))

    grid = LECGrid(scenario.grid)
    print(f"LECGrid fast path: {'on' if grid.fast else 'OFF (lightsim2grid missing or self-check failed)'}")
    references = {  # numba=False only silences pandapower's "numba missing" message
        "pp.runpp(net, algorithm='nr', tolerance_mva=1e-10)": dict(algorithm="nr", tolerance_mva=1e-10, numba=False),
        "pp.runpp(net) with defaults (tolerance 1e-8 MVA)": dict(numba=False),
    }
    tables = ["res_bus", "res_line", "res_trafo", "res_ext_grid", "res_load", "res_sgen", "res_storage"]
    ok = True
    for n, (label, options) in enumerate(references.items()):
        ref_grid = LECGrid(scenario.grid)
        worst = dict.fromkeys(FIELDS, 0.0)
        worst_table = dict.fromkeys(tables, 0.0)
        injections_ok = True
        for point in points:
            fast = grid.solve(*point)
            fast_tables = {name: grid.net[name].to_numpy(dtype=float).copy() for name in tables}
            net = grid.net
            injections_ok &= (net.load.at[grid.load, "p_mw"], net.load.at[grid.load, "q_mvar"],
                              net.sgen.at[grid.pv, "p_mw"], net.storage.at[grid.storage, "p_mw"]) == point
            ref, _ = plain_runpp(ref_grid, point, **options)
            for name, a, b in zip(FIELDS, astuple(fast), astuple(ref)):
                worst[name] = max(worst[name], abs(a - b))
            for name in tables:
                diff = np.abs(fast_tables[name] - ref_grid.net[name].to_numpy(dtype=float))
                worst_table[name] = max(worst_table[name], float(np.max(diff)))
        print(f"max |LECGrid.solve - {label}| over {len(points)} points:")
        for name, value in worst.items():
            flag = "" if value <= tolerance(name) else "  > tolerance"
            print(f"  {name:24s} {value:.2e}{flag}")
        print("  whole result tables (any column; loadings in %, angles in degrees, currents in kA):")
        print("   " + ", ".join(f"{name} {value:.1e}" for name, value in worst_table.items()))
        print(f"  injections left in grid.net by solve equal the inputs: {'yes' if injections_ok else 'NO'}")
        if n == 0:
            ok = all(worst[name] <= tolerance(name) for name in FIELDS) and injections_ok
    print(f"agreement with the NR 1e-10 MVA reference within 1e-9 (1e-7 % for loadings): {'yes' if ok else 'NO'}")

    # Timing: per call, over the same points (after one warm-up call).
    def per_call_ms(fn, repeat=1) -> float:
        fn(*points[0])
        start = time.perf_counter()
        for _ in range(repeat):
            for point in points:
                fn(*point)
        return (time.perf_counter() - start) / (len(points) * repeat) * 1e3

    slow = LECGrid(scenario.grid)
    before = per_call_ms(slow.solve_runpp)
    timing = LECGrid(scenario.grid)
    after = per_call_ms(timing.solve, repeat=5)
    print(f"per call: before (pp.runpp) {before:.2f} ms, after (LECGrid.solve) {after:.3f} ms, "
          f"speed-up {before / after:.0f}x")
    print(f"a year at {scenario.resolution.grid_min} min ({int(8760 * 60 / scenario.resolution.grid_min)} calls): "
          f"{before * 35040 / 1e3:.0f} s -> {after * 35040 / 1e3:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
