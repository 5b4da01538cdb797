"""Session hooks of the test suite."""

import os
import sys


def pytest_unconfigure(config):
    """A test whose federate under test failed at start leaves its own HELICS federates waiting for it
    (``harness.STRANDED``): every HELICS call on them, and HELICS's own clean-up at exit, would block for
    ever. The test has failed and the summary is printed; end the process without that clean-up."""
    harness = sys.modules.get("harness")
    if harness is not None and harness.STRANDED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
