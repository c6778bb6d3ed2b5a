"""EncryptionConfiguration files: what is refused (naming the field), which rule
covers a key, the providers' byte layout, and a rotation's three edits."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import nacl.secret
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from corral.api.encryption import files
from corral.api.encryption.config import ConfigError, parse_config
from corral.api.encryption.providers import keyed

K32 = base64.b64encode(b"\x01" * 32).decode()
HEAD = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n"


def doc(resources: str) -> bytes:
    return (HEAD + "resources:\n" + resources).encode()


@pytest.mark.parametrize("text, message", [
    (b"[1, 2]", "one EncryptionConfiguration object"),
    (b"kind: Policy\napiVersion: v1\n", "kind and apiVersion must be"),
    (HEAD.encode(), "resources: Required value"),
    (doc("- {resources: [], providers: [{identity: {}}]}\n"), r"resources\[0\].resources: Required"),
    (doc("- {resources: [secrets], providers: []}\n"), r"resources\[0\].providers: Required"),
    (doc("- {resources: [secrets], providers: [{kms: {}}]}\n"),
     "Unsupported value: 'kms'.*KMS plugins are not supported"),
    (doc("- {resources: [secrets], providers: [{identity: {}, aesgcm: {}}]}\n"),
     "exactly one provider type"),
    (doc("- {resources: [secrets], providers: [{aesgcm: {keys: []}}]}\n"),
     r"providers\[0\].aesgcm.keys: Required value"),
    (doc("- {resources: [secrets], providers: [{aesgcm: {keys: [{name: a, secret: '!!'}]}}]}\n"),
     "secret: Invalid value: not base64"),
    (doc("- {resources: [secrets], providers: [{secretbox: {keys: [{name: a, secret: "
         + base64.b64encode(b"x" * 16).decode() + "}]}}]}\n"),
     "secretbox keys are 32 bytes, this one is 16"),
    (doc(f"- {{resources: [secrets], providers: [{{aescbc: {{keys: [{{name: 'a:b', secret: {K32}}}]}}}}]}}\n"),
     "name: Invalid value: 'a:b'"),
    (doc(f"- {{resources: [secrets], providers: [{{aescbc: {{keys: [{{name: a, secret: {K32}}}, "
         f"{{name: a, secret: {K32}}}]}}}}]}}\n"), r"keys\[1\].name: Duplicate value"),
    (doc("- {resources: [secrets], providers: [{identity: {}}]}\n"
         "- {resources: [secrets], providers: [{identity: {}}]}\n"), "'secrets' is named twice"),
    (doc("- {resources: ['se*ets'], providers: [{identity: {}}]}\n"), "may use a wildcard"),
])
def test_bad_files_are_refused_naming_the_field(text: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_the_first_rule_covering_a_key_decides() -> None:
    cfg = parse_config(doc(
        f"- {{resources: [secrets, deployments.apps], providers: [{{secretbox: {{keys: "
        f"[{{name: k, secret: {K32}}}]}}}}]}}\n"
        "- {resources: ['*.apps', '*.'], providers: [{identity: {}}]}\n"))
    assert cfg.digest.startswith("sha256:")
    first, second = cfg.rules
    assert cfg.rule_for("/registry/core/secrets/ns/a") is first
    assert cfg.rule_for("/registry/apps/deployments/ns/a") is first
    assert cfg.rule_for("/registry/apps/replicasets/ns/a") is second
    assert cfg.rule_for("/registry/core/configmaps/ns/a") is second
    assert cfg.rule_for("/registry/coordination.k8s.io/leases/ns/a") is None


def test_providers_lay_out_values_as_kubernetes_does() -> None:
    key = os.urandom(32)
    gcm = keyed("aesgcm", "k", key)
    sealed = gcm.seal(b"data", b"/registry/core/secrets/a/b")
    # nonce (12) + AES-GCM with the storage key as additional data
    assert AESGCM(key).decrypt(sealed[:12], sealed[12:], b"/registry/core/secrets/a/b") == b"data"
    box = keyed("secretbox", "k", key)
    sealed = box.seal(b"data", b"")
    # nonce (24) + NaCl secretbox
    assert nacl.secret.SecretBox(key).decrypt(sealed[24:], sealed[:24]) == b"data"
    cbc = keyed("aescbc", "k", key)
    sealed = cbc.seal(b"data", b"")
    assert len(sealed) == 16 + 16 and cbc.unseal(sealed, b"") == b"data"
    assert gcm.prefix == b"k8s:enc:aesgcm:v1:k:"


def test_rotation_edits_stage_promote_retire(tmp_path: Path) -> None:
    path = files.ensure_default(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    first = files.read_document(path)
    assert files.ensure_default(tmp_path) == path and files.read_document(path) == first
    staged, name = files.stage_key(first)
    assert name == "key2"
    assert [k["name"] for k in files.writing_provider(staged)[1]] == ["key1", "key2"]
    promoted = files.promote_key(staged, name)
    assert [k["name"] for k in files.writing_provider(promoted)[1]] == ["key2", "key1"]
    retired, gone = files.retire_keys(promoted, name)
    assert gone == ["key1"]
    assert [k["name"] for k in files.writing_provider(retired)[1]] == ["key2"]
    files.write_document(path, retired)
    assert parse_config(path.read_bytes()).rules[0].transformers[0].key_name == "key2"
    # identity writing Secrets: nothing to rotate
    plain = {**first, "resources": [{"resources": ["secrets"], "providers": [{"identity": {}}]}]}
    with pytest.raises(ConfigError, match="no key to rotate"):
        files.stage_key(plain)


async def test_a_changed_file_is_reloaded_and_a_bad_one_refused(tmp_path: Path) -> None:
    from corral.api.encryption.config import load_config
    from corral.api.encryption.store import EncryptingStore
    path = files.ensure_default(tmp_path)
    store = EncryptingStore(None, load_config(path), path)  # type: ignore[arg-type]
    first = store.digest
    assert not store.reload()  # unchanged
    path.write_text("kind: nonsense\n")
    os.utime(path, ns=(1, 1))
    assert not store.reload() and store.digest == first  # refused: the old one stays
    staged, _ = files.stage_key(files.default_document())
    files.write_document(path, staged)
    assert store.reload() and store.digest != first
