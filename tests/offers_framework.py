"""A framework process for offer tests and bench/offers.py: it subscribes through
tests/mesos_client.py (Mesos' wire protocol, no corral code), follows one simple
policy on every offer, and writes what happened as JSON lines to --out:

    python -m tests.offers_framework URL --name N --role R --out FILE
        --cpus C --mem M --command CMD      each task's size and command
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
              rescind|update|done|error, ...}

Times are time.monotonic(), one clock for every process on the machine, so a test
or the bench can line records of several frameworks up.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx

from tests.cluster import stop_process
from tests.mesos_client import Framework, launch, task_info

Obj = dict[str, Any]
TERMINAL = frozenset({"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
                      "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNREACHABLE"})


def scalar(offer: Obj, name: str) -> float:
    return sum(float(r["scalar"]["value"]) for r in offer.get("resources", ())
               if r.get("name") == name and r.get("type") == "SCALAR")


class Policy:
    def __init__(self, fw: Framework, args: argparse.Namespace, out: IO[str]) -> None:
        self.fw = fw
        self.args = args
        self.out = out
        self.launched = 0
        self.ended = 0
        self.suppressed = False
        self.going = not args.go
        self.offers = 0
        self.started = time.monotonic()
        self.calls: dict[str, tuple[int, float]] = {}  # kind → (count, total ms)
        self.lock = threading.Lock()
        # ACCEPT and ACKNOWLEDGE go out from here, so that reading events never
        # waits for a call's answer (a framework that blocks on each is its own
        # bottleneck, not the master's); ACCEPTs on their own, never queued behind
        # the acknowledgements (three per task: STARTING, RUNNING, how it ended).
        self.sender = ThreadPoolExecutor(max_workers=8, thread_name_prefix="acks")
        self.acceptor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="accepts")

    def call(self, kind: str, **body: Any) -> int:
        """One call, its latency counted per kind (the bench reports where time goes)."""
        sent = time.monotonic()
        code = self.fw.call(kind, **body).status_code
        with self.lock:
            count, total = self.calls.get(kind, (0, 0.0))
            self.calls[kind] = (count + 1, total + 1000 * (time.monotonic() - sent))
        return code

    def record(self, event: str, **fields: Any) -> None:
        line = json.dumps({"t": time.monotonic(), "event": event, **fields}) + "\n"
        with self.lock:
            self.out.write(line)
            self.out.flush()

    def room(self, offer: Obj) -> int:
        """How many tasks to launch on this offer."""
        a = self.args
        fit = min(math.floor(scalar(offer, "cpus") / a.cpus + 1e-9),
                  math.floor(scalar(offer, "mem") / a.mem + 1e-9))
        if a.per_offer:
            fit = min(fit, a.per_offer)
        if a.tasks:
            fit = min(fit, a.tasks - self.launched)
        return max(fit, 0)

    def on_offers(self, offers: list[Obj]) -> None:
        for offer in offers:
            self.offers += 1
            oid, node = offer["id"]["value"], offer.get("hostname", "")
            self.record("offer", offer=oid, node=node, cpus=scalar(offer, "cpus"),
                        mem=scalar(offer, "mem"))
            a = self.args
            if a.decline is not None:
                self.decline(offer, a.decline)
            elif not self.going:  # sent before the SUPPRESS took: no filter
                self.decline(offer, 0)
            elif (count := self.room(offer)) == 0:
                # Too small for a task: Mesos' default filter, which lapses as soon
                # as the node has more than this offer held.
                self.decline(offer, 5 if not a.tasks or self.launched < a.tasks else 3600)
            else:
                self.accept(offer, count)
        if self.args.tasks and self.launched >= self.args.tasks and not self.suppressed:
            self.suppressed = self.call("SUPPRESS") == 202

    def wait_for_go(self) -> float:
        """How long the next wait for an event may be: short while --go's file is
        awaited (SUPPRESSed), and REVIVE once it is there."""
        if self.going:
            return 3600.0
        if not Path(self.args.go).exists():
            return 0.01
        self.going = self.call("REVIVE") == 202
        return 3600.0

    def decline(self, offer: Obj, refuse: float) -> None:
        sent = time.monotonic()
        code = self.call("DECLINE", decline={"offer_ids": [offer["id"]],
                                             "filters": {"refuse_seconds": refuse}})
        self.record("declined", offer=offer["id"]["value"], node=offer.get("hostname", ""),
                    refuse=refuse, code=code, sent=sent)

    def accept(self, offer: Obj, count: int) -> None:
        a = self.args
        agent = offer["agent_id"]["value"]
        tasks = [task_info(f"{a.name}-{self.launched + i}", agent, a.command, a.cpus, a.mem)
                 for i in range(count)]
        self.launched += count
        self.acceptor.submit(self._accept, offer, tasks)

    def _accept(self, offer: Obj, tasks: list[Obj]) -> None:
        sent = time.monotonic()
        code = self.call("ACCEPT", accept={"offer_ids": [offer["id"]],
                                           "operations": [launch(*tasks)],
                                           "filters": {"refuse_seconds": 0}})
        self.record("accepted", offer=offer["id"]["value"], node=offer.get("hostname", ""),
                    tasks=len(tasks), code=code, call_ms=1000 * (time.monotonic() - sent),
                    first=tasks[0]["task_id"]["value"], sent=sent)

    def on_update(self, status: Obj) -> None:
        state = status["state"]
        self.record("update", task=status["task_id"]["value"], state=state,
                    reason=status.get("reason", ""), message=status.get("message", ""))
        if "uuid" in status:
            self.sender.submit(self.call, "ACKNOWLEDGE", acknowledge={
                "agent_id": status["agent_id"], "task_id": status["task_id"],
                "uuid": status["uuid"]})
        if state in TERMINAL:
            self.ended += 1

    def done(self) -> bool:
        if self.args.max_offers and self.offers >= self.args.max_offers:
            return True
        return bool(self.args.exit_when_done and self.args.tasks
                    and self.ended >= self.args.tasks)


def _subscribe_again(fw: Framework, within: float) -> bool:
    """SUBSCRIBE with the framework's id until a master takes it, for ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            fw.subscribe()
            return True
        except (AssertionError, httpx.HTTPError):
            time.sleep(0.5)
    return False


