"""``lec-cosim``: validate, run, write runner files, compare and plot co-simulation runs."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from lec_cosim.checks import check_broker, check_data
from lec_cosim.files import write_text_atomic
from lec_cosim.models.feeder_model import FeederSourceError
from lec_cosim.runs import EXIT_INPUT_ERROR, EXIT_RUN_ERROR, OutputError, Terminated
from lec_cosim.scenario import (
    FRAMEWORKS,
    MIN_STALL_TIMEOUT_S,
    STALL_TIMEOUT_S,
    ScenarioError,
    load_scenario,
)


def _load(args):
    """The scenario of a command, with the command-line overrides of a three-LEC scenario applied."""
    scenario = load_scenario(args.scenario)
    framework = getattr(args, "framework", None)
    dso_limits = getattr(args, "dso_limits", None)
    from lec_cosim.studies import KINDS, study, study_of

    for option, value in (("framework", framework), ("dso_limits", dso_limits)):
        if value is not None and option not in study_of(scenario).OVERRIDES:
            takers = [kind for kind in KINDS if option in study(kind).OVERRIDES]
            raise ScenarioError(f"{args.scenario}: {option}: --{option.replace('_', '-')} applies to "
                                f"{' and '.join(takers)} scenarios only, not {scenario.kind}")
    if framework is not None:
        scenario = scenario.model_copy(update={"framework": framework})
    if dso_limits is not None:
        scenario = scenario.model_copy(update={"dso": scenario.dso.model_copy(update={"limits": dso_limits})})
    hosts, broker_address = getattr(args, "hosts", None), getattr(args, "broker_address", None)
    if hosts is not None or broker_address is not None:
        from pydantic import ValidationError

        from lec_cosim.schema.base import BrokerConfig

        given = scenario.broker.model_dump(exclude_defaults=True)
        if broker_address is not None:
            given["address"] = broker_address
        if hosts is not None:
            given["hosts"] = [address.strip() for address in hosts.split(",") if address.strip()] or []
        try:
            broker = BrokerConfig.model_validate(given)
        except ValidationError as exc:
            error = exc.errors()[0]
            option = "--broker-address" if error["loc"][:1] == ("address",) else "--hosts"
            raise ScenarioError(f"{args.scenario}: {option}: {error['msg'].removeprefix('Value error, ')}") from None
        scenario = scenario.model_copy(update={"broker": broker})
    if framework is not None or dso_limits is not None:  # the overridden scenario validated again, as a whole
        from lec_cosim.schema.base import _validate

        source, counted = scenario.source_file, scenario.__pydantic_private__
        scenario = _validate(type(scenario), scenario.model_dump(), args.scenario).model_copy(
            update={"source_file": source})
        # what the study counted when it read the file (a feeder source's households): the overrides change no data
        scenario.__pydantic_private__ = dict(counted or {})
    return scenario


def _cmd_validate(args) -> int:
    scenario = _load(args)
    check_data(scenario)  # "valid" means run would start: the data and learnt bids load too
    check_broker(scenario)
    from lec_cosim.studies import study_of

    print(f"{args.scenario}: valid scenario {scenario.name!r} ({study_of(scenario).describe(scenario)})")
    return 0


def _check_sub_brokers(args, scenario) -> None:
    """``--sub-brokers`` between 0 and the number of federates, checked before anything is written."""
    from lec_cosim.federation import federate_names

    n = len(federate_names(scenario))
    if not 0 <= args.sub_brokers <= n:
        raise ScenarioError(f"{args.scenario}: --sub-brokers: must be from 0 to {n} (the federation's "
                            f"federates), not {args.sub_brokers}")
    hosts = len(scenario.broker.hosts)
    if hosts and args.sub_brokers not in (0, hosts):
        raise ScenarioError(f"{args.scenario}: --sub-brokers: the federation's {hosts} hosts have a sub-broker each "
                            f"(broker.hosts or --hosts), not {args.sub_brokers}")


def _check_record(args, scenario) -> None:
    """``--record`` names published keys and goes with the single broker, checked before anything is written."""
    if not args.record:
        return
    from lec_cosim.interface import federation_interface, publication_types

    if args.sub_brokers or scenario.broker.hosts:
        raise ScenarioError(f"{args.scenario}: --record: helics_recorder joins a single broker, not "
                            f"{'--sub-brokers' if args.sub_brokers else 'a federation over hosts'}")
    published = publication_types(federation_interface(scenario))
    unknown = [k for k in args.record if k != "all" and k not in published]
    if unknown:
        raise ScenarioError(f"{args.scenario}: --record: not published by this federation: {', '.join(unknown)} "
                            "(see lec-cosim interface)")


def _check_player(args, scenario) -> None:
    """``--play-market`` needs a market federate, a readable file and the single broker."""
    if not args.play_market:
        return
    from lec_cosim.studies import KINDS, study, study_of

    if "market" not in study_of(scenario).VALUE_PLAYERS:
        takers = [kind for kind in KINDS if "market" in study(kind).VALUE_PLAYERS]
        raise ScenarioError(f"{args.scenario}: --play-market: only a {' or '.join(takers)} federation has a market "
                            f"federate that publishes values a file can replace, not {scenario.kind}")
    if args.sub_brokers or scenario.broker.hosts:
        raise ScenarioError(f"{args.scenario}: --play-market: helics_player joins a single broker, not "
                            f"{'--sub-brokers' if args.sub_brokers else 'a federation over hosts'}")
    if not Path(args.play_market).is_file():
        raise ScenarioError(f"{args.play_market}: --play-market: file not found")
    from lec_cosim.helics_tools import check_helics_player

    try:
        check_helics_player(scenario, "market", Path(args.play_market))
    except ValueError as exc:
        raise ScenarioError(f"{args.play_market}: --play-market: {exc}") from None


def _attach_recorder(args, scenario, run_dir: Path) -> None:
    if args.play_market:
        from lec_cosim.helics_tools import replace_with_helics_player

        try:
            replace_with_helics_player(run_dir, scenario, "market", Path(args.play_market))
        except ValueError as exc:
            raise ScenarioError(f"{args.play_market}: --play-market: {exc}") from None
    if args.record:
        from lec_cosim.helics_tools import attach_helics_recorder

        keys = ["all"] if "all" in args.record else args.record
        attach_helics_recorder(run_dir, scenario, keys)


def _say(line: str) -> None:
    """Print a line of progress or results; a reader that went away (``| head``) stops the printing, not the run."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # and no error at exit


