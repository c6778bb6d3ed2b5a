"""A Mesos framework written with pymesos, the PyPI library, as any user would
write one — corral's code is not imported. The offers tests run it as its own
process against a master's --mesos-listen address:

    python -m tests.pymesos_framework HOST:PORT --out FILE [--tasks N]
        [--principal P --secret S]     HTTP Basic, pymesos' own principal= and secret=

It launches N tasks (0.1 cpus, 32 MiB each): "t0" sleeps and is killed once it
runs, the others exit at once. Once every task has ended it reconciles "t1",
then stops (TEARDOWN) and exits. Each callback is one JSON line in FILE.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import IO, Any

from addict import Dict
from pymesos import MesosSchedulerDriver, Scheduler

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
            "TASK_DROPPED", "TASK_GONE"}


def scalar(offer: Any, name: str) -> float:
    return sum(r.scalar.value for r in offer.resources if r.name == name)


class Tasks(Scheduler):  # type: ignore[misc]
    def __init__(self, count: int, out: IO[str]) -> None:
        self.count = count
        self.out = out
        self.launched = 0
        self.states: dict[str, str] = {}
        self.killed = False
        self.reconciled = False
        self.done = threading.Event()

    def record(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, **fields}) + "\n")
        self.out.flush()

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self.record("registered", framework_id=framework_id.value,
                    version=master_info.get("version"))

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:
        for offer in offers:
            fit = int(min(scalar(offer, "cpus") / 0.1, scalar(offer, "mem") / 32))
            tasks = []
            while self.launched < self.count and fit > 0:
                tasks.append(self.task(f"t{self.launched}", offer))
                self.launched += 1
                fit -= 1
            if tasks:
                driver.launchTasks(offer.id, tasks)
                self.record("launched", tasks=[t.task_id.value for t in tasks])
            else:
                driver.declineOffer(offer.id, Dict(refuse_seconds=60))
        if self.launched >= self.count:
            driver.suppressOffers()

    def task(self, task_id: str, offer: Any) -> Any:
        task = Dict()
        task.task_id.value = task_id
        task.agent_id.value = offer.agent_id.value
        task.name = f"pymesos {task_id}"
        task.command.value = "sleep 600" if task_id == "t0" else "echo $MESOS_TASK_ID"
        task.resources = [Dict(name="cpus", type="SCALAR", scalar=Dict(value=0.1)),
                          Dict(name="mem", type="SCALAR", scalar=Dict(value=32))]
        return task

    def statusUpdate(self, driver: Any, update: Any) -> None:
        task_id, state = update.task_id.value, update.state
        self.record("update", task=task_id, state=state, reason=update.get("reason"),
                    message=update.get("message"))
        if update.get("reason") == "REASON_RECONCILIATION":
            self.reconciled = True
            self.done.set()
            return
        self.states[task_id] = state
        if task_id == "t0" and state == "TASK_RUNNING" and not self.killed:
            self.killed = True
            driver.killTask(Dict(value="t0"))
        if len(self.states) == self.count and set(self.states.values()) <= TERMINAL:
            driver.reconcileTasks([Dict(task_id=Dict(value="t1"))])

    def error(self, driver: Any, message: str) -> None:
        self.record("error", message=message)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("master")
    parser.add_argument("--out", required=True)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--principal")
    parser.add_argument("--secret")
    args = parser.parse_args()
    with open(args.out, "a") as out:
        sched = Tasks(args.tasks, out)
        # No user: the tasks run as the nodes' unprivileged pod user.
        framework = Dict(user="", name="pymesos-framework", hostname="localhost")
        driver = MesosSchedulerDriver(sched, framework, args.master, use_addict=True,
                                      principal=args.principal, secret=args.secret)
        driver.start()
        ended = sched.done.wait(args.timeout)
        driver.stop()  # TEARDOWN: the framework is done
        driver.join()
        sched.record("stopped", reconciled=sched.reconciled, in_time=ended)
        time.sleep(0)
    return 0 if ended else 1


if __name__ == "__main__":
    raise SystemExit(main())
