"""Agent proxy federate as a program: there is nobody to decide.

The roles of a scenario's ``agents:`` are decided by an external agent through a learning environment
(:mod:`lec_cosim.env`), which is this federate itself (the same config and ports, in the environment's
thread). Started as a program (``lec-cosim run``, helics-cli), it stops the federation with an input error
naming ``agents``, before any time passes.
"""

from __future__ import annotations

from federates.common import Federate, main
from lec_cosim.models.errors import InfeasibleInput


class AgentsNeedAnEnvironment(InfeasibleInput):
    field = "agents"


def build(fed: Federate):
    raise AgentsNeedAnEnvironment(f"{', '.join(fed.options.roles)} are decided by an external agent: play this "
                                  "scenario through lec_cosim.env (LecEnv, LecParallelEnv), or remove agents")


if __name__ == "__main__":
    main(build, __doc__)