def _cmd_run(args) -> int:
    from lec_cosim.api import run
    from lec_cosim.runs import RunFailed, RunInterrupted

    scenario = _load(args)
    _check_sub_brokers(args, scenario)
    _check_record(args, scenario)
    _check_player(args, scenario)
    stall_s = _stall_timeout(args, scenario)

    def terminate(signum, frame):  # kill: end the federation cleanly, keep what it wrote
        raise Terminated

    def started(staging: Path) -> None:
        _say(f"running {scenario.name} ({scenario.horizon_h:g} h, grid step {scenario.resolution.grid_min} min) "
             f"in {staging}")

    def show(progress: str) -> None:
        if not args.quiet:
            _say(f"  {progress}")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        result = run(scenario, args.out, force=args.force, timeout_s=args.timeout, stall_timeout_s=stall_s,
                     sub_brokers=args.sub_brokers, debug=args.debug,
                     prepare=lambda staging: _attach_recorder(args, scenario, staging), on_start=started,
                     on_progress=show)
    except (RunFailed, RunInterrupted) as exc:
        failed = exc.failed if isinstance(exc, RunInterrupted) else exc
        if args.debug and failed.federate is not None:
            log = failed.kept / "logs" / f"{failed.federate}.log"
            sys.stderr.write(f"--- {log} ---\n{log.read_text(errors='replace') if log.is_file() else '(no log)'}\n")
        if failed.input_error is not None:  # the scenario asks for the impossible: an input error, told as one
            field, why = failed.input_error
            print(f"error: {args.scenario}: {field}: {why} (found by federate {failed.federate}; incomplete run kept "
                  f"in {failed.kept}{failed.note})", file=sys.stderr)
            return EXIT_INPUT_ERROR
        print(f"error: {failed}", file=sys.stderr)
        if failed.interrupted:
            return 128 + signal.SIGTERM if failed.interrupted == "SIGTERM" else 130
        return EXIT_RUN_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)
    k, wall, out = result.kpis, result.wall_s, result.path
    from lec_cosim.studies import study_of

    _say(f"done in {wall:.1f} s: {study_of(scenario).done(k, result.summary)}")
    _say(f"results: {out.resolve()}")
    return 0


