"""What a study plugs into a generic component: grid adapters for the DSO, records for the recorder.

A **grid adapter** (``federates/dso.py`` runs it) is built as ``Adapter(scenario, settings)`` and
answers ``step(k, t_s, inputs) -> {output port: value}`` each step, reading what it needs from
``inputs`` (``federates.common.Inputs``: ports by name, never a key); an optional ``finish()`` runs
at the end. A **record** (``federates/recorder.py`` runs it) is built the same way and answers
``add(k, t_s, inputs)`` each step and ``write(output_dir, wall_time_s, replies)`` at the end
(``replies``: the ``exchanges`` query's answers when the plan asks for them, else None).
Both are named in the federate's config as ``"package.module:Name"``.
"""


def join_kpis(own: dict, extra: dict) -> dict:
    """A study's KPIs and those of the components it added (records' ``kpi_extensions``); a component never
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
