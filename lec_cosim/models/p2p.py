"""P2P inside the LEC: home energy management, the LEC's P2P pool, fairness and the inter-LEC platform.

After Moret and Pinson, "Energy collectives: a community and fairness based approach to future
electricity markets", IEEE Trans. Power Syst. 34(5), 2019 (preprint 2018). In an energy collective
the members trade with each other first and with the grid only for what the collective cannot
balance itself. This module holds the pieces of that framework for one market period (one hour);
the LEC EMS federate strings them together:

1. **Home plan** (:func:`plan_home`). Every member runs a home energy-management LP over the
   remaining steps: grid import and export at the given prices, a home battery, an import cap
   set by the LEC (import above it pays a fee) and the fairness fee on all import. The plan's
   ``net_kw`` of the coming step is the member's position.
2. **P2P pool** (:func:`member_orders`, :func:`clear_lec_pool`). A member with a positive net
   energy bids for it at the import (retail) price, a member with a surplus offers it at the
   export (feed-in) price: the prices at which the grid would otherwise serve them. The pool is
   a uniform-price double auction (:func:`lec_cosim.models.auction.clear_double_auction`,
   merit-order path). What it does not match the LEC buys or sells upstream for the member; the
   LEC's residual is ``lec_net_kwh``.
3. **Fairness and caps** (:func:`member_caps_and_fees`). The LEC EMS shares the LEC's import
   limit equally among the members as import caps and charges the fairness fee to the member(s)
   who imported most in the previous period.
4. **Inter-LEC platform** (:func:`clear_platform`). The LECs' residuals meet on a platform (a
   second double auction) before the rest goes to the upstream grid. Used by the "P2P inside the
   LEC" framework and by the inter-LEC trading framework.

Prices of the two auctions
--------------------------
With every bid at the import price and every offer at the export price the book has one step on
each side, and the midpoint rule of :mod:`lec_cosim.models.auction` gives

* demand > supply: the import price (every offer is accepted, the first bid not fully accepted
  sets the lower end of the price interval, so the interval is the single point [import, import]);
* supply > demand: the export price (symmetrically);
* demand = supply (to the auction's relative tolerance 1e-9): the midpoint
  (import + export) / 2, e.g. (0.158 + 0.045) / 2 = 0.1015 EUR/kWh.

So the pool shares the gain of local trade equally only when it is exactly balanced; otherwise the
short side keeps the whole gain (buyers pay what the grid would charge them, or sellers receive
what the grid would pay them). On the platform the offers are at export + wheeling fee, so the
same holds with that price in place of the export price.

The market period is one hour, so kW and kWh per period are the same numbers in the pool and on
the platform. No HELICS here: plain Python, NumPy and SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from lec_cosim.models.auction import ClearingResult, Order, clear_double_auction

THROUGHPUT_PENALTY_EUR_PER_KWH = 1e-6
"""Cost per kWh charged or discharged in :func:`plan_home`: avoids needless cycling, not reported."""

_REL_TOL = 1e-9  # as in lec_cosim.models.auction


# --- home energy management ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HomePlan:
    """A member's optimal plan over the remaining steps (every array of length T, read-only).

    Attributes
    ----------
    import_kw, export_kw : numpy.ndarray
        Grid import and export (never both in one step), kW, >= 0.
    import_over_cap_kw : numpy.ndarray
        The part of ``import_kw`` above the import cap (pays the over-cap fee), kW.
    charge_kw, discharge_kw : numpy.ndarray
        Battery charge and discharge power on the home's side of the inverter, kW, >= 0.
    soc_kwh : numpy.ndarray
        State of charge at the end of every step, kWh.
    net_kw : numpy.ndarray
        ``import_kw - export_kw``: the member's position (positive: needs energy).
    cost_eur : float
        sum dt * (import price * import - export price * export + import fee * import
        + over-cap fee * import over cap), EUR; the throughput penalty is not included.
    """

    import_kw: np.ndarray
    export_kw: np.ndarray
    import_over_cap_kw: np.ndarray
    charge_kw: np.ndarray
    discharge_kw: np.ndarray
    soc_kwh: np.ndarray
    net_kw: np.ndarray
    cost_eur: float


def _series(value, n: int, name: str, *, allow_inf: bool = False) -> np.ndarray:
    """A scalar or a 1-d array of length n as a float array of length n (finite unless allow_inf)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{name} must be a scalar or an array of length {n} (the load's), got shape {arr.shape}")
    if np.isnan(arr).any() or (not allow_inf and not np.isfinite(arr).all()):
        raise ValueError(f"{name} must be finite")
    return arr


def _nonnegative(value: float, name: str, *, allow_inf: bool = False) -> float:
    number = float(value)
    if math.isnan(number) or number < 0 or (not allow_inf and math.isinf(number)):
        raise ValueError(f"{name} must be a {'' if allow_inf else 'finite '}number >= 0, got {value!r}")
    return number


def _check_battery(battery_kwh, battery_kw, battery_efficiency, soc_kwh, soc_final_kwh, dt_h, n):
    """Validate the battery and the state-of-charge targets; returns them as floats."""
    capacity = _nonnegative(battery_kwh, "battery_kwh")
    power = _nonnegative(battery_kw, "battery_kw")
    eta = float(battery_efficiency)
    if not 0.0 < eta <= 1.0:
        raise ValueError(f"battery_efficiency must be in (0, 1], got {battery_efficiency!r}")
    soc = _nonnegative(soc_kwh, "soc_kwh")
    final = soc if soc_final_kwh is None else _nonnegative(soc_final_kwh, "soc_final_kwh")
    tol = _REL_TOL * max(1.0, capacity)
    if soc > capacity + tol or final > capacity + tol:
        raise ValueError(f"soc_kwh ({soc}) and soc_final_kwh ({final}) must not exceed battery_kwh ({capacity})")
    reachable = soc + math.sqrt(eta) * power * dt_h * n
    if final > reachable + tol:
        raise ValueError(
            f"soc_final_kwh ({final}) cannot be reached from soc_kwh ({soc}) in {n} steps of {dt_h} h "
            f"at {power} kW (at most {reachable} kWh)"
        )
    return capacity, power, eta, min(soc, capacity), min(final, capacity)


def _home_lp(net_load, dt_h, c_in, c_over, c_exp, cap, capacity, power, eta, soc, final):
    """Solve the home LP; returns charge and discharge (kW). Columns: in, over, exp, ch, dis, soc."""
    n = len(net_load)
    eye = sp.identity(n, format="csr")
    zero = sp.csr_matrix((n, n))
    shift = sp.eye(n, k=-1, format="csr")  # soc_{t-1} of row t
    root = math.sqrt(eta)
    # balance: in + over - exp - ch + dis = load - pv
    balance = sp.hstack([eye, eye, -eye, -eye, eye, zero])
    # storage: soc_t - soc_{t-1} - dt (sqrt(eta) ch_t - dis_t / sqrt(eta)) = 0 (soc_0 given)
    storage = sp.hstack([zero, zero, zero, -dt_h * root * eye, dt_h / root * eye, eye - shift])
    b_storage = np.zeros(n)
    b_storage[0] = soc
    penalty = np.full(n, dt_h * THROUGHPUT_PENALTY_EUR_PER_KWH)
    cost = np.concatenate([c_in, c_over, c_exp, penalty, penalty, np.zeros(n)])
    soc_bounds = [(0.0, capacity)] * (n - 1) + [(final, capacity)]
    bounds = (
        [(0.0, c if math.isfinite(c) else None) for c in cap]
        + [(0.0, None)] * (2 * n)
        + [(0.0, power)] * (2 * n)
        + soc_bounds
    )
    res = linprog(
        cost,
        A_eq=sp.vstack([balance, storage], format="csr"),
        b_eq=np.concatenate([net_load, b_storage]),
        bounds=bounds,
        method="highs",
    )
    if res.status != 0:  # pragma: no cover - the LP is feasible and bounded after validation
        raise RuntimeError(f"home LP not solved: {res.message}")
    x = res.x
    return np.clip(x[3 * n : 4 * n], 0.0, power) + 0.0, np.clip(x[4 * n : 5 * n], 0.0, power) + 0.0  # no -0.0


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = np.array(arr, dtype=float)
    arr.setflags(write=False)
    return arr


def plan_home(
    load_kw,
    pv_kw,
    *,
    dt_h: float,
    import_price_eur_per_kwh,
    export_price_eur_per_kwh,
    battery_kwh: float = 0.0,
    battery_kw: float = 0.0,
    battery_efficiency: float = 1.0,
    soc_kwh: float = 0.0,
    soc_final_kwh: float | None = None,
    import_cap_kw=math.inf,
    over_cap_fee_eur_per_kwh=0.0,
    import_fee_eur_per_kwh=0.0,
) -> HomePlan:
    """Plan a home's grid exchange and battery over the remaining steps at least cost (an LP).

    ::

        min  sum_t dt * ((p_imp + f_imp) * (in_t + over_t) + f_over * over_t - p_exp * exp_t
                         + 1e-6 * (ch_t + dis_t))
        s.t. load_t - pv_t + ch_t - dis_t = in_t + over_t - exp_t
             soc_t = soc_{t-1} + dt * (sqrt(eta) * ch_t - dis_t / sqrt(eta)),  soc_0 = soc_kwh
             0 <= soc_t <= battery_kwh,  soc_T >= soc_final_kwh
             0 <= in_t <= import_cap,  over_t, exp_t >= 0,  0 <= ch_t, dis_t <= battery_kw

    Import above the cap (``over_t``) is allowed at the extra fee, so the LP is always feasible.
    Solved with ``scipy.optimize.linprog(method="highs")``. The returned plan is rebuilt from the
    LP's battery powers so that the energy balance and the SoC recursion hold to rounding:
    import and export are the positive and negative parts of the net load, the over-cap part is
    what import exceeds the cap by (the cheapest split).

    Parameters
    ----------
    load_kw, pv_kw : array_like, shape (T,)
        Household load and PV output of every remaining step, kW, >= 0.
    dt_h : float
        Step length, h, > 0.
    import_price_eur_per_kwh, export_price_eur_per_kwh : float or array_like, shape (T,)
        Grid prices. The export price must not exceed the import price in any step (otherwise
        importing to export would be an unbounded arbitrage).
    battery_kwh, battery_kw : float
        Usable energy and power rating of the home battery, >= 0 (0: no battery).
    battery_efficiency : float
        Round-trip efficiency in (0, 1]; sqrt of it on each leg.
    soc_kwh : float
        State of charge now, in [0, battery_kwh].
    soc_final_kwh : float, optional
        Least state of charge at the end of the horizon; default ``soc_kwh`` (the plan may not
        empty the battery at the horizon's end for free).
    import_cap_kw : float or array_like, shape (T,)
        Import cap set by the LEC EMS, kW, >= 0; ``inf`` (default): none.
    over_cap_fee_eur_per_kwh : float or array_like, shape (T,)
        Extra price of import above the cap, >= 0.
    import_fee_eur_per_kwh : float or array_like, shape (T,)
        Fee on all grid import (the fairness fee), >= 0.

    Returns
    -------
    HomePlan

    Raises
    ------
    ValueError
        Negative sizes, prices or fees, efficiency outside (0, 1], arrays of different lengths,
        an empty horizon, an export price above the import price, or an unreachable final SoC.
    """
    dt_h = float(dt_h)
    if not (math.isfinite(dt_h) and dt_h > 0):
        raise ValueError(f"dt_h must be a finite number > 0, got {dt_h!r}")
    load = np.asarray(load_kw, dtype=float)
    if load.ndim != 1 or len(load) == 0:
        raise ValueError(f"load_kw must be a non-empty 1-d array, got shape {load.shape}")
    n = len(load)
    load = _series(load, n, "load_kw")
    pv = _series(pv_kw, n, "pv_kw")
    p_imp = _series(import_price_eur_per_kwh, n, "import_price_eur_per_kwh")
    p_exp = _series(export_price_eur_per_kwh, n, "export_price_eur_per_kwh")
    cap = _series(import_cap_kw, n, "import_cap_kw", allow_inf=True)
    f_over = _series(over_cap_fee_eur_per_kwh, n, "over_cap_fee_eur_per_kwh")
    f_imp = _series(import_fee_eur_per_kwh, n, "import_fee_eur_per_kwh")
    for name, arr in (("load_kw", load), ("pv_kw", pv), ("import_cap_kw", cap),
                      ("over_cap_fee_eur_per_kwh", f_over), ("import_fee_eur_per_kwh", f_imp)):
        if (arr < 0).any():
            raise ValueError(f"{name} must be >= 0")
    if (p_exp > p_imp).any():
        raise ValueError("export_price_eur_per_kwh must not exceed import_price_eur_per_kwh in any step")
    capacity, power, eta, soc, final = _check_battery(
        battery_kwh, battery_kw, battery_efficiency, soc_kwh, soc_final_kwh, dt_h, n
    )

    net_load = load - pv
    if capacity > 0 and power > 0:
        charge, discharge = _home_lp(
            net_load, dt_h, dt_h * (p_imp + f_imp), dt_h * (p_imp + f_imp + f_over), -dt_h * p_exp,
            cap, capacity, power, eta, soc, final,
        )
    else:
        charge, discharge = np.zeros(n), np.zeros(n)
    root = math.sqrt(eta)
    soc_path = np.clip(soc + dt_h * np.cumsum(root * charge - discharge / root), 0.0, capacity)
    net = net_load + charge - discharge
    imp = np.maximum(net, 0.0)
    exp = np.maximum(-net, 0.0)
    over = np.maximum(imp - cap, 0.0)
    cost = float(np.sum(dt_h * ((p_imp + f_imp) * imp + f_over * over - p_exp * exp)))
    return HomePlan(
        import_kw=_frozen(imp),
        export_kw=_frozen(exp),
        import_over_cap_kw=_frozen(over),
        charge_kw=_frozen(charge),
        discharge_kw=_frozen(discharge),
        soc_kwh=_frozen(soc_path),
        net_kw=_frozen(imp - exp),
        cost_eur=cost,
    )


# --- the LEC's P2P pool ----------------------------------------------------------------------


def _price(value, name: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def member_orders(
    net_kwh: Mapping[str, float],
    *,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
) -> list[Order]:
    """The members' orders to the LEC's P2P pool for one period.

    Parameters
    ----------
    net_kwh : mapping of str to float
        Every member's net energy of the period, kWh (positive: needs energy, negative: surplus).
    import_price_eur_per_kwh, export_price_eur_per_kwh : float
        A member with a need bids for all of it at the import price (the most it would pay: the
        grid serves it at that price); a member with a surplus offers all of it at the export
        price (the least it would accept: the grid buys it at that price).

    Returns
    -------
    list of Order
        One order per member with a non-zero net, in the mapping's order; none for a zero net.
    """
    p_imp = _price(import_price_eur_per_kwh, "import_price_eur_per_kwh")
    p_exp = _price(export_price_eur_per_kwh, "export_price_eur_per_kwh")
    orders = []
    for member, net in net_kwh.items():
        net = _price(net, f"net_kwh[{member!r}]")
        if net > 0:
            orders.append(Order(member, "buy", p_imp, net))
        elif net < 0:
            orders.append(Order(member, "sell", p_exp, -net))
    return orders


def _split(orders: Sequence[Order], result: ClearingResult):
    """Per participant: matched bought and sold kWh, unmatched buy and sell kWh (order of appearance)."""
    names = list(dict.fromkeys(o.participant for o in orders))
    bought, sold, short, long_ = ({name: 0.0 for name in names} for _ in range(4))
    for order, accepted in zip(orders, result.accepted_kwh):
        accepted = min(float(accepted), order.quantity_kwh)
        rest = order.quantity_kwh - accepted
        if order.side == "buy":
            bought[order.participant] += accepted
            short[order.participant] += rest
        else:
            sold[order.participant] += accepted
            long_[order.participant] += rest
    return bought, sold, short, long_


@dataclass(frozen=True, eq=False)
class PoolResult:
    """Outcome of the LEC's P2P pool for one period. Per-member dicts are keyed by member name.

    Attributes
    ----------
    price_eur_per_kwh : float or None
        The pool's uniform price, ``None`` when nothing trades (module docstring for its value).
    volume_kwh : float
        Energy traded between members, kWh.
    bought_kwh, sold_kwh : dict of str to float
        Energy each member bought from / sold to the other members in the pool, kWh.
    grid_import_kwh, grid_export_kwh : dict of str to float
        The unmatched rest of each member's bid / offer, which the LEC buys / sells upstream for
        the member, kWh.
    cost_eur : dict of str to float
        Each member's bill for the period: pool price x (bought - sold) + import price x grid
        import - export price x grid export, EUR (negative: income).
    lec_net_kwh : float
        The LEC's residual: total unmatched buy - total unmatched sell, kWh (one of the two is 0
        when every bid is priced above every offer).
    """

    price_eur_per_kwh: float | None
    volume_kwh: float
    bought_kwh: dict[str, float]
    sold_kwh: dict[str, float]
    grid_import_kwh: dict[str, float]
    grid_export_kwh: dict[str, float]
    cost_eur: dict[str, float]
    lec_net_kwh: float


def clear_lec_pool(
    orders: Sequence[Order],
    *,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
) -> PoolResult:
    """Clear the LEC's P2P pool for one period (merit-order double auction).

    Parameters
    ----------
    orders : sequence of Order
        The members' orders, usually from :func:`member_orders`.
    import_price_eur_per_kwh, export_price_eur_per_kwh : float
        Prices at which the LEC buys the unmatched need and sells the unmatched surplus upstream
        for the members (they enter the members' bills, not the clearing).

    Returns
    -------
    PoolResult
        With buyers at the import and sellers at the export price the pool price is the import
        price when demand exceeds supply, the export price when supply exceeds demand, and their
        midpoint when the two are equal (module docstring).
    """
    orders = list(orders)
    p_imp = _price(import_price_eur_per_kwh, "import_price_eur_per_kwh")
    p_exp = _price(export_price_eur_per_kwh, "export_price_eur_per_kwh")
    result = clear_double_auction(orders, solver="merit_order")
    bought, sold, grid_import, grid_export = _split(orders, result)
    price = result.price_eur_per_kwh
    pool_price = 0.0 if price is None else price
    cost = {
        m: pool_price * (bought[m] - sold[m]) + p_imp * grid_import[m] - p_exp * grid_export[m] for m in bought
    }
    return PoolResult(
        price_eur_per_kwh=price,
        volume_kwh=float(result.volume_kwh),
        bought_kwh=bought,
        sold_kwh=sold,
        grid_import_kwh=grid_import,
        grid_export_kwh=grid_export,
        cost_eur=cost,
        lec_net_kwh=float(sum(grid_import.values()) - sum(grid_export.values())),
    )


# --- fairness and caps -----------------------------------------------------------------------


def member_caps_and_fees(
    previous_import_kwh: Mapping[str, float],
    members: Sequence[str],
    *,
    lec_import_limit_kw: float,
    fairness_fee_eur_per_kwh: float,
    cap_floor_kw: float = 0.0,
) -> dict[str, tuple[float, float]]:
    """Import caps and fairness fees the LEC EMS sets for the next period.

    The rule:

    * **Caps.** The LEC's import limit is shared equally: every member's import cap is
      ``max(lec_import_limit_kw / len(members), cap_floor_kw)`` (``inf`` when the LEC has no limit).
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
    largest = max(previous.values())
    tol = _REL_TOL * max(1.0, largest)
    payers = {m for m, kwh in previous.items() if largest > 0 and kwh >= largest - tol}
    return {m: (cap, fee if m in payers else 0.0) for m in members}


# --- the inter-LEC platform ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PlatformResult:
    """Outcome of the inter-LEC platform for one period. Per-LEC dicts are keyed by LEC name.

    Attributes
    ----------
    price_eur_per_kwh : float or None
        The platform's uniform price, ``None`` when nothing trades.
    volume_kwh : float
        Energy traded between LECs, kWh.
    bought_kwh, sold_kwh : dict of str to float
        Energy each LEC bought from / sold to other LECs on the platform, kWh.
    grid_import_kwh, grid_export_kwh : dict of str to float
        The unmatched rest of each LEC's need / surplus, exchanged with the upstream grid, kWh.
    payment_eur : dict of str to float
        Paid to the platform: price x (bought - sold), EUR (negative: received). Sums to zero.
    wheeling_eur : dict of str to float
        Wheeling fee x sold: what each selling LEC owes the network operator for the energy it
        delivered over the grid, EUR. Outside the platform's budget (not in ``payment_eur``).
    """

    price_eur_per_kwh: float | None
    volume_kwh: float
    bought_kwh: dict[str, float]
    sold_kwh: dict[str, float]
    grid_import_kwh: dict[str, float]
    grid_export_kwh: dict[str, float]
    payment_eur: dict[str, float]
    wheeling_eur: dict[str, float]


def clear_platform(
    positions_kwh: Mapping[str, float],
    *,
    import_price_eur_per_kwh: float,
    export_price_eur_per_kwh: float,
    wheeling_fee_eur_per_kwh: float = 0.0,
) -> PlatformResult:
    """Clear the inter-LEC platform for one period (merit-order double auction).

    Every LEC in ``positions_kwh`` with a need bids for it at the import price; every LEC with a
    surplus offers it at the export price + the wheeling fee. The wheeling fee is thus carried by
    the sellers: their offer includes it, so any clearing price covers it (price >= export +
    wheeling), and a seller's income net of the fee is never below what the grid would pay. The
    buyers pay the uniform price only; platform payments are energy at the uniform price and sum
    to zero across the LECs. The fee itself is reported as ``wheeling_eur`` of the sellers. If
    export + wheeling exceeds the import price, nothing trades.

    The price is the import price when need exceeds surplus, export + wheeling when surplus
    exceeds need, and their midpoint when the two are equal (module docstring).

    Parameters
    ----------
    positions_kwh : mapping of str to float
        Every participating LEC's residual of the period, kWh (positive: needs energy, negative:
        surplus, 0: on the platform without an order). An LEC not in the mapping is not on the
        platform and does not appear in the result.
    import_price_eur_per_kwh, export_price_eur_per_kwh : float
        The upstream grid's prices, EUR/kWh.
    wheeling_fee_eur_per_kwh : float
        Network charge per kWh traded between LECs, >= 0.

    Returns
    -------
    PlatformResult
    """
    fee = _nonnegative(wheeling_fee_eur_per_kwh, "wheeling_fee_eur_per_kwh")
    p_exp = _price(export_price_eur_per_kwh, "export_price_eur_per_kwh")
    orders = member_orders(
        positions_kwh, import_price_eur_per_kwh=import_price_eur_per_kwh, export_price_eur_per_kwh=p_exp + fee
    )
    result = clear_double_auction(orders, solver="merit_order")
    bought, sold, grid_import, grid_export = _split(orders, result)
    zero = dict.fromkeys(positions_kwh, 0.0)
    bought, sold = {**zero, **bought}, {**zero, **sold}
    grid_import, grid_export = {**zero, **grid_import}, {**zero, **grid_export}
    price = result.price_eur_per_kwh
    platform_price = 0.0 if price is None else price
    return PlatformResult(
        price_eur_per_kwh=price,
        volume_kwh=float(result.volume_kwh),
        bought_kwh=bought,
        sold_kwh=sold,
        grid_import_kwh=grid_import,
        grid_export_kwh=grid_export,
        payment_eur={lec: platform_price * (bought[lec] - sold[lec]) for lec in zero},
        wheeling_eur={lec: fee * sold[lec] for lec in zero},
    )
