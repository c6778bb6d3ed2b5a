"""Creating and deleting a controller's pods (Kubernetes' PodControl and the
slow-start loop of controller_utils.go), shared by the ReplicaSet,
ReplicationController, DaemonSet, StatefulSet and Job controllers:

    create_owned(controller, expectations, key, owner, pods)
        expect len(pods) creations; create in slow-start batches (1, 2, 4, ...)
        and stop at the first failing batch; the pods never created are
        "observed" at once (no watch event will come for them);
        Events SuccessfulCreate "Created N pods" / FailedCreate; raise the error
    delete_owned(controller, expectations, key, owner, victims, message)
        expect the victims' uids gone; delete each on its uid (a namesake is
        never hit; NotFound is success); a failed delete is "observed" at once;
        Event SuccessfulDelete per pod; raise the first failure
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from corral.api.errors import APIError, NotFound
from corral.client.events import NORMAL, WARNING
from corral.client.http import Client, ServerUnreachable
from corral.controllers.base import Controller
from corral.controllers.expectations import Expectations
from corral.objects import Obj, meta, name_of, uid_of


def slow_start_batches(total: int, initial: int = 1) -> list[int]:
    """Batch sizes 1, 2, 4, ... summing to ``total``: a template that cannot
    be created fails after one call, not ``total``."""
    batches, size, left = [], max(initial, 1), total
    while left > 0:
        batch = min(size, left)
        batches.append(batch)
        left -= batch
        size *= 2
    return batches


async def create_pods(client: Client, pods: list[Obj]) -> tuple[int, APIError | None]:
    """Create pods in slow-start batches; stop at the first failing batch.
    Returns (created, the error that stopped it)."""
    created, index = 0, 0
    for size in slow_start_batches(len(pods)):
        batch = pods[index:index + size]
        index += size
        results = await asyncio.gather(*(client.create(p) for p in batch),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        created += len(batch) - len(errors)
        if errors:
            err = errors[0]
            if isinstance(err, (APIError, ServerUnreachable)):
                return created, err if isinstance(err, APIError) else APIError(str(err))
            raise err
    return created, None


async def create_owned(controller: Controller, expectations: Expectations, key: str,
                       owner: Obj, pods: list[Obj]) -> None:
    """Create ``owner``'s pods, telling its expectations and recording Events."""
    if not pods:
        return
    expectations.expect_creations(key, len(pods))
    created, err = await create_pods(controller.client, pods)
    for _ in range(len(pods) - created):
        expectations.creation_observed(key)  # those will never be seen
    if created:
        controller.emit(owner, NORMAL, "SuccessfulCreate",
                        f"Created {created} pod{'s' if created > 1 else ''}")
    if err is not None:
        controller.emit(owner, WARNING, "FailedCreate", f"Error creating: {err}")
        raise err


def deleted_pod(pod: Obj) -> str:
    """The SuccessfulDelete message of the ReplicaSet and DaemonSet controllers."""
    return f"Deleted pod: {name_of(pod)}"


async def delete_owned(controller: Controller, expectations: Expectations, key: str,
                       owner: Obj, victims: list[Obj],
                       message: Callable[[Obj], str] = deleted_pod) -> None:
    """Delete ``owner``'s pods ``victims``, telling its expectations and
    recording a SuccessfulDelete Event per pod (``message`` words it)."""
    if not victims:
        return
    deleted, err = await _delete_pods(controller.client, expectations, key, victims)
    for pod in deleted:
        controller.emit(owner, NORMAL, "SuccessfulDelete", message(pod))
    if err is not None:
        raise err


async def _delete_pods(client: Client, expectations: Expectations, key: str,
                      pods: list[Obj]) -> tuple[list[Obj], BaseException | None]:
    """Delete pods (each on its uid, so a namesake is never hit), telling the
    owner's expectations. Returns the pods deleted and the first failure."""
    expectations.expect_deletions(key, [uid_of(p) for p in pods])
    results = await asyncio.gather(*(_delete_pod(client, p) for p in pods),
                                   return_exceptions=True)
    deleted, failure = [], None
    for pod, result in zip(pods, results, strict=True):
        if isinstance(result, BaseException):
            expectations.deletion_observed(key, uid_of(pod))  # never to be seen
            failure = failure or result
        else:
            deleted.append(pod)
    return deleted, failure


async def _delete_pod(client: Client, pod: Obj) -> None:
    m = meta(pod)
    try:
        await client.delete("Pod", m["name"], m.get("namespace"),
                            preconditions={"uid": str(m.get("uid"))})
    except NotFound:
        pass
