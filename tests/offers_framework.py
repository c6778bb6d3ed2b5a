"""A framework process for offer tests and bench/offers.py: it subscribes through
tests/mesos_driver.py (Mesos' wire protocol, no corral code), follows one simple
policy on every offer, and writes what happened as JSON lines to --out:

    python -m tests.offers_framework URL --name N --role R --out FILE
        --cpus C --mem M --command CMD      each task's size and command
        --no-shell                          CMD run as an argv (CommandInfo.shell false),
                                            not by /bin/sh -c
        --tasks N                           launch at most N (0: no limit), then SUPPRESS
        --per-offer K                       at most K tasks per offer (0: all that fit);
                                            the rest goes back at once (refuse 0)
        --decline S                         decline every offer with refuse_seconds S
        --go FILE                           SUPPRESS until FILE exists, then REVIVE (so
                                            that frameworks compete from one moment, none
                                            held back by a filter from the wait)
        --exit-when-done                    TEARDOWN and exit once N tasks ended
        --max-offers N                      TEARDOWN and exit after N offers
        --failover-timeout S                the master keeps its tasks S seconds after
                                            its stream ends; it subscribes again with
                                            its id meanwhile, as pymesos does (a
                                            master that lost its leadership)

    records: {"t": monotonic, "event": subscribed|resubscribed|offer|accepted|declined|
              rescind|update|refused|done|error, ...}; written once per wake-up, not per event

It is as lean as a production framework (tests/mesos_driver.py): one thread, the
calls pipelined on keep-alive connections (the ACKNOWLEDGEs of the updates one
read brought go out in one write), all of an agent's offers in one ACCEPT; yet a
real client of the API: every update with a uuid acknowledged, offers used as
offered. accepted is recorded when the call is answered (code, call_ms; sent: when
it was made), declined when sent; refused: a call not answered 202 (code 0: no
answer, the connection ended).

Times are time.monotonic(), one clock for every process on the machine, so a test
or the bench can line records of several frameworks up.
"""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

# Only what the framework needs (no httpx: its import alone costs the process more
# than a hundred tasks' calls); tests/cluster.py is imported where a test stops one.
from tests.mesos_driver import Answer, Driver, SubscribeError, launch, task_info

Obj = dict[str, Any]
TERMINAL = frozenset({"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
                      "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNREACHABLE"})


def scalar(offers: list[Obj], name: str) -> float:
    return sum(float(r["scalar"]["value"]) for offer in offers
               for r in offer.get("resources", ())
               if r.get("name") == name and r.get("type") == "SCALAR")


