"""The lean scheduler client of the framework processes (tests/mesos_driver.py)
against a real master: pipelined calls are answered in order and each answer
finds its call, ACKNOWLEDGEs on their own connection; a connection that ends
under a call answers it with code 0 and the next call opens a new one;
SUBSCRIBE refused is a SubscribeError; re-subscribing keeps the framework's id.
RecordIO framing split across reads, as a stream delivers it."""

from __future__ import annotations

import time

import pytest

from tests.mesos_driver import Answer, Driver, RecordIO, SubscribeError

INFO = {"name": "lean", "user": ""}


def answers_for(driver: Driver, count: int, timeout: float = 30) -> list[Answer]:
    got: list[Answer] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += driver.poll(0.5)[1]
    return got


def test_recordio_records_split_anywhere_across_reads() -> None:
    stream = b"".join(b"%d\n%s" % (len(r), r) for r in (b'{"a":1}', b'{"type":"HEARTBEAT"}',
                                                        b'{"b":"x\\ny"}'))
    for cut in range(len(stream) + 1):
        records = RecordIO()
        assert records.feed(stream[:cut]) + records.feed(stream[cut:]) == [
            {"a": 1}, {"type": "HEARTBEAT"}, {"b": "x\ny"}]


def test_pipelined_calls_are_answered_in_order(url: str) -> None:
    driver = Driver(url, INFO)
    try:
        subscribed = driver.subscribe()
        assert subscribed["subscribed"]["framework_id"]["value"] == driver.id
        assert driver.stream_id
        # All queued before any is sent: they go out in one write per connection.
        driver.call("REVIVE", tag="revive")
        driver.call("KILL", tag="no body")  # 400: kill is missing
        driver.call("ACKNOWLEDGE", tag="bad uuid", acknowledge={
            "agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAAA"})
        driver.call("SUPPRESS", tag="suppress")
        driver.call("RECONCILE", tag="reconcile", reconcile={"tasks": []})
        got = {a.tag: a for a in answers_for(driver, 5)}
        assert {t: (a.kind, a.code) for t, a in got.items()} == {
            "revive": ("REVIVE", 202), "no body": ("KILL", 400),
            "bad uuid": ("ACKNOWLEDGE", 400), "suppress": ("SUPPRESS", 202),
            "reconcile": ("RECONCILE", 202)}
        assert b"'kill'" in got["no body"].body and b"UUID" in got["bad uuid"].body
    finally:
        driver.close()


def test_lost_connection_answers_code_0_and_the_next_call_reconnects(url: str) -> None:
    driver = Driver(url, INFO)
    try:
        driver.subscribe()
        driver.call("REVIVE")
        assert [a.code for a in answers_for(driver, 1)] == [202]
        driver.call("REVIVE", tag="lost")
        calls = driver._calls  # the calls connection, ended under the call
        # Sent on the open connection (not poll(0): the master answers a REVIVE
        # within the poll's own read, and the answer would be in) ...
        assert calls.send() == [] and calls.sock is not None and not calls.out
        lost = calls.close()  # ... which ends before the answer is read
        assert [(a.tag, a.code) for a in lost] == [("lost", 0)]
        driver.call("REVIVE", tag="again")
        assert [(a.tag, a.code) for a in answers_for(driver, 1)] == [("again", 202)]
    finally:
        driver.close()


def test_subscribe_refused_and_resubscribed(url: str) -> None:
    refused = Driver(url.replace("@", "x@", 1), INFO)  # a wrong secret
    with pytest.raises(SubscribeError) as err:
        refused.subscribe()
    assert err.value.code == 401
    refused.close()
    driver = Driver(url, {**INFO, "failover_timeout": 60})
    try:
        driver.subscribe()
        first_id, first_stream = driver.id, driver.stream_id
        driver.subscribe()  # the old stream fails over to the new one
        assert driver.id == first_id and driver.stream_id != first_stream
        driver.call("TEARDOWN")
        assert [a.code for a in driver.drain(30)] == [202]
        deadline = time.monotonic() + 30
        while not driver.ended and time.monotonic() < deadline:
            driver.poll(0.5)
        assert driver.ended  # TEARDOWN ends the stream
    finally:
        driver.close()