def _cmd_sweep(args) -> int:
    from lec_cosim.sweep import run_sweep

    studied = {}  # the sweep's study, known once it is planned: its runs' lines are told as lec-cosim run tells them

    def planned(sweep, to_run) -> None:
        from lec_cosim.studies import study

        studied["study"] = study(sweep.kind)
        reused = len(sweep.runs) - len(to_run)
        where = f"Dask scheduler {args.scheduler}" if args.scheduler else "a local process pool"
        _say(f"sweep of {sweep.base_name}: {len(sweep.runs)} run{'s' * (len(sweep.runs) != 1)} of "
             f"{', '.join(sweep.parameter_names)}"
             + (f"; {reused} complete from an earlier sweep, skipped" if reused else "")
             + (f"; running {len(to_run)} on {where}" if to_run else ""))

    def finished(run, outcome, done, total) -> None:
        values = ", ".join(f"{name}={json.dumps(value)}" for name, value in run.parameters.items())
        if outcome.status == "ok":
            line = f"done in {outcome.wall_time_s:.1f} s: {studied['study'].done(outcome.kpis, outcome.summary)}"
        else:
            line = f"FAILED: {outcome.error}"
        if not args.quiet or outcome.status != "ok":
            _say(f"[{done}/{total}] {run.run_id} ({values}): {line}")

    def terminate(signum, frame):  # kill: end the runs cleanly, keep what they wrote, write the table
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        result = run_sweep(args.scenario, args.grid, args.out, workers=args.workers, scheduler=args.scheduler,
                           timeout_s=args.timeout, plot_kpi=args.plot_kpi, on_outcome=finished, on_plan=planned)
    finally:
        signal.signal(signal.SIGTERM, previous)
    failed = result.failed
    ok = len(result.outcomes) - len(failed)
    _say(f"sweep done in {result.wall_s:.1f} s: {ok} of {len(result.outcomes)} runs complete"
         + (f", {len(failed)} failed" if failed else ""))
    for outcome in failed:
        print(f"failed: {outcome.run_id}: {outcome.error}", file=sys.stderr)
    _say(f"table: {result.out / 'sweep.csv'}")
    if result.plot is not None:
        _say(f"plot: {result.plot}")
    return EXIT_RUN_ERROR if failed else 0


def _stall_timeout(args, scenario) -> float | None:
    """The watchdog's stall time: ``--stall-timeout`` (0: none), else the scenario's."""
    if args.stall_timeout is None:
        return scenario.federation.stall_timeout_s
    if not (args.stall_timeout == 0 or MIN_STALL_TIMEOUT_S <= args.stall_timeout < float("inf")):
        raise ScenarioError(f"{args.scenario}: --stall-timeout: must be 0 (no watchdog) or {MIN_STALL_TIMEOUT_S:g} "
                            f"seconds or more, not {args.stall_timeout:g}")
    return args.stall_timeout or None


def _cmd_runner(args) -> int:
    from lec_cosim.federation import write_federation

    scenario = _load(args)
    _check_sub_brokers(args, scenario)
    check_data(scenario)  # what run would refuse, the runner file refuses too: helics run would fail later
    check_broker(scenario)
    _check_record(args, scenario)
    _check_player(args, scenario)
    target = Path(args.output).resolve()
    run_dir = target.parent
    write_federation(scenario, run_dir, sub_brokers=args.sub_brokers)
    _attach_recorder(args, scenario, run_dir)
    if target.name != "runner.json":
        (run_dir / "runner.json").replace(target)
    print(f"wrote {target} (configs in {run_dir / 'configs'}); results go to {run_dir}")
    if scenario.broker.hosts:
        from lec_cosim.federation import HOSTS_FOLDER

        print(f"copy {run_dir} to the same path on every host and start each host's part there, in any order "
              "(the root waits for its sub-brokers):")
        runner = json.loads(target.read_text())
        for address in dict.fromkeys(entry["host"] for entry in runner["federates"]):  # the root's host first
            part = run_dir / HOSTS_FOLDER / f"{address}.json"
            print(f"  on {address}: lec-cosim launch {run_dir} --host {address}    (or helics run --path {part})")
        return 0
    print(f"start it with: helics run --path {target}")
    return 0


