"""apply's pure parts: reading manifests and the three-way patch."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.cli.apply import parse_manifests, read_manifests, three_way_patch
from corral.cli.verb import UsageError


def test_multi_document_yaml_and_lists(tmp_path: Path) -> None:
    text = """
kind: ConfigMap
metadata: {name: a}
---
---
kind: List
items:
- {kind: ConfigMap, metadata: {name: b}}
- {kind: Secret, metadata: {name: c}}
"""
    assert [o["metadata"]["name"] for o in parse_manifests(text, "x")] == ["a", "b", "c"]


def test_directory_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "2.yaml").write_text("kind: ConfigMap\nmetadata: {name: two}\n")
    (tmp_path / "1.json").write_text('{"kind": "ConfigMap", "metadata": {"name": "one"}}')
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert [o["metadata"]["name"] for o in read_manifests([str(tmp_path)])] == ["one", "two"]


def test_document_without_kind_is_an_error() -> None:
    with pytest.raises(UsageError, match="needs a kind"):
        parse_manifests("metadata: {name: a}\n", "f.yaml")


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        read_manifests([str(tmp_path / "absent.yaml")])


LIVE = {"spec": {"replicas": 2, "paused": False,
                 "template": {"containers": [{"name": "c", "image": "v1",
                                              "imagePullPolicy": "IfNotPresent"}]}},
        "status": {"ready": 2}}


def test_nothing_changed_gives_empty_patch_despite_server_defaults() -> None:
    manifest = {"spec": {"replicas": 2, "template": {"containers": [{"name": "c",
                                                                     "image": "v1"}]}}}
    assert three_way_patch(manifest, manifest, LIVE) == {}


def test_changed_field_and_changed_list() -> None:
    old = {"spec": {"replicas": 2, "template": {"containers": [{"name": "c", "image": "v1"}]}}}
    new = {"spec": {"replicas": 3, "template": {"containers": [{"name": "c", "image": "v2"}]}}}
    assert three_way_patch(old, new, LIVE) == {
        "spec": {"replicas": 3, "template": {"containers": [{"name": "c", "image": "v2"}]}}}


def test_field_dropped_from_manifest_is_deleted_but_others_fields_are_kept() -> None:
    old = {"spec": {"replicas": 2, "paused": False}}
    new = {"spec": {"replicas": 2}}
    assert three_way_patch(old, new, LIVE) == {"spec": {"paused": None}}
    # "status" was never in a manifest: not ours to delete
    assert "status" not in three_way_patch(old, new, LIVE)


def test_someone_elses_change_to_a_field_we_set_is_reverted() -> None:
    manifest = {"spec": {"replicas": 2}}
    live = {"spec": {"replicas": 5}}
    assert three_way_patch(manifest, manifest, live) == {"spec": {"replicas": 2}}
