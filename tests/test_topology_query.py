"""The "exchanges" query over a real broker: three federates exchange messages, a fourth asks.

A sends 3 messages to B, B then sends 2 to C; each counts what it sends in an ExchangeLog and
answers "exchanges". A querying federate Q, whose value A, B and C subscribe to (so they must
wait for it to be granted), asks all three in initializing mode, between time requests, and
while they wait in a time request for Q, then after A has finalized.

Run twice: each federate on its own core (the queries travel through the broker, as between
federate processes) and all four on the single core HELICS shares within a process.
"""

from __future__ import annotations

import json
import subprocess
import threading
from contextlib import contextmanager

import helics as h
import pytest

from federates.topology import (
    ExchangeLog,
    QueryError,
    answer_queries,
    message_graph,
    query_exchanges,
    stop_answering,
)
from lec_cosim.federation import LOOPBACK, broker_command, core_init_string, free_broker_port

NAMES = ("A", "B", "C")
CLOCK = "Q/clock"  # Q's value, subscribed by A, B and C: their grants wait for Q's
PRICE = "B/price"  # a value link B -> A, which is not a message link
IDLE = (h.HelicsFederateState.STARTUP, h.HelicsFederateState.INITIALIZATION, h.HelicsFederateState.EXECUTION)


def mail(name: str) -> str:
    return f"{name}/mail"