def _cmd_launch(args) -> int:
    from lec_cosim.federation import HOSTS_FOLDER
    from lec_cosim.launch import FederationError, run_federation

    run_dir = Path(args.run_dir).resolve()
    part = run_dir / HOSTS_FOLDER / f"{args.host}.json"
    if not part.is_file():
        known = sorted(path.stem for path in (run_dir / HOSTS_FOLDER).glob("*.json"))
        reason = f"hosts of this federation: {', '.join(known)}" if known else \
            "no federation over hosts there (write one with lec-cosim runner and broker.hosts or --hosts)"
        raise ScenarioError(f"{part}: --host: no part for {args.host} ({reason})")
    if args.stall_timeout is not None:
        stall_s = args.stall_timeout
    else:  # the scenario's, as lec-cosim run takes it
        try:
            federation = json.loads((run_dir / "scenario.json").read_text()).get("federation") or {}
        except (OSError, ValueError):
            federation = {}
        stall_s = federation.get("stall_timeout_s", STALL_TIMEOUT_S) or 0
    if not (stall_s == 0 or MIN_STALL_TIMEOUT_S <= stall_s < float("inf")):
        raise ScenarioError(f"{part}: --stall-timeout: must be 0 (no watchdog) or {MIN_STALL_TIMEOUT_S:g} seconds "
                            f"or more, not {stall_s:g}")
    names = [entry["name"] for entry in json.loads(part.read_text())["federates"]]
    _say(f"starting {', '.join(names)} of {run_dir} on {args.host}")

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        wall = run_federation(run_dir, runner_file=part, timeout_s=args.timeout, stall_timeout_s=stall_s or None,
                              debug=args.debug, on_progress=None if args.quiet else lambda line: _say(f"  {line}"))
    except FederationError as exc:
        print(f"error: {args.host}: {exc}", file=sys.stderr)
        return EXIT_RUN_ERROR
    finally:
        signal.signal(signal.SIGTERM, previous)
    _say(f"done in {wall:.1f} s: {', '.join(names)} on {args.host} finished")
    if (run_dir / "summary.json").is_file() and "recorder" in names:
        _say(f"results: {run_dir}")
    return 0


def _cmd_compose(args) -> int:
    from lec_cosim.compose import RESULTS_FOLDER, write_compose

    scenario = _load(args)
    check_data(scenario)  # what run would refuse, compose refuses too: before anything is written
    out = Path(args.output).resolve()
    try:
        compose_file = write_compose(scenario, out, compose_file=args.compose_file, subnet=args.subnet,
                                     force=args.force, kubernetes=args.kubernetes)
    except FileExistsError as exc:
        raise ScenarioError(str(exc)) from None
    except ScenarioError:
        raise
    except ValueError as exc:
        raise ScenarioError(f"{args.scenario}: {exc}") from None
    if scenario.broker.hosts:
        from lec_cosim.federation import HOSTS_FOLDER

        print(f"wrote a compose file per host in {out / HOSTS_FOLDER} (Dockerfile and federation files in {out})")
        print(f"copy {out} to every host and start each host's file there:")
        for part in sorted((out / HOSTS_FOLDER).glob("*.yml")):
            print(f"  on {part.stem}: docker compose -f {part} up --build --abort-on-container-failure")
        print(f"results go to {out / RESULTS_FOLDER} on the recorder's host")
        return 0
    print(f"wrote {compose_file} (Dockerfile and federation files in {out})")
    print(f"start it with: docker compose -f {compose_file} up --build --abort-on-container-failure")
    print(f"or, as root, build its image here and run it: python -m lec_cosim.container_image run {compose_file}")
    print(f"results go to {out / RESULTS_FOLDER}")
    if args.kubernetes:
        from lec_cosim.kubernetes import FOLDER

        print(f"Kubernetes manifests of the same federation in {out / FOLDER}: with the image where the cluster's "
              f"nodes find it, kubectl apply --server-side -f {out / FOLDER}/ (results in a PersistentVolumeClaim; "
              "docs/deployment/index.md, Kubernetes)")
    return 0


