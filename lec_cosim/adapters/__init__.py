"""What a study plugs into a generic component: grid adapters for the DSO, records for the recorder.

A **grid adapter** (``federates/dso.py`` runs it) is built as ``Adapter(scenario, settings)`` and
answers ``step(k, t_s, inputs) -> {output port: value}`` each step, reading what it needs from
``inputs`` (``federates.common.Inputs``: ports by name, never a key); an optional ``finish()`` runs
at the end. A **record** (``federates/recorder.py`` runs it) is built the same way and answers
``add(k, t_s, inputs)`` each step and ``write(output_dir, wall_time_s, replies)`` at the end
(``replies``: the ``exchanges`` query's answers when the plan asks for them, else None).
Both are named in the federate's config as ``"package.module:Name"``.
"""


MEANINGS = {
    "vm_min_pu": "lowest bus voltage of the step", "vm_max_pu": "highest bus voltage of the step",
    "p_loss_kw": "active losses", "q_loss_kvar": "reactive losses", "losses_mw": "active losses",
    "losses_mvar": "reactive losses", "trafo_p_kw": "the transformer's active power",
    "trafo_loading_percent": "the transformer's loading", "max_line_loading_percent": "the highest line loading",
    "dn_impact": "the DN-impact index of the step (voltage, angle and loading violations)",
    "bus_violations": "buses outside the voltage band", "bus_violations_reduced": "the same on the reduced model",
    "angle_violations": "buses past the voltage-angle limit", "line_overloads": "lines above their loading limit",
    "violated_buses_so_far": "distinct buses outside the band since the start",
    "violated_buses_so_far_reduced": "the same on the reduced model",
    "pcc_p_mw": "active power into the LEC at its point of common coupling", "pcc_q_mvar": "reactive power there",
    "pcc_vm_pu": "voltage at the point of common coupling", "lv_vm_pu": "voltage of the LV busbar",
    "lec_vm_min_pu": "each LEC's lowest bus voltage", "lec_vm_max_pu": "each LEC's highest bus voltage",
    "lec_net_import_kw": "each LEC's net import",
    "import_limit_kw": "the DSO's import limit per LEC (inf without the loop)",
    "export_limit_kw": "the DSO's export limit per LEC (inf without the loop)",
    "household_import_limit_kw": "the DSO's import limit per household (dso.limits_per household)",
    "household_export_limit_kw": "the DSO's export limit per household (dso.limits_per household)",
    "import_limit_day_kw": "each LEC's import limit for every hour of the run, from the DSO's forecast (LEC by LEC)",
    "export_limit_day_kw": "each LEC's export limit for every hour of the run, from the DSO's forecast (LEC by LEC)",
}
"""What a grid adapter's output port carries (its declared ports' meaning)."""


def read_array(inputs, port: str):
    """A vector input as a float array: ``inputs.read_array`` where the inputs have it (a federate's: the doubles
    read straight into the array), else ``inputs.read``'s values."""
    own = getattr(inputs, "read_array", None)
    if own is not None:
        return own(port)
    import numpy as np

    return np.asarray(inputs.read(port), dtype=float)


def join_kpis(own: dict, extra: dict) -> dict:
    """A study's KPIs and those of the components it added (the recorder's ``added_kpis``); a component never
    replaces one of the study's."""
    clash = set(own) & set(extra)
    if clash:
        raise ValueError(f"component KPIs {sorted(clash)} are already the study's")
    return {**own, **extra}


def load_object(path: str):
    """``"package.module:Name"`` -> the object: how a config names a study's adapter, record or KPI function."""
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def extension_kpis(paths: list[str], table, scenario) -> dict:
    """The KPIs of the components a study added: each function of ``paths`` (``"module:function"``) called
    with the recorded table and the scenario; two components never give the same KPI."""
    found: dict = {}
    for path in paths:
        kpis = load_object(path)(table, scenario)
        clash = set(kpis) & set(found)
        if clash:
            raise ValueError(f"{path}: KPIs {sorted(clash)} are already another extension's")
        found.update(kpis)
    return found
