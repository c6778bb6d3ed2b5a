"""ServiceAccount admission on a real registry (SQLite): a pod naming an account
that does not exist is refused with Kubernetes' words; `default`, which its
controller makes just after the namespace, is looked for again before a pod is
refused; a generated name shows as its prefix, so a controller's retries repeat
one message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.api.admission import ServiceAccountAdmission
from corral.api.errors import Forbidden
from corral.api.registry import Registry
from corral.api.resources import BY_KIND
from corral.objects import Obj
from corral.store.open import open_store

POD, SA = BY_KIND["Pod"], BY_KIND["ServiceAccount"]


class Waits:
    """The plugin's sleep: counts the waits, and may make the account meanwhile."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.then: Obj | None = None  # created at the third wait
        self.registry: Registry | None = None

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        if len(self.seconds) == 3 and self.then is not None and self.registry is not None:
            await self.registry.create(SA, "team", self.then)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Registry, Waits]]:
    store = await open_store(f"sqlite:///{tmp_path / 'state.db'}")
    waits = Waits()
    reg = Registry(store)
    reg.admission.append(ServiceAccountAdmission(reg, sleep=waits))
    waits.registry = reg
    await reg.create(BY_KIND["Namespace"], None, {"metadata": {"name": "team"}})
    try:
        yield reg, waits
    finally:
        await store.close()


def pod(name: str, account: str | None = None, generate: bool = False) -> Obj:
    naming = {"generateName": name} if generate else {"name": name}
    spec: Obj = {"containers": [{"name": "c", "image": "none", "command": ["true"]}]}
    if account:
        spec["serviceAccountName"] = account
    return {"metadata": naming, "spec": spec}


async def test_a_named_account_that_does_not_exist_is_refused_at_once(
        setup: tuple[Registry, Waits]) -> None:
    registry, waits = setup
    with pytest.raises(Forbidden) as refused:
        await registry.create(POD, "team", pod("x", "ghost"))
    assert refused.value.message == ('pods "x" is forbidden: error looking up service account '
                                     'team/ghost: serviceaccount "ghost" not found')
    assert refused.value.code == 403 and waits.seconds == []
    await registry.create(SA, "team", {"metadata": {"name": "ghost"}})
    created = await registry.create(POD, "team", pod("x", "ghost"))
    assert created.obj["spec"]["serviceAccountName"] == "ghost"


async def test_default_is_looked_for_again_before_a_refusal(
        setup: tuple[Registry, Waits]) -> None:
    registry, waits = setup
    with pytest.raises(Forbidden) as refused:
        await registry.create(POD, "team", pod("web-", generate=True))
    assert refused.value.message == ('pods "web-" is forbidden: error looking up service '
                                     'account team/default: serviceaccount "default" not found')
    assert len(waits.seconds) == 29 and len(set(waits.seconds)) == 1
    assert 0.1 <= waits.seconds[0] <= 0.2  # Kubernetes' 100-200 ms between looks


async def test_default_made_meanwhile_admits_the_pod(setup: tuple[Registry, Waits]) -> None:
    registry, waits = setup
    waits.then = {"metadata": {"name": "default"}}
    created = await registry.create(POD, "team", pod("early"))
    assert created.obj["spec"]["serviceAccountName"] == "default"
    assert len(waits.seconds) == 3
