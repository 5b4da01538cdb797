"""Compare runs: a KPI table and an overlay plot of PCC power and voltage (Rana et al., Figs. 11-12)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lec_cosim.studies.community_battery.results import read_run

KPI_COLUMNS = [
    ("import_mwh", "import MWh", "{:.3f}"),
    ("export_mwh", "export MWh", "{:.3f}"),
    ("energy_cost", "cost", "{:.2f}"),
    ("peak_import_mw", "peak import MW", "{:.3f}"),
    ("pcc_peak_p_mw", "PCC peak MW", "{:.3f}"),
    ("self_consumption_ratio", "self-cons.", "{:.3f}"),
    ("vm_min_pu", "PCC V min pu", "{:.4f}"),
    ("vm_max_pu", "PCC V max pu", "{:.4f}"),
    ("losses_mwh", "losses MWh", "{:.4f}"),
]


def compare_frame(runs: list[str | Path]) -> pd.DataFrame:
    """One row per run with its objective and KPIs."""
    rows = []
    for run in runs:
        summary, _, _ = read_run(Path(run))
        row = {"run": summary["scenario"], "objective": summary["objective"], "currency": summary.get("currency")}
        row.update({key: summary["kpis"].get(key) for key, _, _ in KPI_COLUMNS})
        row["PCC V range pu"] = summary["kpis"]["vm_max_pu"] - summary["kpis"]["vm_min_pu"]
        row["wall s"] = summary["wall_time_s"]
        rows.append(row)
    return pd.DataFrame(rows)


def is_community_battery_run(run_dir: str | Path) -> bool:
    """True when ``run_dir/summary.json`` is a community-battery run (the results contract of
    :mod:`lec_cosim.studies.community_battery.results`: an EMS objective and the PCC energies).

    A directory without a readable ``summary.json`` is not one (False, no error).
    """
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    kpis = summary.get("kpis") if isinstance(summary, dict) else None
    return isinstance(kpis, dict) and "objective" in summary and "import_mwh" in kpis


def compare_cells(runs: list[str | Path]) -> tuple[list[str], list[list[str]]]:
    """The KPI table of the runs as formatted text, one row per run.

    Returns
    -------
    header : list of str
        Column labels with units; the cost is in the runs' currency when they share one.
    rows : list of list of str
        Per run: scenario, objective, the :data:`KPI_COLUMNS` in their formats ("n/a" when the
        run lacks one), PCC voltage range and wall time.
    """
    frame = compare_frame(runs)
    currencies = set(frame["currency"])
    currency = currencies.pop() if len(currencies) == 1 else None
    labels = [f"{label} {currency}" if key == "energy_cost" and currency else label for key, label, _ in KPI_COLUMNS]
    header = ["run", "objective"] + labels + ["PCC V range pu", "wall s"]
    rows = []
    for _, row in frame.iterrows():
        cells = [row["run"], row["objective"]]
        for key, _, fmt in KPI_COLUMNS:
            # A KPI absent in one run is NaN once the frame holds another run's number.
            cells.append("n/a" if pd.isna(row[key]) else fmt.format(row[key]))
        cells += [f"{row['PCC V range pu']:.4f}", f"{row['wall s']:.1f}"]
        rows.append(cells)
    return header, rows


def compare_table(runs: list[str | Path]) -> str:
    """Markdown table of the runs' KPIs (:func:`compare_cells`)."""
    header, rows = compare_cells(runs)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def plot_runs(runs: list[str | Path], output: str | Path) -> None:
    """PCC active power and voltage of several runs, overlaid, to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_p, ax_v) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for run in runs:
        summary, _, pcc = read_run(Path(run))
        label = f"{summary['scenario']} ({summary['objective']})"
        ax_p.step(pcc.time, pcc.p_mw, where="post", label=label)
        ax_v.step(pcc.time, pcc.vm_pu, where="post", label=label)
    ax_p.set_ylabel("PCC active power (MW)")
    ax_p.axhline(0, color="grey", lw=0.5)
    ax_v.set_ylabel("PCC voltage (pu)")
    ax_v.set_xlabel("time")
    ax_p.legend()
    ax_p.grid(alpha=0.3)
    ax_v.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)
