"""The registry's cache of validated models (registry/models.py): found only at
the revision it was stored at, bounded in objects and in stored bytes, the least
recently used going first."""

from __future__ import annotations

from corral.api.kinds.core import ConfigMap
from corral.api.registry.models import MAX_BYTES, ModelCache


def model(name: str) -> ConfigMap:
    return ConfigMap.model_validate({"metadata": {"name": name}})


def test_found_only_at_its_revision() -> None:
    cache = ModelCache()
    a = model("a")
    cache.put("/a", 5, a, 100)
    assert cache.get("/a", 5) is a
    assert cache.get("/a", 6) is None and cache.get("/b", 5) is None
    cache.put("/a", 7, None, 100)  # written again, not as its model: forgotten
    assert cache.get("/a", 5) is None and cache.get("/a", 7) is None
    cache.put("/a", 8, a, MAX_BYTES + 1)  # too large to hold
    assert cache.get("/a", 8) is None


def test_bounded_in_objects_and_bytes_least_recently_used_first() -> None:
    cache = ModelCache(capacity=3, max_total=1000)
    for i, key in enumerate(("/a", "/b", "/c")):
        cache.put(key, i, model(key), 100)
    assert cache.get("/a", 0) is not None  # used: /b is now the oldest
    cache.put("/d", 3, model("d"), 100)
    assert cache.get("/b", 1) is None
    assert all(cache.get(k, r) is not None for k, r in (("/a", 0), ("/c", 2), ("/d", 3)))
    # Used in that order: /a is the oldest. /e's 800 bytes make 1,100: /a goes.
    cache.put("/e", 4, model("e"), 800)
    assert cache.get("/a", 0) is None
    assert all(cache.get(k, r) is not None for k, r in (("/c", 2), ("/d", 3), ("/e", 4)))
    cache.put("/e", 5, model("e"), 100)  # replacing counts its old size out: 300 bytes
    cache.put("/f", 6, model("f"), 650)  # 950 bytes, but four objects: /c goes
    assert cache.get("/c", 2) is None
    assert all(cache.get(k, r) is not None for k, r in (("/d", 3), ("/e", 5), ("/f", 6)))
