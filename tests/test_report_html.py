"""``lec-cosim report``: one self-contained HTML page over real runs of every kind.

The module reads real runs made through the CLI that other test files read too (``harness.shared_runs``):
two community-battery runs (arbitrage and self-consumption, the shipped day), one local-market run (12 h,
hourly grid steps: not the paper's day, so no paper column), one three-LEC run (the shipped day, hourly grid
steps); and makes one run cut short by ``--timeout`` (a real ``X.incomplete``). The page of
the four complete runs, given in mixed order, is then checked as text (every KPI cell against
``summary.json``, figures as decodable PNGs, nothing fetched from anywhere, provenance) and as
Chromium renders it (headless, a screenshot that must show tables and figures). Every run also has
its timing: a timeline figure and a totals table that must be the sums of its ``timing/*.csv``; the
IEEE-feeder runs a feeder map whose caption counts what the DSO's extremes tables hold. Runs from
before the timing and extremes files render with a note instead. Bad inputs must give exit code 2,
one ``error:`` line naming the directory, and no report file.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import shlex
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness import cli_in_process, shared_runs, write_scenario
from PIL import Image

import lec_cosim

CLI = [sys.executable, "-m", "lec_cosim"]
CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1280, 2400)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MPL_BLUE, MPL_ORANGE = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)  # matplotlib's C0 and C1, the first two runs

SHARED = {"arbitrage": "trondelag_arbitrage", "self_consumption": "trondelag_self_consumption",
          "lem": "lem_hourly_12h", "three_lecs": "three_lecs_decentralised"}  # key -> harness.SHARED_RUNS name
RUNS = {
    # key: (shipped scenario, changes, extra CLI arguments)
    # A whole day cannot finish in half a second (the broker alone takes longer to start).
    "interrupted": ("trondelag_arbitrage", {"name": "interrupted", "horizon_h": 24}, ["--timeout", "0.5"]),
}
REPORT_ORDER = ["lem", "arbitrage", "three_lecs", "self_consumption"]  # mixed kinds, mixed order
ANCHORS = {"arbitrage": "community-battery-1", "self_consumption": "community-battery-2", "lem": "local-market-1",
           "three_lecs": "three-lecs-1"}  # a run's place in the page: its kind's section, its index there
IEEE_RUNS = ("lem", "three_lecs")
WAIT_GREY = (0xD0, 0xD4, 0xDA)  # the timeline's waiting bars


def cli(*args, timeout=120):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------------------------------------
# A small DOM of the page
# ---------------------------------------------------------------------------------------------
class Node:
    def __init__(self, tag: str, attrs: dict):
        self.tag, self.attrs, self.children = tag, attrs, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def find_all(self, tag: str, **attrs) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and all(child.attrs.get(k.rstrip("_")) == v for k, v in attrs.items()):
                    found.append(child)
                found += child.find_all(tag, **attrs)
        return found

    def find(self, tag: str, **attrs) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, (tag, attrs)
        return found[0]


class Page(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input", "source"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.root = Node("document", {})
        self.stack = [self.root]
        self.attribute_values: list[tuple[str, str, str]] = []  # (tag, attribute, value) of every attribute
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.attribute_values += [(tag, k, v or "") for k, v in attrs]
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def colour_count(pixels: np.ndarray) -> int:
    """Distinct RGB colours of an (..., 3) uint8 array."""
    flat = pixels.reshape(-1, 3).astype(np.uint32)
    return len(np.unique(flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2]))


def table_cells(table: Node) -> tuple[list[str], list[list[str]]]:
    header = [th.text().strip() for th in table.find("thead").find_all("th")]
    rows = []
    for tr in table.find("tbody").find_all("tr"):
        rows.append([c.text().strip() for c in tr.children if isinstance(c, Node) and c.tag in ("th", "td")])
    return header, rows


# ---------------------------------------------------------------------------------------------
# Expected cells, formatted from summary.json here and independently of the studies' report modules
# ---------------------------------------------------------------------------------------------
def fixed(value, digits: int) -> str:
    """``value`` with ``digits`` decimals, "n/a" when missing, and never "-0.00"."""
    if value is None:
        return "n/a"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def battery_rows(summaries: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "objective", "import MWh", "export MWh", "cost EUR", "peak import MW", "PCC peak MW",
              "self-cons.", "PCC V min pu", "PCC V max pu", "losses MWh", "PCC V range pu", "wall s"]
    rows = []
    for s in summaries:
        k = s["kpis"]

        def f(key, digits, k=k):
            return "n/a" if k.get(key) is None else f"{k[key]:.{digits}f}"

        rows.append([s["scenario"], s["objective"], f("import_mwh", 3), f("export_mwh", 3), f("energy_cost", 2),
                     f("peak_import_mw", 3), f("pcc_peak_p_mw", 3), f("self_consumption_ratio", 3),
                     f("vm_min_pu", 4), f("vm_max_pu", 4), f("losses_mwh", 4),
                     f"{k['vm_max_pu'] - k['vm_min_pu']:.4f}", f"{s['wall_time_s']:.1f}"])
    return header, rows


def lem_rows(summary: dict) -> tuple[list[list[str]], list[list[str]]]:
    k = summary["kpis"]
    table_ii = [[f"{glabel} {mlabel} (EUR)", fixed(k[group][key], 2)]
                for group, glabel in (("consumers_prosumers", "consumers & prosumers"), ("producers", "producers"),
                                      ("total", "total"))
                for key, mlabel in (("cost_eur", "cost"), ("income_eur", "income"), ("profit_eur", "profit"))]
    table_ii += [["fitness (-)", fixed(k.get("fitness"), 4)], ["LEM volume (kWh)", fixed(k["lem_volume_kwh"], 2)]]
    counts = [("violated_buses_reduced", "buses outside the band, reduced model (-)"),
              ("violated_buses", "buses outside the band, all buses (-)"),
              ("bus_violations_reduced", "bus violations x grid steps, reduced model (-)"),
              ("bus_violations", "bus violations x grid steps, all buses (-)"),
              ("angle_violations", "angle violations (-)"),
              ("line_overloads", "line overloads x grid steps (-)")]
    table_iii = [[label, str(int(k[key]))] for key, label in counts]
    table_iii += [["losses (kWh)", fixed(k["losses_kwh"], 2)], ["losses (kvarh)", fixed(k["losses_kvarh"], 2)],
                  ["DN impact (-)", fixed(k["dn_impact"], 4)], ["V min (pu)", fixed(k["vm_min_pu"], 4)],
                  ["V max (pu)", fixed(k["vm_max_pu"], 4)]]
    return table_ii, table_iii


def mlec_rows(summary: dict) -> list[list[str]]:
    k = summary["kpis"]
    lecs = sorted(k["lecs"])

    def value(v, digits):
        if v is None:
            return "-"
        return str(v) if isinstance(v, int) else fixed(v, digits)

    rows = [["cost, all LECs (EUR)", value(k["total_cost_eur"], 2)],
            ["cost per member (EUR)", value(k["cost_per_member_eur"], 3)]]
    rows += [[f"cost {lec} (EUR)", value(k["lecs"][lec]["cost_eur"], 2)] for lec in lecs]
    rows += [[f"cost per member {lec} (EUR)", value(k["lecs"][lec]["cost_per_member_eur"], 3)] for lec in lecs]
    rows += [["self-sufficiency, all LECs (%)", value(100 * k["self_sufficiency"], 1)]]
    rows += [[f"self-sufficiency {lec} (%)", value(100 * k["lecs"][lec]["self_sufficiency"], 1)] for lec in lecs]
    for label, key, digits in [
        ("exchanged between LECs (kWh)", "exchanged_kwh", 2), ("negotiation tolerance (kW)", "negotiation_tol_kw", 4),
        ("PV curtailed (kWh)", "curtailed_kwh", 2),
        ("grid import (kWh)", "grid_import_kwh", 1), ("grid export (kWh)", "grid_export_kwh", 1),
        ("transformer peak (kW)", "trafo_peak_kw", 1), ("lowest voltage (pu)", "vm_min_pu", 4),
        ("highest voltage (pu)", "vm_max_pu", 4), ("bus violations (bus-steps)", "bus_violations", 2),
        ("steps with a bus violation", "steps_with_bus_violations", 2),
        ("line overloads (line-steps)", "line_overloads", 2), ("losses (kWh)", "losses_kwh", 2),
        ("messages exchanged", "messages", 2), ("negotiation iterations (total)", "iterations_total", 2),
        ("negotiation iterations (largest hour)", "iterations_max", 2), ("wall time (s)", "wall_time_s", 1),
    ]:
        rows.append([label, value(k[key], digits)])
    return rows


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The shared runs of :data:`SHARED` and the runs of :data:`RUNS`; key -> run directory (the interrupted
    one's ``.incomplete``)."""
    shared = shared_runs(tmp_path_factory, *SHARED.values())
    root = tmp_path_factory.mktemp("report_runs")
    started = {}
    for key, (base, changes, extra) in RUNS.items():
        scenario = write_scenario(root, base, changes)
        started[key] = subprocess.Popen(CLI + ["run", str(scenario), "--out", str(root / key), "--quiet", *extra],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = {key: (proc, *proc.communicate(timeout=300)) for key, proc in started.items()}
    for key, (proc, out, err) in done.items():
        expected = 1 if key == "interrupted" else 0
        assert proc.returncode == expected, (key, proc.returncode, out, err)
    dirs = {key: shared[name][1] for key, name in SHARED.items()}
    dirs["interrupted"] = root / "interrupted.incomplete"
    assert (dirs["interrupted"] / "INCOMPLETE.txt").is_file() and not (dirs["interrupted"] / "summary.json").exists()
    return dirs


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    """The page of the four complete runs: (path, text, parsed page, CLI result)."""
    out = tmp_path_factory.mktemp("report") / "pages" / "report.html"  # its folder does not exist yet
    result = cli("report", *[runs[key] for key in REPORT_ORDER], "-o", out)
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    return out, text, Page(text), result


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


# ---------------------------------------------------------------------------------------------
# The page as text
# ---------------------------------------------------------------------------------------------
def test_the_command_writes_one_page_and_nothing_else(report):
    out, text, page, result = report
    assert result.stdout.strip() == f"wrote {out}"
    assert result.stderr == ""
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary file left
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert page.root.find("h1").text() == "lec-cosim report"
    meta = page.root.find("p", class_="meta").text()
    assert f"by lec-cosim {lec_cosim.__version__} from 4 run directories" in meta
    stamp = meta.split("Generated ")[1].split(" by ")[0]
    assert dt.datetime.fromisoformat(stamp).tzinfo is not None


def test_runs_are_grouped_by_kind_in_sections(report, runs):
    _, _, page, _ = report
    sections = page.root.find_all("section")
    assert [s.attrs["id"] for s in sections] == ["community-battery", "local-market", "three-lecs"]
    assert [s.find("h2").text() for s in sections] == ["Community battery (2 runs)", "Local electricity market (1 run)",
                                                      "Three LECs (1 run)"]
    # The contents list links every section, and names its runs in the order given.
    links = [(a.attrs["href"], li.text()) for li in page.root.find("nav").find_all("li") for a in li.find_all("a")]
    name = {key: run.name for key, run in runs.items()}  # a run's label: its folder's name
    assert links == [("#community-battery", f"Community battery: {name['arbitrage']}, {name['self_consumption']}"),
                     ("#local-market", f"Local electricity market: {name['lem']}"),
                     ("#three-lecs", f"Three LECs: {name['three_lecs']}")]


def test_every_kpi_cell_is_the_summary_value_as_formatted(report, runs):
    _, _, page, _ = report
    tables = {t.attrs["id"]: table_cells(t) for t in page.root.find_all("table") if t.attrs["id"].startswith("kpi-")}
    assert set(tables) == {"kpi-community-battery", "kpi-local-market-ii", "kpi-local-market-iii", "kpi-three-lecs"}

    assert tables["kpi-community-battery"] == battery_rows([summary(runs["arbitrage"]),
                                                            summary(runs["self_consumption"])])

    lem = summary(runs["lem"])
    table_ii, table_iii = lem_rows(lem)
    assert tables["kpi-local-market-ii"] == (["KPI", "Case 1 (ours)"], table_ii)
    assert tables["kpi-local-market-iii"] == (["KPI", "Case 1 (ours)"], table_iii)

    assert tables["kpi-three-lecs"] == (["KPI", "decentralised"], mlec_rows(summary(runs["three_lecs"])))

    # The runs did something: the numbers are not all zero.
    arbitrage = tables["kpi-community-battery"][1][0]
    assert float(arbitrage[2]) > 0 and float(arbitrage[-1]) > 0
    assert float(dict(table_ii)["LEM volume (kWh)"]) > 0
    assert float(dict(mlec_rows(summary(runs["three_lecs"])))["cost, all LECs (EUR)"]) > 0


def figure_image(figure: Node) -> Image.Image:
    """The PNG of a ``<figure>``'s image, decoded; its alt text must be its caption."""
    img = figure.find("img")
    src = img.attrs["src"]
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    png = base64.b64decode(src[len(prefix):], validate=True)
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    assert img.attrs["alt"] == figure.find("figcaption").text() != ""
    return image


def test_figures_are_inline_pngs_one_per_kind(report):
    _, _, page, _ = report
    for section in page.root.find_all("section"):
        kind = section.attrs["id"]
        figures = {f.attrs["id"]: f for f in section.find_all("figure")}
        n_runs = 2 if kind == "community-battery" else 1
        maps = 0 if kind == "community-battery" else 1
        # the kind's figure, then per run a timeline (and a feeder map on the IEEE feeder)
        assert len(section.find_all("img")) == len(figures) == 1 + n_runs * (1 + maps), kind
        image = figure_image(figures[f"fig-{kind}"])
        assert image.width >= 1000 and image.height >= 400
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        assert colour_count(pixels) > 200  # axes, text, lines: not a blank canvas
        assert (pixels == MPL_BLUE).all(axis=1).sum() > 100  # the first run's lines or bars


# ---------------------------------------------------------------------------------------------
# Timing and feeder map
# ---------------------------------------------------------------------------------------------
def timing_rows(run: Path) -> list[list[str]]:
    """The timing table of a run, computed here from its timing/*.csv and *.json."""
    infos = {p.stem: json.loads(p.read_text()) for p in (run / "timing").glob("*.json")}
    slots = {name: pd.read_csv(run / "timing" / f"{name}.csv") for name in infos}
    order = sorted(infos, key=lambda name: (infos[name]["offset_s"], name))
    # the critical federate of an hour: the most working time in it
    work = pd.concat([frame.assign(federate=name, hour=(frame["slot_time_s"] // 3600).astype(int))
                      for name, frame in slots.items()]).groupby(["hour", "federate"])["work_s"].sum()
    critical = work.unstack().idxmax(axis=1).value_counts()
    rows = []
    for name in order:
        frame, info = slots[name], infos[name]
        rows.append([name, str(len(frame)), f"{frame['work_s'].sum():.3f}", f"{frame['wait_s'].sum():.3f}",
                     str(frame["messages_sent"].sum()), str(frame["values_published"].sum()),
                     f"{info['startup_s']:.2f}", f"{info['ready_s']:.2f}", str(int(critical.get(name, 0)))])
    return rows


def test_every_run_has_a_timing_table_of_its_timing_csvs(report, runs):
    _, _, page, _ = report
    tables = {t.attrs["id"]: t for t in page.root.find_all("table")}
    assert sorted(k for k in tables if k.startswith("timing-")) == sorted(f"timing-{a}" for a in ANCHORS.values())
    for key in REPORT_ORDER:
        run = runs[key]
        header, rows = table_cells(tables[f"timing-{ANCHORS[key]}"])
        assert header == ["federate", "slots", "working s", "waiting s", "messages sent", "values published",
                          "start-up s", "ready s", "critical hours"]
        expected = timing_rows(run)
        # the seconds as printed: the page and this test add the slots in their own order, so a sum that falls on
        # a rounding boundary may print one unit apart in the last place
        assert [[r[0], r[1], *r[4:6], r[8]] for r in rows] == [[r[0], r[1], *r[4:6], r[8]] for r in expected], key
        for ours, theirs in zip(rows, expected):
            for column, unit in ((2, 1e-3), (3, 1e-3), (6, 1e-2), (7, 1e-2)):
                assert abs(float(ours[column]) - float(theirs[column])) <= unit * 1.01, (key, ours, theirs)
        # every federate ran every slot of the horizon, and each hour has one critical federate
        scenario = json.loads((run / "scenario.json").read_text())
        hours = scenario["horizon_h"]
        assert sum(int(r[-1]) for r in rows) == hours
        for name, slots, *_ in rows:
            info = json.loads((run / "timing" / f"{name}.json").read_text())
            assert info["state"] == "done" and info["slots_done"] == int(slots) > 0
            frame = pd.read_csv(run / "timing" / f"{name}.csv")
            assert list(frame["slot"]) == list(range(len(frame)))
            assert frame["slot_time_s"].is_monotonic_increasing and frame["slot_time_s"].max() < hours * 3600
            # the slots' wait and work are parts of the federate's stepping time (the rest is bookkeeping, whose
            # share depends on the machine's load); the CSV rounds to microseconds
            spent = frame["work_s"].sum() + frame["wait_s"].sum()
            assert 0 < spent <= info["stepping_s"] + 1e-6 * len(frame)
            assert 0 < info["created_s"] < info["ready_s"] <= info["startup_s"]
    # messages: what each three-LEC federate answered the recorder's "exchanges" query with
    graph = json.loads((runs["three_lecs"] / "federation_graph.json").read_text())
    sent = {name: sum(m["count"] for m in reply["messages"]) for name, reply in graph["federates"].items()}
    _, rows = table_cells(tables[f"timing-{ANCHORS['three_lecs']}"])
    assert {r[0]: int(r[4]) for r in rows} == sent and sum(sent.values()) > 0
    # values: the local market's DSO publishes its 12 indicators once per hour (a vector of the hour's steps)
    _, rows = table_cells(tables[f"timing-{ANCHORS['lem']}"])
    dso = next(r for r in rows if r[0] == "dso")
    hours = json.loads((runs["lem"] / "scenario.json").read_text())["horizon_h"]
    assert dso[1] == f"{hours:g}" and dso[5] == str(round(hours) * 12)


def test_every_run_has_a_timeline_and_ieee_runs_a_feeder_map(report, runs):
    _, _, page, _ = report
    figures = {f.attrs["id"]: f for f in page.root.find_all("figure")}
    for key in REPORT_ORDER:
        anchor = ANCHORS[key]
        details = page.root.find("div", id=f"run-{anchor}")
        timeline = figures[f"fig-timeline-{anchor}"]
        image = figure_image(timeline)
        assert image.size[0] == 1100 and image.size[1] > 300
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
        assert (pixels == WAIT_GREY).all(axis=1).sum() > 500  # the waiting bars
        assert (pixels == MPL_BLUE).all(axis=1).sum() > 0  # the first federate's colour (at least in the legend)
        caption = timeline.find("figcaption").text()
        assert "most working wall time" in caption
        _, rows = table_cells(page.root.find("table", id=f"timing-{anchor}"))
        critical = ", ".join(f"{r[0]} {r[-1]} h" for r in rows if r[-1] != "0")
        assert caption.endswith(f"Critical: {critical}.")
        if key not in IEEE_RUNS:
            assert f"fig-feeder-{anchor}" not in figures
            assert ("No feeder map: the community-battery grid is a balanced model whose DSO records the grid's "
                    "extremes") in details.text()
            continue
        feeder = figures[f"fig-feeder-{anchor}"]
        image = figure_image(feeder)
        assert image.size == (1100, 590)
        assert colour_count(np.asarray(image.convert("RGB"))) > 300
        # the caption counts what the DSO's tables hold
        buses = pd.read_csv(runs[key] / "bus_voltage_extremes.csv")
        lines = pd.read_csv(runs[key] / "line_loading_peaks.csv")
        trafo = lines.loc[lines["kind"] == "transformer", "loading_max_percent"].max()
        caption = feeder.find("figcaption").text()
        assert f"{int(buses['out_of_band'].sum())} buses ever outside the band" in caption
        overloaded = int(lines.loc[lines["kind"] == "line", "overloaded"].sum())
        assert f"{overloaded} line sections ever above 100 %" in caption
        assert f"peaked at {trafo:.1f} %" in caption
        # and the tables agree with the run's KPIs
        k = summary(runs[key])["kpis"]
        exact = pd.read_csv(runs[key] / "bus_voltage_extremes.csv", float_precision="round_trip")
        assert exact["vm_min_pu"].min() == k["vm_min_pu"] and exact["vm_max_pu"].max() == k["vm_max_pu"]
        assert buses["steps_out_of_band"].sum() == k["bus_violations"]
        assert lines["steps_overloaded"].sum() == k["line_overloads"]
        assert len(buses) == 906 and len(lines) == 906  # 905 line sections and the transformer


def test_runs_from_before_timing_and_extremes_still_render(runs, tmp_path, capsys):
    old_battery, old_lem = tmp_path / "old_battery", tmp_path / "old_lem"
    shutil.copytree(runs["arbitrage"], old_battery)
    shutil.rmtree(old_battery / "timing")
    shutil.copytree(runs["lem"], old_lem)
    for name in ("bus_voltage_extremes.csv", "line_loading_peaks.csv"):
        (old_lem / name).unlink()
    # a run made on another machine: the feeder folder its scenario names is not here
    moved = tmp_path / "moved_three_lecs"
    shutil.copytree(runs["three_lecs"], moved)
    scenario = json.loads((moved / "scenario.json").read_text())
    scenario["feeder"]["data_dir"] = str(tmp_path / "elsewhere" / "ieee_eulv")
    (moved / "scenario.json").write_text(json.dumps(scenario))
    out = tmp_path / "report.html"
    result = cli_in_process(capsys, "report", old_battery, old_lem, moved, "-o", out)
    assert result.returncode == 0, result.stderr
    page = Page(out.read_text(encoding="utf-8"))
    battery = page.root.find("div", id="run-community-battery-1").text()
    assert "No timing recorded" in battery and "No feeder map: the community-battery grid" in battery
    lem = page.root.find("div", id="run-local-market-1").text()
    assert "No timing recorded" not in lem  # its timing is still there
    assert "No feeder map: no bus_voltage_extremes.csv and line_loading_peaks.csv" in lem
    three = page.root.find("div", id="run-three-lecs-1").text()
    assert f"No feeder map: {tmp_path / 'elsewhere' / 'ieee_eulv' / 'csv' / 'Buscoords.csv'}: no such file" in three
    ids = {f.attrs["id"] for f in page.root.find_all("figure")}
    assert ids == {"fig-community-battery", "fig-local-market", "fig-three-lecs", "fig-timeline-local-market-1",
                   "fig-timeline-three-lecs-1"}


def test_the_page_needs_nothing_but_itself(report):
    _, text, page, _ = report
    for tag, attribute, value in page.attribute_values:
        if attribute in ("src", "href", "srcset", "action", "poster", "data"):
            assert value.startswith("data:image/png;base64,") or value.startswith("#"), (tag, attribute, value[:80])
    tags = {node.tag for node in page.root.find_all("script")} | {node.tag for node in page.root.find_all("link")}
    assert tags == set()
    style = "".join(node.text() for node in page.root.find_all("style"))
    assert "url(" not in style and "@import" not in style
    assert page.root.find("meta").attrs == {"charset": "utf-8"}
    first, *images = text.split("data:image/png;base64,")
    without_images = first + "".join(part.split('"', 1)[1] for part in images)
    assert "http://" not in without_images and "https://" not in without_images


def test_every_run_has_its_provenance(report, runs):
    _, _, page, _ = report
    blocks = {}
    for section in page.root.find_all("section"):
        for block in section.find_all("div", class_="provenance"):
            items = dict(zip([dt_.text() for dt_ in block.find_all("dt")], [dd.text() for dd in block.find_all("dd")]))
            blocks[items["run directory"]] = (section.attrs["id"], block.find("h4").text(), items)
    assert set(blocks) == {str(runs[key].resolve()) for key in REPORT_ORDER}
    expected_labels = {"arbitrage": "trondelag_arbitrage (min_cost)",
                       "self_consumption": "trondelag_self_consumption (min_import)",
                       "lem": "Case 1", "three_lecs": "decentralised"}
    for key in REPORT_ORDER:
        run = runs[key]
        manifest = json.loads((run / "manifest.json").read_text())
        section, label, items = blocks[str(run.resolve())]
        assert label == expected_labels[key]
        assert items["scenario file"] == (f"{manifest['source_file']} (resolved scenario SHA-256 "
                                          f"{manifest['scenario_sha256'][:12]}…)")
        assert manifest["source_file"].endswith(".yaml")
        assert f"lec-cosim {manifest['versions']['lec-cosim']}" in items["versions"]
        assert f"helics {manifest['versions']['helics']}" in items["versions"]
        assert items["command"] == shlex.join(manifest["command"]) and " run " in items["command"]
        assert items["written"] == manifest["written"]
        for field, files in manifest["data_sha256"].items():
            assert field in items["data (SHA-256 prefix)"]
            if len(files) <= 3:
                assert all(f"{name} ({digest[:12]})" in items["data (SHA-256 prefix)"] for name, digest in files.items())
        assert items["simulated"].startswith(f"{summary(run)['horizon_h']:g} h from 20")


# ---------------------------------------------------------------------------------------------
# The page as Chromium shows it
# ---------------------------------------------------------------------------------------------
def chromium_screenshot(page: Path, tmp_path: Path, window: tuple[int, int]) -> Image.Image:
    """``page`` as headless Chromium shows it in a window of ``window`` pixels, at scale 1."""
    assert CHROMIUM.is_file(), (f"{CHROMIUM} not found: this test renders the report in headless Chromium; "
                                "install it with `make chromium` (Debian's chromium package)")
    screenshot = tmp_path / f"{page.stem}.png"
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'chromium-profile'}", "--hide-scrollbars", "--force-device-scale-factor=1",
         f"--window-size={window[0]},{window[1]}", f"--screenshot={screenshot}", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0 and screenshot.is_file(), result.stderr[-2000:]
    image = Image.open(screenshot)
    assert image.size == window
    return image


def packed(pixels: np.ndarray) -> np.ndarray:
    flat = pixels.reshape(-1, 3).astype(np.uint32)
    return flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2]


def test_chromium_renders_tables_and_figures(report, tmp_path):
    out, _, _, _ = report
    image = chromium_screenshot(out, tmp_path, WINDOW)
    pixels = np.asarray(image.convert("RGB"))
    non_white = (pixels < 245).any(axis=2)
    # A page of a few lines of text is 0.01 % non-white in 64 colours; this one is about 8 % in ~1000.
    assert non_white.mean() > 0.05, non_white.mean()  # text, table rules, the first figure
    assert non_white[: WINDOW[1] // 4].mean() > 0.05  # the title, contents and the first table at the top
    flat = pixels.reshape(-1, 3)
    assert colour_count(flat) > 300
    # The community-battery figure (first section) is drawn at its own size: the two runs' lines
    # appear in matplotlib's exact first two colours.
    assert (flat == MPL_BLUE).all(axis=1).sum() > 300
    assert (flat == MPL_ORANGE).all(axis=1).sum() > 300


def test_chromium_shows_the_timeline_and_the_feeder_map_at_their_size(runs, tmp_path, capsys):
    """The local-market run's page, whole in a tall window: the timeline's and the map's own colours (those no
    other figure of the page has) cover at least as many screen pixels as they have image pixels. (The kind's
    figure, 1320 pixels wide, is scaled down to the page's width, so its colours are not all kept.)"""
    out = tmp_path / "lem.html"
    result = cli_in_process(capsys, "report", runs["lem"], "-o", out)
    assert result.returncode == 0, result.stderr
    page = Page(out.read_text(encoding="utf-8"))
    images = {f.attrs["id"]: packed(np.asarray(figure_image(f).convert("RGB"))) for f in page.root.find_all("figure")}
    assert set(images) == {"fig-local-market", "fig-timeline-local-market-1", "fig-feeder-local-market-1"}
    screen = packed(np.asarray(chromium_screenshot(out, tmp_path, (1280, 5200)).convert("RGB")))
    assert (screen == packed(np.array(WAIT_GREY, dtype=np.uint8))).sum() > 500  # the timeline's waiting bars
    for figure in ("fig-timeline-local-market-1", "fig-feeder-local-market-1"):
        colours = images[figure]
        others = np.concatenate([c for f, c in images.items() if f != figure])
        own = np.setdiff1d(np.unique(colours), np.unique(others))
        in_image = int(np.isin(colours, own).sum())
        on_screen = int(np.isin(screen, own).sum())
        assert in_image > 1000, figure
        assert on_screen >= in_image, (figure, in_image, on_screen)  # drawn whole, at its own size


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
def _bad_directories(runs, root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (directory, what the error line must say)."""
    no_summary = root / "no_summary"
    shutil.copytree(runs["arbitrage"], no_summary)
    (no_summary / "summary.json").unlink()
    partial = root / "run.partial"
    partial.mkdir()
    other = root / "other_kind"
    other.mkdir()
    (other / "summary.json").write_text(json.dumps({"framework": "somewhere_else", "kpis": {}}))
    lem_without_clearing = root / "lem_without_clearing"
    shutil.copytree(runs["lem"], lem_without_clearing)
    (lem_without_clearing / "clearing.csv").unlink()
    bad_timing = root / "bad_timing"
    shutil.copytree(runs["self_consumption"], bad_timing)
    timing = pd.read_csv(bad_timing / "timing" / "dso.csv")
    timing.drop(columns="wait_s").to_csv(bad_timing / "timing" / "dso.csv", index=False)
    return {
        "missing": (root / "never_ran", "no such run directory"),
        "incomplete": (runs["interrupted"], "incomplete run (federation did not finish within"),
        "no summary": (no_summary, "not a run directory (no summary.json)"),
        "partial": (partial, "unfinished run (.partial"),
        "unknown kind": (other, "framework 'somewhere_else': not a kind of run lec-cosim reports"),
        "missing csv": (lem_without_clearing, "missing clearing.csv"),
        "bad timing": (bad_timing, "timing/dso.csv: column 'wait_s' missing"),
    }


def test_bad_directories_are_one_line_errors_and_write_nothing(runs, tmp_path, capsys):
    bad_directories = _bad_directories(runs, tmp_path / "inputs")
    for name, (bad, reason) in bad_directories.items():  # in this process: a process a case costs its imports
        out_dir = tmp_path / name.replace(" ", "_")
        out_dir.mkdir()
        result = cli_in_process(capsys, "report", runs["arbitrage"], bad, "-o", out_dir / "report.html")
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (name, result.stderr)
        assert lines[0].startswith(f"error: {bad}"), (name, lines[0])
        assert reason in lines[0], (name, lines[0])
        assert list(out_dir.iterdir()) == [], name  # neither the report nor a temporary file


def test_a_failed_report_leaves_the_previous_one_untouched(runs, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert cli_in_process(capsys, "report", runs["arbitrage"], "-o", out).returncode == 0
    before = out.read_bytes()
    failed = cli_in_process(capsys, "report", runs["arbitrage"], runs["interrupted"], "-o", out)
    assert failed.returncode == 2
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
