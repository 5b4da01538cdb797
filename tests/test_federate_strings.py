"""A federate's string reads (federates.common._input_string, behind json_value) over a real broker: the same
text as helics-python's own getter, for values of many sizes (the getter's cffi type per size is what it avoids)."""

from __future__ import annotations

import json
import subprocess

import helics as h
from harness import TestFederate, enter_all

from lec_cosim.federation import broker_command
from lec_cosim.ports import free_broker_port


def test_json_values_of_many_sizes_read_as_helics_python_reads_them():
    port = free_broker_port()
    broker = subprocess.Popen(broker_command(port, 2), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sender = reader = None
    try:
        sender = TestFederate("sender", port, period=1.0, offset=0.0, publications=[("strings/record", "string")])
        reader = TestFederate("reader", port, period=1.0, offset=0.0, subscriptions=[("strings/record", "string")])
        enter_all(sender, reader)
        before = h.helicsInputGetString(reader.subs["strings/record"])  # nothing published yet: HELICS's default
        assert reader.json_value("strings/record") == (json.loads(before) if before else None)
        for step, size in enumerate([1, 7, 1023, 1024, 1025, 5000, 70_000, 3], start=1):
            payload = {"step": step, "text": "é" * size, "values": [0.1 * k for k in range(size % 50)]}
            sender.publish_json("strings/record", payload)
            sender.request(step)
            reader.request(step)
            sender.granted()
            reader.granted()
            assert reader.json_value("strings/record") == payload
            assert h.helicsInputGetString(reader.subs["strings/record"]) == json.dumps(payload)
    finally:
        for fed in (sender, reader):
            if fed is not None:
                h.helicsFederateDisconnect(fed.fed)
        for fed in (sender, reader):
            if fed is not None:
                fed.close()
        broker.wait(timeout=30)
