"""``lec-cosim`` (and ``python -m lec_cosim``): the command-line tool, with a run's fork server started first.

``lec-cosim run`` spends about 0.7 s importing its own modules and reading, checking and writing the scenario
before its federation starts; the fork server, which imports what every federate program imports
(:mod:`lec_cosim.forkserver`, half a second), is started before all that, so that both import at once, on two
cores, and the federates are forked as soon as the run is written. Every other command (and ``run --help``) goes
straight to :mod:`lec_cosim.cli`, whose ``main`` this calls.
"""

from __future__ import annotations

import sys

GLOBAL_FLAGS = ("--debug",)
"""The options ``lec-cosim`` takes before its command (:func:`lec_cosim.cli.build_parser`)."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((arg for arg in argv if arg not in GLOBAL_FLAGS), None)
    if command == "run" and not {"-h", "--help"} & set(argv):
        from lec_cosim.forkserver import run_environment, start_spare

        start_spare(run_environment(debug="--debug" in argv[:argv.index("run")]))
    from lec_cosim.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
