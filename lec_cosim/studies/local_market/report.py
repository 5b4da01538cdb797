"""Compare local-electricity-market (LEM) runs: Tables II and III and Figs. 3 and 4 of Lezama et al.

After Lezama, Faia and Vale, "Bidding in Local Electricity Markets Considering Low Voltage Grid
Constraints": Base 1 (no LEM, plain tariff), Base 2 (no LEM, bi-hourly tariff), Case 1 (LEM, plain),
Case 2 (LEM, bi-hourly).

Everything here reads run directories of the ``local_market`` framework and writes nothing into
them. The files used:

- ``summary.json`` (all functions): scenario, ``lem_enabled``, ``tariff_scheme``, ``chp_strategy``
  and the KPIs of Tables II and III;
- ``clearing.csv`` (prices plot, LEM runs only): ``time, price, volume_kwh`` per market period;
- ``energy.csv`` (energy plot): ``time, load_kwh, pv_kwh, chp_kwh, lem_bought_kwh, lem_sold_kwh,
  grid_import_kwh, grid_export_kwh`` per market period (community totals).

A missing file or column raises a one-line :class:`ValueError` naming the run directory and file.

Paper values are given per case label (``"Base 1"`` .. ``"Case 2"``, or a scenario name) as
``{label: {metric: value}}``; a metric is a KPI key of ``summary.json`` (``"losses_kwh"``), a
dotted group key (``"producers.profit_eur"``) or a nested group (``{"producers": {"profit_eur":
...}}``). :data:`PAPER_TABLE_III` holds the values we have. The paper's bus-violation counts are on
its own 110-bus reduced model of the feeder and read as the number of buses outside the band on
the day, so they are compared with ``violated_buses_reduced`` (distinct buses of the reduced
110-bus numbering of :mod:`lec_cosim.models.lem_participants` outside the band at any grid step),
not with the count over all buses of the full feeder nor with bus-steps.

The parts live in modules by concept; every name they define (private ones included) is
importable from here too:

* :mod:`lec_cosim.studies.local_market.report_runs`: reading the runs (``summary.json`` and the CSVs) and their
  case labels (:func:`read_run_csv`, :func:`is_lem_run`, :func:`case_label`, :func:`run_labels`).
* :mod:`lec_cosim.studies.local_market.report_tables`: the paper's values and the Table II and III analogues
  (:func:`load_paper_values`, :func:`lem_compare_frames`, :func:`lem_table_cells`,
  :func:`lem_compare_tables`).
* :mod:`lec_cosim.studies.local_market.report_figures`: the Fig. 3 and 4 analogues (:func:`plot_lem_prices`,
  :func:`plot_lem_energy`, :func:`plot_lem_runs`).
"""

from __future__ import annotations

from collections.abc import Sequence

from lec_cosim.studies.local_market.report_figures import (  # noqa: F401
    _draw_energy,
    _draw_prices,
    _hour_label,
    _hour_ticks,
    _hours,
    _period_h,
    _pyplot,
    _save,
    plot_lem_energy,
    plot_lem_prices,
    plot_lem_runs,
)
from lec_cosim.studies.local_market.report_runs import (  # noqa: F401
    CASE_LABELS,
    CLEARING_COLUMNS,
    ENERGY_COLUMNS,
    LEM_FRAMEWORK,
    _read_lem_summary,
    _read_summary,
    case_label,
    is_lem_run,
    read_run_csv,
    run_labels,
)
from lec_cosim.studies.local_market.report_tables import (  # noqa: F401
    _GROUPS,
    _MONEY,
    PAPER_TABLE_III,
    TABLE_II_ROWS,
    TABLE_III_ROWS,
    _flatten_metrics,
    _format,
    _is_missing,
    _kpi,
    _markdown,
    _number,
    _paper_for,
    lem_compare_frames,
    lem_compare_tables,
    lem_table_cells,
    load_paper_values,
)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m lec_cosim.studies.local_market.report RUN_DIR ... [--paper FILE] [--plot PNG]``."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="local_market run directories")
    parser.add_argument("--paper", help="JSON/YAML file of paper values {label: {metric: value}}")
    parser.add_argument("--plot", help="write the multi-panel prices/energy figure to this PNG")
    args = parser.parse_args(argv)
    print(lem_compare_tables(args.runs, paper=args.paper))
    if args.plot:
        plot_lem_runs(args.runs, args.plot)


if __name__ == "__main__":
    main()
