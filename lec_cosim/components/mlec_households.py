"""The members of the three LECs: households with PV and home batteries and the community batteries, with
their HEMSs in p2p (models :mod:`lec_cosim.models.multi_lec`, :mod:`lec_cosim.models.p2p`)."""

from __future__ import annotations

from lec_cosim.components import Port, unit_of
from lec_cosim.components import Settings as _Settings

PROGRAM = "federates.mlec_households"
VECTORS = ("load_kw", "load_kvar", "pv_kw", "curtailed_kw", "battery_kw", "soc_kwh", "net_kw")


class Settings(_Settings):
    members_bid: bool
    """Each HEMS plans its home battery and bids to its LEC's market (p2p)."""
    pool_operator: bool
    """Bids go to the LEC's pool operator (``p2p.market: pool_operator``), not its LEC_EMS."""
    bid_offset_s: float
    step_offset_s: float
    measure_offset_s: float
    """When in each hour it sends each LEC_EMS its measured pooled energy (target ``lec_ems``): before the LEC_EMS
    plans the hour."""
    agent_members: list[str] = []
    """p2p: households whose home battery's set-point an agent decides (a scenario's ``agents:``)."""


PORTS = (
    Port("{lec}.pooled_charge_kw", "in", "double", "kW", "each LEC_EMS's pooled charging power"),
    Port("{lec}.curtail_kw", "in", "double", "kW", "each LEC_EMS's curtailment"),
    Port("{member}", "endpoint", "message", None, "each household's own endpoint (p2p): caps and results arrive"),
    Port("{member}.action", "in", "double", "kW", "an agent's set-point of the member's home battery for the hour "
         "(charge positive; agent_members)", optional=True),
    Port("household_import_limit_kw", "in", "vector", "kW", "with dso.limits_per household: the DSO's import "
         "limit per household, which each home battery keeps its household to as far as it can", optional=True),
    Port("household_export_limit_kw", "in", "vector", "kW", "with dso.limits_per household: the DSO's export "
         "limit per household, which each household's PV is curtailed to", optional=True),
    Port("market", "target", "message", None, "p2p: each LEC's market endpoint (its LEC_EMS)", optional=True),
    Port("pool", "target", "message", None, "p2p with pool operators: each LEC's pool operator", optional=True),
    *(Port(v, "out", "vector", unit_of(v), "per member, this grid step: " + v.replace("_", " ")) for v in VECTORS),
    Port("meter", "endpoint", "message", None, "where it sends each LEC_EMS its measurement from"),
    Port("lec_ems", "target", "message", None, "each LEC_EMS's meter endpoint, by LEC: at every hour's start the "
         "energy in the LEC's pooled batteries (those its LEC_EMS plans: home and community batteries, in p2p the "
         "community battery only) as measured then (JSON: hour, lec, pooled_soc_kwh)"),
)
