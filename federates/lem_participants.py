"""Participant federate: a group of LEM players (households and CHPs) of the IEEE European LV feeder.

Each player has its own endpoint (the endpoint port of the player's name), or all share the group's
(the endpoint port ``group``: one order message and one result for all). At the start of each
hour (+ settings ``order_offset_s``) it sends its orders to the target ``orders``; at
``dispatch_offset_s`` it reads its result, settles the hour and, at every grid step, publishes the
group's injections (settings ``physical_vectors``) and settlement (``settlement_vectors``) on the
output ports of those names, ``block_steps`` grid steps per publication. With settings
``periods_per_exchange`` P > 1 (a day's hours) the orders of P periods travel in one message per player
(or group) at the first period's order slot, their results in one answer, and the settlement vectors hold
the P periods' values (period-major), published with the exchange's first block. Without a LEM (the base
cases) it only settles with the grid. A player named in settings ``agent_players`` bids what an agent
decided (input port ``{player}.action``) instead of its rule or strategy: a CHP its offer (price, quantity),
a household its bid or offer for its net position of the hour (price, the share of the position).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from federates.common import Federate, main
from lec_cosim.models.lem_community import (
    community_from_scenario,
    period_orders,
    read_learned_bids,
    settle_members,
    truthful_bids,
)
from lec_cosim.models.lem_orders import (
    agent_chp_orders,
    agent_household_orders,
    household_orders,
)


def build(fed: Federate):
    s = fed.scenario
    community = community_from_scenario(s)
    members = list(fed.options.participants)
    position = {name: i for i, name in enumerate(community.names)}  # (names is a list built at each call)
    idx = [position[m] for m in members]
    kinds = community.kinds[idx]
    chp_cap = community.chp_kw[idx]
    load_kw, load_kvar, pv_kw = community.load_kw[idx], community.load_kvar[idx], community.pv_kw[idx]
    load_kwh, pv_kwh = community.load_kwh[idx], community.pv_kwh[idx]
    lem = s.market.enabled
    scheme = s.market.tariff_scheme
    b = community.b_eur_per_kwh
    bids = {}
    if lem:
        bids = (read_learned_bids(s.market.learned_bids_file, community, scheme)
                if s.market.chp_strategy == "aco"
                else truthful_bids(community))
    steps_per_period = community.steps_per_period
    options = fed.options
    block = options.block_steps  # grid steps per publication
    physical_vectors, settlement_vectors = list(options.physical_vectors), list(options.settlement_vectors)
    order_offset_s, dispatch_offset_s = options.order_offset_s, options.dispatch_offset_s
    shared = fed.endpoint("group") if "group" in fed.ports.get("endpoints", {}) else None
    endpoint = {} if shared else {name: fed.endpoint(name) for name in members}  # each player's own
    market = fed.target("orders") if lem else None
    period_s = s.market_step_s
    n_periods = community.n_periods
    played = set(options.agent_players)  # their offers come from the agent proxy

    # the households that follow their rule bid all at once (lem_orders.household_orders)
    ruled = [j for j, name in enumerate(members) if kinds[j] != "chp" and name not in played]
    ruled_names, ruled_kinds = [members[j] for j in ruled], kinds[ruled]

    periods = options.periods_per_exchange  # market periods whose orders travel together

    def orders_of(period: int) -> dict[str, list]:
        """Each player's orders of ``period`` (:class:`~lec_cosim.models.auction.Order`)."""
        hour = period % 24
        book = {}
        by_rule = dict(zip(ruled_names, household_orders(ruled_names, ruled_kinds, load_kwh[ruled, period],
                                                         pv_kwh[ruled, period], hour, scheme)))
        for j, name in enumerate(members):
            if name in by_rule:
                orders = by_rule[name]
            elif name in played:
                if not fed.port_updated(f"{name}.action"):
                    raise RuntimeError(f"{name}: no offer from its agent for hour {period}")
                price, amount = fed.read_port(f"{name}.action")  # a CHP's quantity (kWh), a household's share
                orders = (agent_chp_orders(name, chp_cap[j], price, amount, b_eur_per_kwh=b) if kinds[j] == "chp"
                          else agent_household_orders(name, load_kwh[j, period], pv_kwh[j, period], price, amount))
            else:
                bid = bids[name][period] if kinds[j] == "chp" else None
                orders = period_orders(kinds[j], name, load_kwh[j, period], pv_kwh[j, period], chp_cap[j], hour,
                                       scheme, bid, b)
            book[name] = orders
        return book

    sides_sent: list[dict[str, list[str]]] = []  # a bundle's periods: each player's order sides, as sent

    def send_orders(first: int) -> None:
        """The orders of the exchange's periods from ``first``: one message per player (or one for the group)."""
        if periods == 1:
            book = {name: [{"side": o.side, "price_eur_per_kwh": o.price_eur_per_kwh, "quantity_kwh": o.quantity_kwh}
                           for o in orders] for name, orders in orders_of(first).items()}
            head = {"period": first}
        else:  # lean: [side, price, quantity] per order, a list per period (federates/lem_market.py)
            hours = list(range(first, first + periods))
            by_hour = [orders_of(period) for period in hours]
            sides_sent[:] = [{name: [o.side for o in orders] for name, orders in hour.items()} for hour in by_hour]
            book = {name: [[[o.side, o.price_eur_per_kwh, o.quantity_kwh] for o in hour[name]] for hour in by_hour]
                    for name in members}
            head = {"periods": hours}
        if shared:
            fed.send(shared, market, {**head, "participants": book})
        else:
            for name in members:
                fed.send(endpoint[name], market, {**head, "participant": name, "orders": book[name]})

    def answer_of(first: int, port: str, what: str) -> dict:
        """The exchange's one answer at ``port``: its periods' prices and its (or its players') results."""
        messages = fed.receive(port)
        hours = list(range(first, first + periods))
        if len(messages) == 1:
            answer = messages[0][1]
            if periods == 1 and answer.get("period") == first:
                return answer
            if periods > 1 and answer.get("periods") == hours:
                return answer
        hours_named = f"hour {first}" if periods == 1 else f"hours {first}-{hours[-1]}"
        raise RuntimeError(f"{what}: expected one market result for {hours_named}, got {len(messages)}")

    def traded(first: int) -> tuple[list, np.ndarray, np.ndarray]:
        """Each period's price and each player's bought and sold kWh (periods x players), from the answers."""
        answers = ({fed.name: answer_of(first, shared, fed.name)} if shared
                   else {name: answer_of(first, endpoint[name], name) for name in members})
        bought, sold = np.zeros((periods, len(members))), np.zeros((periods, len(members)))
        price = next(iter(answers.values()))["price_eur_per_kwh"]  # the same in every answer: a uniform-price pool
        prices = [price] if periods == 1 else list(price)
        for j, name in enumerate(members):
            answer = answers[fed.name if shared else name]
            mine = answer["results"].get(name) if shared else answer
            if mine is None:
                raise RuntimeError(f"{fed.name}: no market result for {name} in hour(s) from {first}")
            for h in range(periods):
                if periods == 1:  # the book's rows of its orders
                    rows = [(o["accepted_kwh"], o["side"]) for o in mine["orders"]]
                else:  # its accepted kWh per order, in the order it sent them
                    sides = sides_sent[h][name]
                    if len(mine["accepted_kwh"][h]) != len(sides):
                        raise RuntimeError(f"{name}: {len(mine['accepted_kwh'][h])} accepted quantities for "
                                           f"{len(sides)} orders in hour {first + h}")
                    rows = list(zip(mine["accepted_kwh"][h], sides))
                bought[h, j] = sum(a for a, side in rows if side == "buy")
                sold[h, j] = sum(a for a, side in rows if side == "sell")
        return prices, bought, sold

    def settle(first: int) -> None:
        """Read the exchange's results, settle its periods and publish the settlement (period-major)."""
        if lem:
            prices, bought, sold = traded(first)
        else:
            prices, bought, sold = [None] * periods, np.zeros((periods, len(members))), np.zeros((periods, len(members)))
        published = {v: [] for v in settlement_vectors}
        for h in range(periods):
            period = first + h
            st = settle_members(kinds, load_kwh[:, period], pv_kwh[:, period], chp_cap, hour=period % 24,
                                scheme=scheme, lem_enabled=lem, price_eur_per_kwh=prices[h], bought_kwh=bought[h],
                                sold_kwh=sold[h], b_eur_per_kwh=b)
            chp_kw_of[h] = st["chp_kwh"] / (period_s / 3600.0)
            for v in settlement_vectors:
                published[v].append(st[v])
        for v in settlement_vectors:
            fed.publish_port(v, published[v][0] if periods == 1 else np.concatenate(published[v]))

    def dispatch(step: int) -> None:
        first_step = step - step % (steps_per_period * periods)  # the exchange's first grid step
        if step == first_step:
            settle(step // steps_per_period)
        steps = slice(step, step + block)
        # each step's CHP output: that of its period (a block lies within one exchange)
        chp = chp_kw_of[(np.arange(step, step + block) - first_step) // steps_per_period]
        values = {"load_kw": load_kw[:, steps].T, "load_kvar": load_kvar[:, steps].T, "pv_kw": pv_kw[:, steps].T,
                  "chp_kw": chp}
        values["net_kw"] = values["load_kw"] - values["pv_kw"] - values["chp_kw"]
        for v in physical_vectors:
            fed.publish_port(v, values[v].ravel())  # step-major

    chp_kw_of = np.zeros((periods, len(members)))  # each period's CHP output of the exchange, kW
    slots = []
    for first in range(0, n_periods, periods):
        start = first * period_s
        if lem:
            slots.append((start + order_offset_s, lambda k, p=first: send_orders(p)))
        for j in range(0, steps_per_period * periods, block):
            n = first * steps_per_period + j
            slots.append((start + j * s.grid_step_s + dispatch_offset_s, lambda k, n=n: dispatch(n)))
    return SimpleNamespace(slots=slots)


if __name__ == "__main__":
    main(build, __doc__)
