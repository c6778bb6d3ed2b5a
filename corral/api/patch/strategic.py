"""Kubernetes strategic merge patch, as kubectl's client-side apply sends it.

Maps merge key by key; ``null`` deletes a key. Lists follow the kind's rules
(``schema.rules_for``): keyed lists merge item by item, scalar "merge" lists
union, every other list is replaced. Directives understood:

    $patch: replace | merge | delete      in a map (or as a list item: replace the list)
    $retainKeys: [k, ...]                 drop the original's keys not listed
    $setElementOrder/<field>: [...]       order of the merged list
    $deleteFromPrimitiveList/<field>: [.] remove these scalars from the list

Ordering follows apimachinery's normalizeElementOrder: items named in
$setElementOrder come in that order; items only the server has keep their
original relative order and are interleaved by their original position.
"""

from __future__ import annotations

from typing import Any

from corral.api.errors import BadRequest, Invalid
from corral.api.patch.merge import copy_json
from corral.api.patch.schema import ListRule, Path, rules_for

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"


class _Deleted:
    """What merging a map carrying ``$patch: delete`` yields: drop the map."""


_DELETED = _Deleted()


def strategic_merge(original: dict[str, Any], patch: dict[str, Any], kind: str) -> dict[str, Any]:
    """Apply ``patch`` to a copy of ``original``. Raises BadRequest for a patch
    of the wrong shape, Invalid for content that contradicts its own $retainKeys."""
    merger = _Merger(rules_for(kind))
    merged = merger.merge_map(copy_json(original), copy_json(patch), ())
    if isinstance(merged, _Deleted):
        raise BadRequest("a strategic merge patch cannot delete the whole object")
    return merged


class _Merger:
    def __init__(self, rules: dict[Path, ListRule]) -> None:
        self.rules = rules

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], path: Path
    ) -> dict[str, Any] | _Deleted:
        directive = patch.pop(_PATCH, "merge")
        if directive == "delete":
            return _DELETED
        if directive == "replace":
            return self.merge_map({}, patch, path)
        if directive != "merge":
            raise BadRequest(f"{_where(path)}: unknown $patch directive {directive!r}; "
                             "expected replace, merge or delete")
        _retain_keys(original, patch, path)
        _delete_from_primitive_lists(original, patch, path)
        orders = _pop_prefixed(patch, _SET_ORDER, path)
        server_lists = {field: original.get(field) for field in orders}
        for key, value in patch.items():
            if key.startswith("$"):
                raise BadRequest(f"{_where(path + (key,))}: unknown patch directive {key!r}")
            self._merge_field(original, key, value, path + (key,))
        for field, order in orders.items():
            self._reorder(original, field, order, server_lists[field], path + (field,))
        return original

    def _merge_field(self, target: dict[str, Any], key: str, value: Any, path: Path) -> None:
        current = target.get(key)
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            merged = self.merge_map(current if isinstance(current, dict) else {}, value, path)
            if isinstance(merged, _Deleted):
                target.pop(key, None)
            else:
                target[key] = merged
        elif isinstance(value, list):
            target[key] = self.merge_list(current if isinstance(current, list) else [], value,
                                          path)
        else:
            target[key] = value

    def merge_list(self, original: list[Any], patch: list[Any], path: Path) -> list[Any]:
        rule = self.rules.get(path)
        if rule is None:
            return patch  # atomic list: the patch's value replaces it
        if rule.merge_key is None:
            return _union(original, patch)
        return self._merge_keyed(original, patch, rule.merge_key, path)

    def _merge_keyed(
        self, original: list[Any], patch: list[Any], key: str, path: Path
    ) -> list[Any]:
        if any(isinstance(item, dict) and item.get(_PATCH) == "replace" for item in patch):
            original = []
            patch = [item for item in patch
                     if not (isinstance(item, dict) and item.get(_PATCH) == "replace")]
        result = list(original)
        for item in patch:
            self._merge_item(result, item, key, path)
        return result

    def _merge_item(self, result: list[Any], item: Any, key: str, path: Path) -> None:
        if not isinstance(item, dict):
            raise BadRequest(f"{_where(path)}: expected a list of objects merged by "
                             f"{key!r}, got an item {item!r}")
        if key not in item:
            raise BadRequest(f"{_where(path)}: list item {item!r} does not contain "
                             f"declared merge key {key!r}")
        index = _find(result, key, item[key])
        if item.get(_PATCH) == "delete":
            if index is not None:
                del result[index]
            return
        base = result[index] if index is not None else {}
        merged = self.merge_map(base, item, path + ("*",))
        if index is None:
            if not isinstance(merged, _Deleted):
                result.append(merged)
        elif isinstance(merged, _Deleted):
            del result[index]
        else:
            result[index] = merged

    def _reorder(
        self, target: dict[str, Any], field: str, order: Any, server: Any, path: Path
    ) -> None:
        merged = target.get(field)
        rule = self.rules.get(path)
        if not isinstance(merged, list) or rule is None:
            return  # nothing to order, or an atomic list that the patch replaced whole
        if not isinstance(order, list):
            raise BadRequest(f"{_where(path)}: $setElementOrder must be a list")
        server_list = server if isinstance(server, list) else []
        target[field] = _normalize_order(merged, order, server_list, rule.merge_key)


