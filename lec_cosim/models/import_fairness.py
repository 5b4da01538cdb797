"""Fairness and import caps in the LEC: how the LEC EMS shares its import limit and who pays the fairness fee.

The LEC EMS sets, for the next period, every member's import cap (an equal share of the LEC's
import limit) and charges the fairness fee to the member(s) who imported most in the previous
period; the members' home plans (:func:`lec_cosim.models.home_plan.plan_home`) take both. Separate
because it is the LEC's own policy, neither a member's decision nor a market rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lec_cosim.models.home_plan import _REL_TOL, _nonnegative


def member_caps_and_fees(
    previous_import_kwh: Mapping[str, float],
    members: Sequence[str],
    *,
    lec_import_limit_kw: float,
    fairness_fee_eur_per_kwh: float,
    cap_floor_kw: float = 0.0,
    member_import_limits_kw: Mapping[str, float] | None = None,
) -> dict[str, tuple[float, float]]:
    """Import caps and fairness fees the LEC EMS sets for the next period.

    The rule:

    * **Caps.** The LEC's import limit is shared equally: every member's import cap is
      ``max(lec_import_limit_kw / len(members), cap_floor_kw)`` (``inf`` when the LEC has no limit).
      With ``member_import_limits_kw`` (the DSO's limits per connection point, which it already shared
      on the common branches: :mod:`lec_cosim.models.household_envelope`) each member's cap is its own
      limit (at least ``cap_floor_kw``) instead.
      A member may import above its cap at the over-cap fee (:func:`plan_home`).
    * **Fairness fee.** The member(s) with the largest grid import in the previous period pay
      ``fairness_fee_eur_per_kwh`` on all their grid import in the next period; everyone else
      pays 0. The largest import must be strictly positive (nobody pays when nobody imported);
      members within a relative 1e-9 of the largest all pay (ties). Members missing from
      ``previous_import_kwh`` imported 0.

    Why: in Moret and Pinson's energy collective the member contributing most to the collective's
    import from the grid pays an import fee, so the cost of the collective's dependence on the
    grid falls on those who cause it and the members are steered to spread their imports.

    Parameters
    ----------
    previous_import_kwh : mapping of str to float
        Each member's grid import in the previous period, kWh, >= 0 (e.g.
        :attr:`PoolResult.grid_import_kwh`); every key must be a member.
    members : sequence of str
        The LEC's members, unique, non-empty.
    lec_import_limit_kw : float
        The LEC's import limit, kW, >= 0; ``inf``: none.
    fairness_fee_eur_per_kwh : float
        The fee, >= 0.
    cap_floor_kw : float
        No cap is below this, kW, >= 0.
    member_import_limits_kw : mapping of str to float, optional
        Each member's own import limit, kW, >= 0 (``inf``: none); every member must have one.

    Returns
    -------
    dict of str to (float, float)
        ``member -> (import_cap_kw, import_fee_eur_per_kwh)`` in the order of ``members``.
    """
    members = list(members)
    if not members or len(set(members)) != len(members):
        raise ValueError("members must be a non-empty sequence of unique names")
    unknown = sorted(set(previous_import_kwh) - set(members))
    if unknown:
        raise ValueError(f"previous_import_kwh has names that are not members: {unknown}")
    limit = _nonnegative(lec_import_limit_kw, "lec_import_limit_kw", allow_inf=True)
    fee = _nonnegative(fairness_fee_eur_per_kwh, "fairness_fee_eur_per_kwh")
    floor = _nonnegative(cap_floor_kw, "cap_floor_kw")
    previous = {m: _nonnegative(previous_import_kwh.get(m, 0.0), f"previous_import_kwh[{m!r}]") for m in members}
    cap = max(limit / len(members), floor)
    caps = {m: cap for m in members}
    if member_import_limits_kw is not None:
        missing = sorted(set(members) - set(member_import_limits_kw))
        if missing:
            raise ValueError(f"member_import_limits_kw has no limit for {missing}")
        caps = {m: max(_nonnegative(member_import_limits_kw[m], f"member_import_limits_kw[{m!r}]", allow_inf=True),
                       floor) for m in members}
    largest = max(previous.values())
    tol = _REL_TOL * max(1.0, largest)
    payers = {m for m, kwh in previous.items() if largest > 0 and kwh >= largest - tol}
    return {m: (caps[m], fee if m in payers else 0.0) for m in members}