def _cmd_interface(args) -> int:
    from lec_cosim.interface import federation_interface, interface_markdown

    scenario = _load(args)
    interface = federation_interface(scenario)
    text = interface_markdown(interface) if args.format == "markdown" else json.dumps(interface, indent=1) + "\n"
    if args.output:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _study_of_runs(runs):
    """The one study of the runs compared or plotted together (one line when they mix studies)."""
    from lec_cosim.report_html import run_kind
    from lec_cosim.studies import study

    kinds = {run_kind(run) for run in runs}
    if len(kinds) > 1:
        raise ScenarioError(f"{' '.join(map(str, runs))}: cannot mix runs of different studies "
                            f"({', '.join(sorted(kinds))})")
    return study(kinds.pop())


def _cmd_compare(args) -> int:
    chosen = _study_of_runs(args.runs)
    try:
        print(chosen.compare(args.runs, paper=args.paper))
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    return 0


def _cmd_plot(args) -> int:
    chosen = _study_of_runs(args.runs)
    try:
        chosen.plot(args.runs, args.output)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    print(f"wrote {args.output}")
    return 0


def _cmd_report(args) -> int:
    from lec_cosim.report_html import write_html_report

    target = write_html_report(args.runs, args.output, paper=args.paper)
    print(f"wrote {target}")
    return 0


def _cmd_train_bidders(args) -> int:
    from lec_cosim.studies import KINDS, study, study_of
    from lec_cosim.training import train_bidders

    scenario = load_scenario(args.scenario)
    trains = getattr(study_of(scenario), "check_training", None)
    if trains is None:
        takers = [kind for kind in KINDS if hasattr(study(kind), "check_training")]
        raise ScenarioError(f"{args.scenario}: kind: train-bidders needs a {' or '.join(takers)} scenario, "
                            f"not {scenario.kind}")
    trains(scenario, args.scenario)  # its data, but not the bids: they are what it is about to write
    target = Path(args.output) if args.output else scenario.market.learned_bids_file
    if target is None:
        raise ScenarioError(f"{args.scenario}: market.learned_bids_file: not set; pass --output")
    def show(line: str) -> None:
        if not args.quiet:
            print(f"  {line}", flush=True)

    report = train_bidders(scenario, target, iterations=args.iterations, ants=args.ants, runs=args.runs,
                           seed=args.seed, on_progress=show)
    print(report)
    return 0



def _cmd_feeder(args) -> int:
    from lec_cosim.models.feeder_source import (
        CHECK_TOLERANCE_PU,
        describe_feeder,
        load_feeder,
        own_engine_deviation_pu,
    )

    feeder = load_feeder(args.source)
    for line in describe_feeder(feeder):
        print(line)
    if args.check:
        deviation, against = own_engine_deviation_pu(args.source, time=args.time)
        print(f"  check: largest voltage difference {deviation:.1e} pu against {against}")
        if not deviation <= CHECK_TOLERANCE_PU:  # the grid model is not the source's grid: say so, exit 1
            print(f"error: {args.source}: check: the grid model differs from {against} by {deviation:.1e} pu, "
                  f"more than {CHECK_TOLERANCE_PU:g} pu", file=sys.stderr)
            return 1
    return 0


def _sub_brokers_option(p) -> None:
    p.add_argument("--sub-brokers", type=int, default=0, metavar="K",
                   help="a root broker and K sub-brokers, the federates dealt to them in turn "
                        "(default 0: one broker; see broker_config/README.md)")