def _where(path: Path) -> str:
    return ".".join(path) or "<root>"


def _find(items: list[Any], key: str, value: Any) -> int | None:
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get(key) == value:
            return index
    return None


def _union(original: list[Any], patch: list[Any]) -> list[Any]:
    result = list(original)
    for value in patch:
        if value not in result:
            result.append(value)
    return result


def _pop_prefixed(patch: dict[str, Any], prefix: str, path: Path) -> dict[str, Any]:
    """Remove the ``prefix<field>`` directives from ``patch``; return field → value."""
    found = {key[len(prefix):]: patch.pop(key) for key in list(patch) if key.startswith(prefix)}
    for field, value in found.items():
        if not isinstance(value, list):
            raise BadRequest(f"{_where(path + (prefix + field,))}: must be a list")
    return found


def _delete_from_primitive_lists(original: dict[str, Any], patch: dict[str, Any],
                                 path: Path) -> None:
    for field, doomed in _pop_prefixed(patch, _DELETE_FROM, path).items():
        current = original.get(field)
        if isinstance(current, list):
            original[field] = [v for v in current if v not in doomed]


def _retain_keys(original: dict[str, Any], patch: dict[str, Any], path: Path) -> None:
    if _RETAIN_KEYS not in patch:
        return
    retained = patch.pop(_RETAIN_KEYS)
    if not isinstance(retained, list) or not all(isinstance(k, str) for k in retained):
        raise BadRequest(f"{_where(path)}: $retainKeys must be a list of field names")
    # Keys the patch sets must be retained too; a null (delete) need not be listed.
    strays = [k for k, v in patch.items()
              if v is not None and not k.startswith("$") and k not in retained]
    if strays:
        raise Invalid(f"{_where(path)}: the patch sets {sorted(strays)} which $retainKeys "
                      f"{retained} does not list")
    for key in [k for k in original if k not in retained]:
        del original[key]


def _order_key(item: Any, merge_key: str | None) -> Any:
    if merge_key is None:
        return item
    return item.get(merge_key) if isinstance(item, dict) else None


def _normalize_order(
    merged: list[Any], order: list[Any], server: list[Any], merge_key: str | None
) -> list[Any]:
    wanted = [_order_key(item, merge_key) for item in order]
    served = [_order_key(item, merge_key) for item in server]

    def position(keys: list[Any], item: Any) -> int:
        value = _order_key(item, merge_key)
        return keys.index(value) if value in keys else len(keys)

    named = sorted((i for i in merged if _order_key(i, merge_key) in wanted),
                   key=lambda i: position(wanted, i))
    server_only = sorted((i for i in merged if _order_key(i, merge_key) not in wanted),
                         key=lambda i: position(served, i))
    return _interleave(server_only, named, served, merge_key)


def _interleave(
    server_only: list[Any], named: list[Any], served: list[Any], merge_key: str | None
) -> list[Any]:
    """Merge two ordered lists: a server-only item goes first only when both items
    were on the server and it stood before the other there (mergeSortedSlice)."""
    result: list[Any] = []
    left, right = 0, 0
    while left < len(server_only) or right < len(named):
        if right >= len(named):
            result.append(server_only[left])
            left += 1
        elif left >= len(server_only):
            result.append(named[right])
            right += 1
        elif _before(server_only[left], named[right], served, merge_key):
            result.append(server_only[left])
            left += 1
        else:
            result.append(named[right])
            right += 1
    return result


def _before(a: Any, b: Any, served: list[Any], merge_key: str | None) -> bool:
    ka, kb = _order_key(a, merge_key), _order_key(b, merge_key)
    return ka in served and kb in served and served.index(ka) < served.index(kb)