class Policy:
    """What the framework does with each event: one thread, no call waited for
    (the driver pipelines them; their answers come back to ``answered``)."""

    def __init__(self, driver: Driver, args: argparse.Namespace, out: IO[bytes]) -> None:
        self.driver = driver
        self.args = args
        self.out = out
        self.lines: list[bytes] = []  # records not written yet (one write per wake-up)
        self.launched = 0
        self.ended = 0
        self.suppressed = False
        self.going = not args.go
        self.offers = 0
        self.started = time.monotonic()
        self.calls: dict[str, tuple[int, float]] = {}  # kind → (count, total ms)

    def record(self, event: str, **fields: Any) -> None:
        self.lines.append(orjson.dumps({"t": time.monotonic(), "event": event, **fields}))

    def flush(self) -> None:
        if self.lines:
            self.lines.append(b"")
            self.out.write(b"\n".join(self.lines))
            self.out.flush()
            self.lines = []

    def answered(self, answers: list[Answer]) -> None:
        """Each call's latency counted per kind (the bench reports where time goes)."""
        now = time.monotonic()
        for a in answers:
            count, total = self.calls.get(a.kind, (0, 0.0))
            self.calls[a.kind] = (count + 1, total + 1000 * (now - a.sent))
            if a.tag is not None:  # an ACCEPT: the bench reads its latency
                self.record("accepted", **a.tag, code=a.code, call_ms=1000 * (now - a.sent))
            if a.code != 202:
                self.record("refused", kind=a.kind, code=a.code, body=a.body.decode(
                    errors="replace")[:500])
                if a.kind == "SUPPRESS":
                    self.suppressed = False
                elif a.kind == "REVIVE":
                    self.going = False  # --go's REVIVE again

    def on_event(self, evt: Obj) -> None:
        kind = evt["type"]
        if kind == "OFFERS":
            self.on_offers(evt["offers"].get("offers", []))
        elif kind == "UPDATE":
            self.on_update(evt["update"]["status"])
        elif kind == "RESCIND":
            self.record("rescind", offer=evt["rescind"]["offer_id"]["value"])
        elif kind in ("ERROR", "FAILURE"):
            self.record("error", message=orjson.dumps(evt).decode())

    def room(self, offers: list[Obj]) -> int:
        """How many tasks to launch on these offers (of one agent)."""
        a = self.args
        fit = min(math.floor(scalar(offers, "cpus") / a.cpus + 1e-9),
                  math.floor(scalar(offers, "mem") / a.mem + 1e-9))
        if a.per_offer:
            fit = min(fit, a.per_offer)
        if a.tasks:
            fit = min(fit, a.tasks - self.launched)
        return max(fit, 0)

    def on_offers(self, offers: list[Obj]) -> None:
        for held in _by_agent(offers):
            self.offers += len(held)
            for offer in held:
                self.record("offer", offer=offer["id"]["value"], node=offer.get("hostname", ""),
                            cpus=scalar([offer], "cpus"), mem=scalar([offer], "mem"))
            a = self.args
            if a.decline is not None:
                self.decline(held, a.decline)
            elif not self.going:  # sent before the SUPPRESS took: no filter
                self.decline(held, 0)
            elif (count := self.room(held)) == 0:
                # Too small for a task: Mesos' default filter, which lapses as soon
                # as the node has more than this offer held.
                self.decline(held, 5 if not a.tasks or self.launched < a.tasks else 3600)
            else:
                self.accept(held, count)
        if self.args.tasks and self.launched >= self.args.tasks and not self.suppressed:
            self.suppressed = True
            self.driver.call("SUPPRESS")

    def wait_for_go(self) -> float:
        """How long the next wait for an event may be: short while --go's file is
        awaited (SUPPRESSed), and REVIVE once it is there."""
        if self.going:
            return 3600.0
        if not Path(self.args.go).exists():
            return 0.01
        self.driver.call("REVIVE")
        self.going = True
        return 3600.0

    def decline(self, offers: list[Obj], refuse: float) -> None:
        for offer in offers:  # one record each: the bench's round trips are per offer
            self.driver.call("DECLINE", decline={"offer_ids": [offer["id"]],
                                                 "filters": {"refuse_seconds": refuse}})
            # When sent, not answered: the node's next offer may come before the answer.
            self.record("declined", offer=offer["id"]["value"], node=offer.get("hostname", ""),
                        refuse=refuse, sent=time.monotonic())

    def accept(self, offers: list[Obj], count: int) -> None:
        """All of one agent's offers held, in one ACCEPT launching ``count`` tasks."""
        a = self.args
        agent = offers[0]["agent_id"]["value"]
        tasks = [task_info(f"{a.name}-{self.launched + i}", agent, a.command, a.cpus, a.mem,
                           shell=not a.no_shell)
                 for i in range(count)]
        self.launched += count
        self.driver.call("ACCEPT", {"offer": offers[0]["id"]["value"],
                                    "node": offers[0].get("hostname", ""), "tasks": count,
                                    "first": tasks[0]["task_id"]["value"],
                                    "sent": time.monotonic()},
                         accept={"offer_ids": [o["id"] for o in offers],
                                 "operations": [launch(*tasks)],
                                 "filters": {"refuse_seconds": 0}})

    def on_update(self, st: Obj) -> None:
        state = st["state"]
        self.record("update", task=st["task_id"]["value"], state=state,
                    reason=st.get("reason", ""), message=st.get("message", ""))
        if "uuid" in st:
            self.driver.call("ACKNOWLEDGE", acknowledge={
                "agent_id": st["agent_id"], "task_id": st["task_id"], "uuid": st["uuid"]})
        if state in TERMINAL:
            self.ended += 1

    def done(self) -> bool:
        if self.args.max_offers and self.offers >= self.args.max_offers:
            return True
        return bool(self.args.exit_when_done and self.args.tasks
                    and self.ended >= self.args.tasks)