def _hosts_options(p) -> None:
    p.add_argument("--hosts", metavar="ADDR[,ADDR...]",
                   help="spread the federation over these hosts: a sub-broker on each, listening on its address, "
                        "with its federates dealt in turn (overrides the scenario's broker.hosts; '' for none); "
                        "see broker_config/README.md")
    p.add_argument("--broker-address", metavar="ADDR",
                   help="where the (root) broker listens (overrides the scenario's broker.address)")


def _multi_lec_options(p) -> None:
    p.add_argument("--framework", choices=FRAMEWORKS,
                   help="multi-LEC scenarios: override the scenario's framework")
    limits = p.add_mutually_exclusive_group()
    limits.add_argument("--dso-limits", dest="dso_limits", action="store_true", default=None,
                        help="multi-LEC scenarios: the DSO publishes per-LEC import/export limits (dso.limits)")
    limits.add_argument("--no-dso-limits", dest="dso_limits", action="store_false",
                        help="multi-LEC scenarios: no DSO limits")


def _record_option(p) -> None:
    p.add_argument("--record", action="append", metavar="KEY", default=[],
                   help="add stock helics_recorder capturing this publication (repeatable; 'all': every one) "
                        "into helics_recorder.txt")
    p.add_argument("--play-market", metavar="FILE",
                   help="replace the market federate by stock helics_player playing FILE (HELICS player format, "
                        "e.g. a helics_recorder.txt of the market's keys)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lec-cosim", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a scenario file")
    p.add_argument("scenario")
    _multi_lec_options(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("run", help="run a scenario's federation and write its results")
    p.add_argument("scenario")
    p.add_argument("--out", help="results directory (default: results/<scenario name>)")
    p.add_argument("--force", action="store_true", help="replace an existing results directory")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument("--stall-timeout", type=float, default=None, metavar="S",
                   help="end the federation when no federate's time advances for S wall seconds, naming the "
                        "federate that holds it (default: the scenario's federation.stall_timeout_s, "
                        f"{STALL_TIMEOUT_S:g} s unless set; 0: never)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _sub_brokers_option(p)
    _hosts_options(p)
    _record_option(p)
    _multi_lec_options(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sweep", help="run a scenario for every combination of parameter values (a sweep file), "
                                     "on a local process pool or a Dask cluster, into one table and plot")
    p.add_argument("scenario")
    p.add_argument("--grid", required=True, metavar="SWEEP.yaml",
                   help="the sweep file: parameters (dotted scenario fields -> lists of values, run as their "
                        "product), optional cases (values that go together) and framework (three-LEC scenarios); "
                        "see docs/tutorials/sweeps.md")
    p.add_argument("--out", help="the sweep's folder (default: results/<sweep file name>): each run in "
                                 "OUT/runs/<id>, the table OUT/sweep.csv, the plot OUT/sweep.png; complete runs "
                                 "of an earlier sweep there are skipped")
    p.add_argument("--workers", type=int, metavar="N",
                   help="runs at once on the local process pool (default: the machine's cores; a federation is "
                        "several processes, but they step in turn and keep about one core busy)")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="run on the Dask cluster of this scheduler (tcp://HOST:PORT) instead, one run per task; OUT "
                        "must be on a file system every worker shares")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="give up on a run after S wall seconds (each run's own limit; it is listed as failed)")
    p.add_argument("--plot-kpi", metavar="NAME",
                   help="the KPI the plot shows against the first parameter (a column of sweep.csv; default: the "
                        "first about cost)")
    p.add_argument("--quiet", action="store_true", help="no line per completed run (failed ones are still listed)")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("runner", help="write a helics-cli runner file (helics run --path FILE)")
    p.add_argument("scenario")
    p.add_argument("-o", "--output", required=True, help="runner JSON path; configs and results go beside it")
    _sub_brokers_option(p)
    _hosts_options(p)
    _record_option(p)
    _multi_lec_options(p)
    p.set_defaults(func=_cmd_runner)

    p = sub.add_parser("launch", help="start one host's part of a federation spread over hosts (written by lec-cosim "
                                      "runner with broker.hosts or --hosts) and supervise it")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the folder lec-cosim runner wrote (the same path on every host)")
    p.add_argument("--host", required=True, metavar="ADDR",
                   help="this host's address (its part: RUN_DIR/hosts/ADDR.json)")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument("--stall-timeout", type=float, default=None, metavar="S",
                   help="end this host's part when none of its federates' time advances for S wall seconds "
                        f"(default: the scenario's federation.stall_timeout_s, {STALL_TIMEOUT_S:g} s unless set; "
                        "0: never)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_launch)

    p = sub.add_parser("compose", help="write a docker compose project: one container for the broker and one "
                                       "per federate (docker compose up)")
    p.add_argument("scenario")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder for docker-compose.yml, the Dockerfile, the federation files and results/")
    p.add_argument("--force", action="store_true", help="replace an existing DIR (its results/ too)")
    p.add_argument("--subnet", help="the private compose network (default 10.235.0.0/24); its first address is "
                                    "the gateway, the broker gets the second, the federates the next ones")
    p.add_argument("--compose-file", metavar="FILE",
                   help="write docker-compose.yml here instead of into DIR (its paths are relative to its folder)")
    p.add_argument("--kubernetes", action="store_true",
                   help="also write the same federation as Kubernetes manifests into DIR/kubernetes/ (kubectl apply "
                        "--server-side -f): a Job per process, a Service for the broker, the files in ConfigMaps, the "
                        "results in a PersistentVolumeClaim")
    _hosts_options(p)
    _multi_lec_options(p)
    p.set_defaults(func=_cmd_compose)

    p = sub.add_parser("interface", help="the federation's publications, endpoints, units and periods")
    p.add_argument("scenario")
    p.add_argument("--format", choices=["json", "markdown"], default="json")
    p.add_argument("-o", "--output", help="file (default: standard output)")
    _multi_lec_options(p)
    p.set_defaults(func=_cmd_interface)

    p = sub.add_parser("compare", help="KPI table of several runs (local-market runs: Tables II and III)")
    p.add_argument("runs", nargs="+")
    p.add_argument("--paper", help="JSON/YAML of published values to show beside local-market runs")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("plot", help="draw the figure of several runs of one study (the figure its report shows)")
    p.add_argument("runs", nargs="+")
    p.add_argument("-o", "--output", required=True, help="PNG file")
    p.set_defaults(func=_cmd_plot)

    p = sub.add_parser("report", help="one self-contained HTML page with the KPI tables and figures of runs "
                                      "of any kind")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="complete run directories (kinds may be mixed)")
    p.add_argument("-o", "--output", required=True, help="HTML file (replaced only by a complete page)")
    p.add_argument("--paper", help="JSON/YAML of published values to show beside local-market runs")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("feeder", help="read a feeder source (ieee_eu_lv, simbench: CODE, pandapower: FILE, opendss: "
                                      "FILE) and say what it holds; --check solves it against its own engine")
    p.add_argument("source", help="e.g. 'simbench: 1-LV-semiurb4--0-sw' or 'opendss: Master.dss'")
    p.add_argument("--check", action="store_true", help="also solve a snapshot with the project's power flow and "
                                                       "with the source's own engine, and print the difference "
                                                       "(exit 1 if above 1e-4 pu)")
    p.add_argument("--time", help="SimBench: the snapshot's time (default: the year's peak load)")
    p.set_defaults(func=_cmd_feeder)

    p = sub.add_parser("train-bidders", help="learn the CHPs' bids of a local-market scenario with ACO")
    p.add_argument("scenario")
    p.add_argument("--output", help="bids JSON (default: the scenario's market.learned_bids_file)")
    p.add_argument("--iterations", type=int, help="override learning.iterations")
    p.add_argument("--ants", type=int, help="override learning.ants")
    p.add_argument("--runs", type=int, help="override learning.runs")
    p.add_argument("--seed", type=int, help="override learning.seed")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_train_bidders)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ScenarioError, FileNotFoundError, FeederSourceError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except OutputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt as exc:
        print("error: interrupted", file=sys.stderr)
        return 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