def run(args: argparse.Namespace) -> int:
    fw = Framework(args.url, name=args.name, roles=[args.role],
                   failover_timeout=args.failover_timeout or None)
    with open(args.out, "a") as out:
        policy = Policy(fw, args, out)
        fw.subscribe()
        if args.go:
            fw.call("SUPPRESS")
        policy.record("subscribed", id=fw.id)
        while not policy.done():
            try:
                evt = fw.next_event(timeout=policy.wait_for_go())
            except AssertionError:  # no event within the wait
                continue
            if evt is None and not _subscribe_again(fw, args.failover_timeout):
                policy.record("error", message="the event stream ended")
                return 1
            if evt is None:
                policy.record("resubscribed", id=fw.id)
                continue
            kind = evt["type"]
            if kind == "OFFERS":
                policy.on_offers(evt["offers"].get("offers", []))
            elif kind == "UPDATE":
                policy.on_update(evt["update"]["status"])
            elif kind == "RESCIND":
                policy.record("rescind", offer=evt["rescind"]["offer_id"]["value"])
            elif kind in ("ERROR", "FAILURE"):
                policy.record("error", message=json.dumps(evt))
        elapsed = time.monotonic() - policy.started
        policy.acceptor.shutdown(wait=True)
        policy.sender.shutdown(wait=True)
        policy.record("done", elapsed=elapsed, tasks=policy.ended, calls=policy.calls)
        fw.call("TEARDOWN")
        fw.close()
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
        found = [json.loads(line) for line in lines if line.endswith("}")]
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
        stop_process(self.proc)


def main() -> None:
    # SIGTERM ends the process at once; the master removes the framework when its
    # stream ends (failover_timeout 0) and kills what it still runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(run(parse(sys.argv[1:])))


if __name__ == "__main__":
    main()