class ThreadRecordingLog(ExchangeLog):
    """An ExchangeLog that notes the threads HELICS builds its answers on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answer_threads: set[int] = set()

    def as_dict(self) -> dict:
        self.answer_threads.add(threading.get_ident())
        return super().as_dict()


@contextmanager
def federation(n_federates: int):
    """A helics_broker on a free port; yields ``(port, feds)``, ``feds`` a list to register federates in.

    On failure, a global error ends the federation (so nothing waits for a grant any more)
    before the federates are freed; the broker process is always ended.
    """
    port = free_broker_port()
    broker = subprocess.Popen(broker_command(port, n_federates),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    feds: list = []
    try:
        yield port, feds
        assert broker.wait(timeout=30) == 0
    except BaseException:
        # From a federate in no asynchronous call: a global error from one inside one blocks.
        idle = [f for f in feds if h.helicsFederateGetState(f) in IDLE]
        if idle and broker.poll() is None:
            h.helicsFederateGlobalError(idle[0], 1, "test failed")
        raise
    finally:
        for fed in feds:
            stop_answering(fed)
            h.helicsFederateFree(fed)
        if broker.poll() is None:
            broker.kill()
            broker.wait()


def create(name: str, port: int, separate_cores: bool, *, endpoints=(), publications=(), subscriptions=()):
    config = {
        "name": name,
        "coreType": "zmq",
        "coreInitString": core_init_string(LOOPBACK, port),
        "period": 1.0,
        "uninterruptible": True,
        "terminate_on_error": True,
        "publications": [{"key": k, "type": "double", "global": True} for k in publications],
        "subscriptions": [{"key": k, "type": "double"} for k in subscriptions],
        "endpoints": [{"name": e, "global": True} for e in endpoints],
    }
    if separate_cores:
        config["coreName"] = f"{name}_core_{port}"  # a named core of its own, not the process's shared one
    return h.helicsCreateCombinationFederateFromConfig(json.dumps(config))


def request_all(feds, t: float) -> None:
    for fed in feds:
        h.helicsFederateRequestTimeAsync(fed, t)


def complete_all(feds, t: float) -> None:
    for fed in feds:
        assert h.helicsFederateRequestTimeComplete(fed) == t


def wait_until_requested(querying, names, t: float, attempts: int = 5000) -> None:
    """Ask HELICS (``current_time``) until each named federate has requested ``t`` and not been granted it."""
    for name in names:
        for _ in range(attempts):
            query = h.helicsCreateQuery(name, "current_time")
            times = h.helicsQueryExecute(query, querying)
            h.helicsQueryFree(query)
            if times["requested_time"] == t:
                break
        else:
            raise AssertionError(f"{name} never requested {t}: {times}")
        assert times["granted_time"] < t, times


def send(fed, log: ExchangeLog, source: str, destination: str, n: int) -> None:
    endpoint = h.helicsFederateGetEndpoint(fed, source)
    for k in range(n):
        h.helicsEndpointSendBytesTo(endpoint, f"message {k}".encode(), destination)
        log.record(source, destination)


def received(fed, endpoint_name: str) -> list[str]:
    endpoint = h.helicsFederateGetEndpoint(fed, endpoint_name)
    sources = []
    while h.helicsEndpointHasMessage(endpoint):
        sources.append(h.helicsMessageGetSource(h.helicsEndpointGetMessage(endpoint)))
    return sources


@pytest.mark.parametrize("separate_cores", [True, False], ids=["core_per_federate", "shared_core"])
def test_querying_federate_reads_the_message_graph(separate_cores):
    with federation(4) as (port, feds):
        interfaces = {
            "A": {"endpoints": [mail("A")], "subscriptions": [CLOCK, PRICE]},
            "B": {"endpoints": [mail("B")], "subscriptions": [CLOCK], "publications": [PRICE]},
            "C": {"endpoints": [mail("C")], "subscriptions": [CLOCK]},
        }
        fed = {name: create(name, port, separate_cores, **interfaces[name]) for name in NAMES}
        fed["Q"] = create("Q", port, separate_cores, publications=[CLOCK])
        feds.extend(fed.values())
        log = {name: ThreadRecordingLog(name, **interfaces[name]) for name in NAMES}
        for name in NAMES:
            answer_queries(fed[name], log[name])
        q = fed["Q"]
        everyone = list(fed.values())
        others = [fed[name] for name in NAMES]

        # Initializing mode: answered, nothing sent yet.
        for f in everyone:
            h.helicsFederateEnterInitializingModeAsync(f)
        for f in everyone:
            h.helicsFederateEnterInitializingModeComplete(f)
        replies = query_exchanges(q, NAMES)
        assert replies["B"] == {"federate": "B", "endpoints": ["B/mail"], "messages": [],
                                "publications": [PRICE], "subscriptions": [CLOCK]}
        assert message_graph(replies) == []

        # HELICS' own queries still answered by HELICS; unknown ones with its error JSON.
        assert isinstance(h.helicsQueryExecute(h.helicsCreateQuery("A", "state"), q), str)
        assert h.helicsQueryExecute(h.helicsCreateQuery("A", "bogus"), q)["error"]["code"] == 400

        for f in everyone:
            h.helicsFederateEnterExecutingModeAsync(f)
        for f in everyone:
            h.helicsFederateEnterExecutingModeComplete(f)

        # Executing at t=0, between time requests: A sends 3 messages to B.
        send(fed["A"], log["A"], mail("A"), mail("B"), 3)
        assert message_graph(query_exchanges(q, NAMES)) == [("A", "B", 3)]

        h.helicsPublicationPublishDouble(h.helicsFederateGetPublication(q, CLOCK), 1.0)
        request_all(everyone, 1.0)
        complete_all(everyone, 1.0)
        assert received(fed["B"], mail("B")) == [mail("A")] * 3
        send(fed["B"], log["B"], mail("B"), mail("C"), 2)

        # A, B and C wait in a time request for 2, which Q (still at 1) holds back: still answered.
        request_all(others, 2.0)
        wait_until_requested(q, NAMES, 2.0)
        for name in NAMES:
            log[name].answer_threads.clear()
        replies = query_exchanges(q, NAMES)
        graph = message_graph(replies)
        assert graph == [("A", "B", 3), ("B", "C", 2)]
        assert not [link for link in graph if link[:2] == ("A", "C")]
        assert replies["A"]["messages"] == [{"source": "A/mail", "destination": "B/mail", "count": 3}]
        assert replies["C"]["messages"] == []
        assert all(log[name].answer_threads for name in NAMES)
        if separate_cores:  # answered on HELICS threads of the queried federates' cores
            assert all(threading.get_ident() not in log[name].answer_threads for name in NAMES)
        wait_until_requested(q, NAMES, 2.0)  # still waiting: the queries did not release them

        request_all([q], 2.0)
        complete_all(everyone, 2.0)
        assert received(fed["C"], mail("C")) == [mail("B")] * 2

        # A federate that has finalized: on its own core it no longer answers; on the shared
        # core, which lives on with the other federates, it still does.
        h.helicsFederateDisconnect(fed["A"])
        if separate_cores:
            with pytest.raises(QueryError, match="federate 'A' did not answer 'exchanges'"):
                query_exchanges(q, ["A"])
        else:
            assert query_exchanges(q, ["A"])["A"] == replies["A"]
        assert message_graph(query_exchanges(q, ["B", "C"])) == [("B", "C", 2)]
        with pytest.raises(QueryError, match="federate 'nobody'"):
            query_exchanges(q, ["nobody"])

        for f in (fed["B"], fed["C"], q):
            h.helicsFederateDisconnect(f)


def test_message_graph_sums_endpoint_pairs_per_federate_pair():
    a = ExchangeLog("A", endpoints=["A/bids", "A/mail"])
    b = ExchangeLog("B", endpoints=["B/mail"])
    a.record("A/bids", "B/mail", 2)
    a.record("A/mail", "B/mail")
    a.record("A/mail", "B/mail")
    b.record("B/mail", "A/bids", 0)  # a zero count makes no link
    replies = {"A": json.loads(json.dumps(a.as_dict())), "B": b.as_dict()}
    assert message_graph(replies) == [("A", "B", 4)]
    with pytest.raises(ValueError, match="'C/mail'.*'B'"):
        b.record("B/mail", "C/mail")
        message_graph({"A": a.as_dict(), "B": b.as_dict()})
