"""Who exchanges with whom: a custom HELICS query ``"exchanges"`` every federate can answer.

The broker's ``data_flow_graph`` query lists value links (publications -> inputs) but not the
messages sent between endpoints. A federate that keeps an :class:`ExchangeLog` (counting what
it sends) and calls :func:`answer_queries` answers the query ``"exchanges"`` with that log as
JSON; :func:`query_exchanges` asks the federates of a running federation from any federate of
it, and :func:`message_graph` turns the replies into federate -> federate message counts.

When the query is answered (measured with HELICS 3.6.1, zmq cores; ``tests/test_topology_query.py``
checks every case but the first, for federates on cores of their own and on one shared core):

- startup (created, not yet in initializing mode), and initializing mode: answered.
- executing mode, between time requests: answered in this test; but in a federation run a
  federate granted its last time and then idle in Python (``threading.Event.wait``) did not
  answer (HELICS' 504 "query timeout"), so ``federates.common.Federate.stay_for_query`` keeps
  calling ``helicsFederateProcessCommunications`` while it waits.
- executing mode, while the queried federate waits in a time request for a grant the querying
  federate holds back (it has not requested time yet): answered, and the wait goes on. So the
  querying federate may ask while all the others wait for it.
- after the queried federate has finalized (``helicsFederateDisconnect``): on a core of its own
  (the case between processes) HELICS answers for it with its error JSON (``{"error": {"code":
  503, "message": "federate is disconnected"}}``), which :func:`query_exchanges` raises as
  :class:`QueryError` naming the federate. Federates of one process share one core unless they
  name their own (``coreName``); there a finalized federate still answers while the core lives on.

The callback runs on whatever thread HELICS answers on: for a federate on a core of its own, a
HELICS internal thread (never the federate's or the querying thread: measured in the test); for
federates sharing the querying federate's core, possibly the querying thread itself. So not
necessarily the thread that calls ``record``. :class:`ExchangeLog` therefore guards its counts with a lock and the
answer is a snapshot taken under it. A cffi callback must outlive its registration (a collected
callback crashes the process): :func:`answer_queries` keeps it in a module dict, keyed by the
federate handle, until :func:`stop_answering`.

Queries other than ``"exchanges"`` are left unanswered by the callback, so HELICS answers its
own queries (``"state"``, ``"endpoints"``, ...) as usual and unknown ones with its error JSON.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Iterable

import helics as h
from helics.capi import ffi, lib

QUERY = "exchanges"


class QueryError(RuntimeError):
    """A federate did not answer the ``"exchanges"`` query (HELICS replied with an error)."""


class ExchangeLog:
    """Messages a federate sent, per (source endpoint, destination endpoint), and its interfaces.

    ``record`` may be called from the federate's thread while HELICS calls :meth:`as_dict`
    from one of its own threads; both take the lock.
    """

    def __init__(self, federate: str, *, endpoints: Iterable[str] = (),
                 publications: Iterable[str] = (), subscriptions: Iterable[str] = ()):
        self.federate = federate
        self.endpoints = tuple(endpoints)
        self.publications = tuple(publications)
        self.subscriptions = tuple(subscriptions)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self.answered = threading.Event()
        """Set once this log has answered an ``exchanges`` query."""

    def record(self, source: str, destination: str, n: int = 1) -> None:
        """Count ``n`` messages sent from endpoint ``source`` to endpoint ``destination``."""
        if n < 0:
            raise ValueError(f"negative message count {n} for {source} -> {destination}")
        with self._lock:
            self._counts[(source, destination)] += n

    def as_dict(self) -> dict:
        with self._lock:
            counts = sorted(self._counts.items())
        return {
            "federate": self.federate,
            "endpoints": list(self.endpoints),
            "messages": [{"source": s, "destination": d, "count": n} for (s, d), n in counts],
            "publications": list(self.publications),
            "subscriptions": list(self.subscriptions),
        }


# cffi callbacks (and the log they answer from) by federate handle address: kept alive while registered.
_ANSWERERS: dict[int, tuple[object, ExchangeLog]] = {}
_ANSWERERS_LOCK = threading.Lock()
_CALLBACK_TYPE = ffi.typeof(lib.helicsFederateSetQueryCallback).args[1]  # void(*)(char*, int, void*, void*)


def _raw(fed):
    """The C handle of a helics Python federate object (or a raw handle passed as is)."""
    return getattr(fed, "handle", fed)


def _key(raw) -> int:
    return int(ffi.cast("uintptr_t", raw))


def _check(err, what: str) -> None:
    if err.error_code != 0:
        raise h.HelicsException(f"[{err.error_code}] {what}: {ffi.string(err.message).decode()}")


def answer_queries(fed, log: ExchangeLog) -> None:
    """Make federate ``fed`` answer the query ``"exchanges"`` with ``json.dumps(log.as_dict())``.

    ``fed`` is a helics federate as returned by ``helicsCreate*Federate*`` (or its raw handle).
    The answer is built at the time of each query. Registering again replaces the callback.
    """

    def on_query(query, size, buffer, _user_data):
        try:
            if ffi.unpack(query, size) != QUERY.encode():
                return  # unanswered: HELICS answers its own queries, or with its error JSON
            answer = json.dumps(log.as_dict()).encode("utf-8")
            err = h.helicsErrorInitialize()
            lib.helicsQueryBufferFill(buffer, answer, len(answer), err)
            log.answered.set()
        except BaseException:  # never let an exception cross into HELICS; leave it unanswered
            return

    callback = ffi.callback(_CALLBACK_TYPE, on_query)
    raw = _raw(fed)
    err = h.helicsErrorInitialize()
    with _ANSWERERS_LOCK:
        lib.helicsFederateSetQueryCallback(raw, callback, ffi.NULL, err)
        _check(err, "helicsFederateSetQueryCallback")
        # the previous callback (if any) stays referenced until HELICS holds the new one
        _ANSWERERS[_key(raw)] = (callback, log)


def stop_answering(fed) -> None:
    """Forget the callback of ``fed``; only once ``fed`` is finalized (HELICS may still call it)."""
    with _ANSWERERS_LOCK:
        _ANSWERERS.pop(_key(_raw(fed)), None)


def query_exchanges(querying_fed, federate_names: Iterable[str]) -> dict[str, dict]:
    """Ask each named federate ``"exchanges"`` through ``querying_fed``; replies by federate name.

    Raises :class:`QueryError` naming the federate when its reply is not an exchange log
    (HELICS' error JSON: federate unknown, finalized, or not answering the query).
    """
    replies = {}
    for name in federate_names:
        query = h.helicsCreateQuery(name, QUERY)
        try:
            err = h.helicsErrorInitialize()
            raw = lib.helicsQueryExecute(query.handle, _raw(querying_fed), err)
            _check(err, f"query {QUERY!r} of federate {name!r}")
            text = ffi.string(raw).decode("utf-8")
        finally:
            h.helicsQueryFree(query)
        try:
            reply = json.loads(text)
        except json.JSONDecodeError:
            raise QueryError(f"federate {name!r} answered {QUERY!r} with non-JSON: {text!r}") from None
        if not isinstance(reply, dict) or "error" in reply or reply.get("federate") != name:
            raise QueryError(f"federate {name!r} did not answer {QUERY!r}: {text}")
        replies[name] = reply
    return replies


def message_graph(replies: dict[str, dict]) -> list[tuple[str, str, int]]:
    """Sorted ``(source federate, destination federate, count)`` from :func:`query_exchanges` replies.

    Endpoints are mapped to the federate whose reply lists them; counts over several endpoint
    pairs of the same two federates are summed. An endpoint no reply lists raises ``ValueError``.
    """
    owner: dict[str, str] = {}
    for name, reply in replies.items():
        for endpoint in reply["endpoints"]:
            if endpoint in owner and owner[endpoint] != name:
                raise ValueError(f"endpoint {endpoint!r} listed by both {owner[endpoint]!r} and {name!r}")
            owner[endpoint] = name

    def federate_of(endpoint: str, reply_of: str) -> str:
        try:
            return owner[endpoint]
        except KeyError:
            raise ValueError(f"endpoint {endpoint!r} (in the reply of {reply_of!r}) "
                             "belongs to no queried federate") from None

    links: Counter[tuple[str, str]] = Counter()
    for name, reply in replies.items():
        for m in reply["messages"]:
            links[(federate_of(m["source"], name), federate_of(m["destination"], name))] += m["count"]
    return sorted((s, d, n) for (s, d), n in links.items() if n)
