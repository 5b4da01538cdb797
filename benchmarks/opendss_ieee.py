"""OpenDSS (dss-python) computing the IEEE European LV feeder from the IEEE's own files, given every participant's
powers: the anchor of ``benchmarks/federation_vs_opendss.py``, and a script of its own.

As a module: :func:`build_ieee_circuit` compiles ``data/ieee_eulv/opendss/Master.dss`` and adds the community's PV
and CHP units, :func:`run_opendss_loop` sets every load's and generator's power at each step, solves and reads the
voltages. As a script it is what an OpenDSS user would run for the same study, from a process's start to its end
(the benchmark times it as a whole, beside ``lec-cosim run`` as a whole)::

    python benchmarks/opendss_ieee.py --inputs POWERS.npz [--tolerance PU]

``POWERS.npz`` holds the participants' table as columns (``participant``, ``kind``, ``bus``, ``phase``) and their
powers over the steps (``load_kw``, ``load_kvar``, ``pv_kw``, ``chp_kw``: participants x steps, kW / kvar); the
script prints one JSON line (its build and loop seconds, the lowest and highest LV voltage). It imports numpy,
pandas and dss only, as such a script would.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "data" / "ieee_eulv" / "opendss" / "Master.dss"
LOAD_CONSTANT_POWER = "vminpu=0 vlowpu=0 vmaxpu=1000"
GENERATOR_CONSTANT_POWER = "vminpu=0 vmaxpu=1000"
"""Constant power at any voltage, as the project's model: OpenDSS's defaults switch loads (0.95-1.05 pu)
and generators (0.90-1.10 pu) to a constant impedance outside their band."""
PHASE_NODE = {"a": 1, "b": 2, "c": 3}
TABLE_COLUMNS = ("participant", "kind", "bus", "phase")
POWERS = ("load_kw", "load_kvar", "pv_kw", "chp_kw")


@dataclass
class IeeeCircuit:
    """The IEEE's OpenDSS circuit with the community's PV and CHP units added, and where each participant is.

    Attributes
    ----------
    dss : dss.IDSS
        The engine context holding the circuit.
    load_part, load_idx : numpy.ndarray
        Households (rows of the participants' table) and their IEEE ``Load`` (1-based index of ``Loads``).
    pv_part, pv_idx, chp_part, chp_idx : numpy.ndarray
        Prosumers and CHPs and their ``Generator`` (1-based index of ``Generators``).
    lv_nodes : numpy.ndarray of bool
        The LV nodes in ``AllNodeNames`` order (all but the 11 kV source bus).
    node_bus : numpy.ndarray of int
        IEEE bus number of each LV node.
    build_s, build_cpu_s : float
        Wall and CPU time of compiling the files and adding the generators.
    """

    dss: object
    load_part: np.ndarray
    load_idx: np.ndarray
    pv_part: np.ndarray
    pv_idx: np.ndarray
    chp_part: np.ndarray
    chp_idx: np.ndarray
    lv_nodes: np.ndarray
    node_bus: np.ndarray
    build_s: float
    build_cpu_s: float


def build_ieee_circuit(table: pd.DataFrame, master: Path = MASTER, tolerance_pu: float | None = None) -> IeeeCircuit:
    """Compile the IEEE's ``Master.dss``, add a single-phase PV ``Generator`` per prosumer on its load's bus and
    phase and a three-phase one per CHP at its bus, and map the participants of ``table`` to them.

    Raises ``ValueError`` if a household is not an IEEE load of the same name on the same bus and phase.
    """
    from dss import DSS

    started, started_cpu = time.perf_counter(), time.process_time()
    dss = DSS.NewContext()
    for flag in ("AllowChangeDir", "AllowForms", "AllowEditor"):  # no dialogs, no chdir in this process
        if hasattr(dss, flag):
            setattr(dss, flag, False)
    dss.Text.Command = f"compile [{master}]"
    table = table.reset_index(drop=True)
    prosumers, chps = table[table["kind"] == "prosumer"], table[table["kind"] == "chp"]
    commands = [f"batchedit load..* {LOAD_CONSTANT_POWER}"]
    for name, bus, phase in zip(prosumers["participant"], prosumers["bus"], prosumers["phase"]):
        commands.append(f"new generator.pv_{name} phases=1 bus1={int(bus)}.{PHASE_NODE[phase]} kv=0.23 kw=0 pf=1 "
                        f"model=1 {GENERATOR_CONSTANT_POWER}")
    for name, bus in zip(chps["participant"], chps["bus"]):
        commands.append(f"new generator.{name} phases=3 bus1={int(bus)} kv=0.416 kw=0 pf=1 model=1 "
                        f"{GENERATOR_CONSTANT_POWER}")
    dss.Text.Commands(commands)
    circuit = dss.ActiveCircuit
    if tolerance_pu is not None:
        circuit.Solution.Tolerance = tolerance_pu
    build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu

    loads, gens = circuit.Loads, circuit.Generators
    load_pos = {n.lower(): k + 1 for k, n in enumerate(loads.AllNames)}
    gen_pos = {n.lower(): k + 1 for k, n in enumerate(gens.AllNames)}
    households = table[table["kind"].isin(("consumer", "prosumer"))]
    if len(households) != loads.Count:
        raise ValueError(f"{len(households)} households for the IEEE files' {loads.Count} loads")
    for name, bus, phase in zip(households["participant"], households["bus"], households["phase"]):
        if name.lower() not in load_pos:
            raise ValueError(f"household {name} is not a load of {master}")
        loads.idx = load_pos[name.lower()]
        ieee_bus = circuit.ActiveCktElement.BusNames[0]
        if ieee_bus != f"{int(bus)}.{PHASE_NODE[phase]}":
            raise ValueError(f"household {name} sits at {bus} phase {phase}, its IEEE load at {ieee_bus}")
    names = np.array(circuit.AllNodeNames)
    lv = np.array([not n.startswith("sourcebus") for n in names])
    positions = lambda where, names: np.array([where[n.lower()] for n in names])
    return IeeeCircuit(
        dss=dss,
        load_part=households.index.to_numpy(), load_idx=positions(load_pos, households["participant"]),
        pv_part=prosumers.index.to_numpy(), pv_idx=positions(gen_pos, "pv_" + prosumers["participant"]),
        chp_part=chps.index.to_numpy(), chp_idx=positions(gen_pos, chps["participant"]),
        lv_nodes=lv, node_bus=np.array([int(n.split(".")[0]) for n in names[lv]]), build_s=build_s,
        build_cpu_s=build_cpu_s)


def run_opendss_loop(c: IeeeCircuit, load_kw, load_kvar, pv_kw, chp_kw) -> tuple[pd.DataFrame, pd.DataFrame, float,
                                                                                 float]:
    """At every step set each load's kW and kvar and each generator's kW, solve, read the node voltages.

    Parameters
    ----------
    c : IeeeCircuit
    load_kw, load_kvar, pv_kw, chp_kw : numpy.ndarray, shape (n_participants, n_steps)
        Every participant's powers, kW / kvar (as ``Community.load_kw``; ``chp_kw`` the market's CHP outputs).

    Returns
    -------
    steps : pandas.DataFrame
        Per step ``vm_min_pu``, ``vm_max_pu`` (LV nodes) and ``p_loss_kw`` (OpenDSS's circuit losses: lines
        and transformer).
    buses : pandas.DataFrame
        Per IEEE bus, index ``bus``: ``vm_min_pu``, ``vm_max_pu`` over its phases and the steps.
    seconds, cpu_s : float
        Wall and CPU time of the loop.
    """
    circuit = c.dss.ActiveCircuit
    loads, gens, solution = circuit.Loads, circuit.Generators, circuit.Solution
    # plain Python lists: the loop indexes them element by element
    load_rows = [(int(j), load_kw[i].tolist(), load_kvar[i].tolist()) for i, j in zip(c.load_part, c.load_idx)]
    gen_rows = ([(int(j), pv_kw[i].tolist()) for i, j in zip(c.pv_part, c.pv_idx)]
                + [(int(j), chp_kw[i].tolist()) for i, j in zip(c.chp_part, c.chp_idx)])
    n_steps = np.shape(load_kw)[1]
    vm_min, vm_max, p_loss = np.zeros(n_steps), np.zeros(n_steps), np.zeros(n_steps)
    lv = c.lv_nodes
    node_min = np.full(lv.sum(), np.inf)
    node_max = np.full(lv.sum(), -np.inf)
    started, started_cpu = time.perf_counter(), time.process_time()
    for k in range(n_steps):
        for j, kw, kvar in load_rows:
            loads.idx = j
            loads.kW = kw[k]  # kW first: its setter recomputes kvar from the power factor
            loads.kvar = kvar[k]
        for j, kw in gen_rows:
            gens.idx = j
            gens.kW = kw[k]
        solution.Solve()
        if not solution.Converged:
            raise RuntimeError(f"OpenDSS did not converge at step {k}")
        v = np.asarray(circuit.AllBusVmagPu)[lv]
        vm_min[k], vm_max[k] = v.min(), v.max()
        np.minimum(node_min, v, out=node_min)
        np.maximum(node_max, v, out=node_max)
        p_loss[k] = circuit.Losses[0] / 1000.0  # W -> kW
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    steps = pd.DataFrame({"vm_min_pu": vm_min, "vm_max_pu": vm_max, "p_loss_kw": p_loss})
    by_bus = pd.DataFrame({"vm_min_pu": node_min, "vm_max_pu": node_max}).groupby(c.node_bus)
    buses = pd.DataFrame({"vm_min_pu": by_bus["vm_min_pu"].min(), "vm_max_pu": by_bus["vm_max_pu"].max()})
    buses.index.name = "bus"
    return steps, buses, seconds, cpu_s


def write_inputs(path: Path, table: pd.DataFrame, load_kw, load_kvar, pv_kw, chp_kw) -> None:
    """The script's ``--inputs`` file: the participants' table and their powers (see the module's text)."""
    table = table.reset_index(drop=True)
    np.savez(path, **{c: table[c].to_numpy() for c in TABLE_COLUMNS}, load_kw=load_kw, load_kvar=load_kvar,
             pv_kw=pv_kw, chp_kw=chp_kw)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, required=True, help="the table and powers (write_inputs)")
    parser.add_argument("--tolerance", type=float, help="OpenDSS's solution tolerance, pu (default: its own, 1e-4)")
    args = parser.parse_args()
    inputs = np.load(args.inputs, allow_pickle=True)
    table = pd.DataFrame({c: inputs[c] for c in TABLE_COLUMNS})
    circuit = build_ieee_circuit(table, tolerance_pu=args.tolerance)
    steps, _, loop_s, _ = run_opendss_loop(circuit, *(inputs[p] for p in POWERS))
    print(json.dumps({"build_s": circuit.build_s, "loop_s": loop_s, "steps": len(steps),
                      "vm_min_pu": float(steps["vm_min_pu"].min()), "vm_max_pu": float(steps["vm_max_pu"].max())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