def _by_agent(offers: list[Obj]) -> Iterator[list[Obj]]:
    """Offers grouped by agent, in the order they came (one ACCEPT may use all of
    an agent's offers, never two agents')."""
    groups: dict[str, list[Obj]] = {}
    for offer in offers:
        groups.setdefault(offer["agent_id"]["value"], []).append(offer)
    yield from groups.values()


def _subscribe_again(driver: Driver, within: float) -> bool:
    """SUBSCRIBE with the framework's id until a master takes it, for ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            driver.subscribe()
            return True
        except SubscribeError:
            time.sleep(0.5)
    return False


def framework_info(args: argparse.Namespace) -> Obj:
    # No user: its tasks run as the nodes' unprivileged pod user.
    info: Obj = {"name": args.name, "user": "", "roles": [args.role],
                 "capabilities": [{"type": "MULTI_ROLE"}]}
    if args.failover_timeout:
        info["failover_timeout"] = args.failover_timeout
    return info


def run(args: argparse.Namespace) -> int:
    driver = Driver(args.url, framework_info(args))
    with open(args.out, "ab") as out:
        policy = Policy(driver, args, out)
        try:
            driver.subscribe()
        except SubscribeError as err:
            policy.record("error", message=str(err))
            policy.flush()
            return 1
        if args.go:
            driver.call("SUPPRESS")
        policy.record("subscribed", id=driver.id)
        while not policy.done():
            policy.flush()
            events, answers = driver.poll(policy.wait_for_go())
            policy.answered(answers)
            for evt in events:
                policy.on_event(evt)
            if driver.ended and not policy.done():
                if not _subscribe_again(driver, args.failover_timeout):
                    policy.record("error", message="the event stream ended")
                    policy.flush()
                    return 1
                policy.record("resubscribed", id=driver.id)
        elapsed = time.monotonic() - policy.started
        policy.answered(driver.drain(30))
        policy.record("done", elapsed=elapsed, tasks=policy.ended, calls=policy.calls)
        policy.flush()
        driver.call("TEARDOWN")
        driver.drain(30)
        driver.close()
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("--name", required=True)
    p.add_argument("--role", default="*")
    p.add_argument("--out", required=True)
    p.add_argument("--cpus", type=float, default=0.1)
    p.add_argument("--mem", type=float, default=32.0)
    p.add_argument("--command", default="sleep 3600")
    p.add_argument("--no-shell", action="store_true")
    p.add_argument("--tasks", type=int, default=0)
    p.add_argument("--per-offer", type=int, default=0)
    p.add_argument("--decline", type=float, default=None)
    p.add_argument("--go", default="")
    p.add_argument("--exit-when-done", action="store_true")
    p.add_argument("--max-offers", type=int, default=0)
    p.add_argument("--failover-timeout", type=float, default=0.0)
    return p.parse_args(argv)


class FrameworkProcess:
    """One framework process started by a test or the bench; stopped by its PID."""

    def __init__(self, url: str, out: Path, name: str, *args: str) -> None:
        self.out = out
        self.name = name
        out.touch()
        with open(out.with_suffix(".err"), "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.offers_framework", url, "--name", name,
                 "--out", str(out), *args], cwd=Path(__file__).resolve().parent.parent,
                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)

    def records(self, event: str | None = None) -> list[Obj]:
        lines = self.out.read_text().splitlines()
        found = [orjson.loads(line) for line in lines if line.endswith("}")]
        return [r for r in found if event is None or r["event"] == event]

    def running(self) -> set[str]:
        """Tasks whose latest update is TASK_RUNNING."""
        latest: dict[str, str] = {}
        for r in self.records("update"):
            latest[r["task"]] = r["state"]
        return {task for task, state in latest.items() if state == "TASK_RUNNING"}

    def errors(self) -> str:
        return self.out.with_suffix(".err").read_text(errors="replace")[-4000:]

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        from tests.cluster import stop_process  # not in the framework process itself

        stop_process(self.proc)


def main() -> None:
    # SIGTERM ends the process at once; the master removes the framework when its
    # stream ends (failover_timeout 0) and kills what it still runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(run(parse(sys.argv[1:])))


if __name__ == "__main__":
    main()
