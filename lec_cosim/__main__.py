"""``lec-cosim`` (and ``python -m lec_cosim``): the command-line tool, with a run's fork server started first.

``lec-cosim run`` spends about 0.7 s importing its own modules and reading, checking and writing the scenario
before its federation starts; the fork server, which imports what every federate program imports
(:mod:`lec_cosim.forkserver`, half a second), is started before all that, so that both import at once, on two
cores, and the federates are forked as soon as the run is written. Every other command (and ``run --help``) goes
straight to :mod:`lec_cosim.cli`, whose ``main`` this calls.
"""

from __future__ import annotations

import os
import sys

GLOBAL_FLAGS = ("--debug",)
"""The options ``lec-cosim`` takes before its command (:func:`lec_cosim.cli.build_parser`)."""


def main(argv: list[str] | None = None) -> int:
    """The command ``argv``; None: this process's own command line, and then a run ends the process itself."""
    own = argv is None
    argv = sys.argv[1:] if own else argv
    command = next((arg for arg in argv if arg not in GLOBAL_FLAGS), None)
    run = command == "run" and not {"-h", "--help"} & set(argv)
    if run:
        from lec_cosim.forkserver import run_environment, start_spare

        start_spare(run_environment(debug="--debug" in argv[:argv.index("run")]))
    from lec_cosim.cli import main as cli_main

    code = cli_main(argv)
    if run and own:
        # what the interpreter's end does that anyone sees, without tearing down pandas, HELICS and the rest
        # (0.15 s of a week's 2 s); a run's files are written by its federates, and the command's own are closed
        from lec_cosim.forkserver import interpreter_ending

        os._exit(interpreter_ending(code))
    return code


if __name__ == "__main__":
    sys.exit(main())
