"""EncryptionConfiguration files (apiserver.config.k8s.io/v1), as kube-apiserver
reads ``--encryption-provider-config``:

    apiVersion: apiserver.config.k8s.io/v1
    kind: EncryptionConfiguration
    resources:
      - resources: [secrets]            # also "configmaps", "deployments.apps",
        providers:                      # "*.apps", "*." (the core group), "*.*"
          - secretbox:
              keys:
                - {name: key2, secret: <base64 of 32 random bytes>}
                - {name: key1, secret: ...}
          - identity: {}

For each resource the first rule naming it decides. Its first provider's first
key writes; every key of every provider reads (a value's prefix names its key).
``identity`` reads what was stored unencrypted: keep it last while older data
may be plaintext. A file corral cannot use is refused whole, naming the field
at fault (ConfigError), at start and at every reload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from corral.api.encryption.providers import KEY_SIZES, KEYED, KeyTransformer, identity, keyed

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
KNOWN = (*KEYED, "identity")


class ConfigError(ValueError):
    """The file is not an EncryptionConfiguration corral can use."""


@dataclass(frozen=True)
class Rule:
    """One entry of ``resources``: the key prefixes it covers, and its transformers
    (the first writes)."""

    names: tuple[str, ...]  # as written: "secrets", "*.apps"
    prefixes: tuple[str, ...]  # storage key prefixes: "/registry/core/secrets/"
    transformers: tuple[KeyTransformer, ...]


@dataclass(frozen=True)
class EncryptionConfig:
    rules: tuple[Rule, ...]
    digest: str  # "sha256:<hex>" of the file's bytes: which version a master runs

    def rule_for(self, key: str) -> Rule | None:
        for rule in self.rules:
            if key.startswith(rule.prefixes):
                return rule
        return None


def load_config(path: Path) -> EncryptionConfig:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read the encryption provider config {path}: "
                          f"{err.strerror}") from None
    return parse_config(raw)


def parse_config(raw: bytes) -> EncryptionConfig:
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"not YAML or JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ConfigError("the file must hold one EncryptionConfiguration object")
    if doc.get("kind") != KIND or doc.get("apiVersion") != API_VERSION:
        raise ConfigError(f"kind and apiVersion must be {KIND} and {API_VERSION}, got "
                          f"{doc.get('kind')!r} and {doc.get('apiVersion')!r}")
    entries = doc.get("resources")
    if not isinstance(entries, list) or not entries:
        raise ConfigError("resources: Required value: at least one entry")
    rules = [_rule(entry, f"resources[{i}]") for i, entry in enumerate(entries)]
    _no_repeats(rules)
    return EncryptionConfig(tuple(rules), "sha256:" + hashlib.sha256(raw).hexdigest())


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be an object")
    names = entry.get("resources")
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str) and n for n in names):
        raise ConfigError(f"{where}.resources: Required value: a list of resource names")
    providers = entry.get("providers")
    if not isinstance(providers, list) or not providers:
        raise ConfigError(f"{where}.providers: Required value: at least one provider")
    transformers: list[KeyTransformer] = []
    for i, item in enumerate(providers):
        transformers.extend(_provider(item, f"{where}.providers[{i}]"))
    prefixes = tuple(_prefix(n, f"{where}.resources") for n in names)
    return Rule(tuple(names), prefixes, tuple(transformers))


def _prefix(name: str, where: str) -> str:
    """The storage keys a resource name covers (keys are /registry/<group>/<plural>/,
    the core group spelled "core")."""
    if name == "*.*":
        return "/registry/"
    plural, _, group = name.partition(".")
    if "/" in name or not plural:
        raise ConfigError(f"{where}: Invalid value: {name!r}: a resource is PLURAL[.GROUP]")
    if plural == "*":
        return f"/registry/{group or 'core'}/"
    if "*" in name:
        raise ConfigError(f"{where}: Invalid value: {name!r}: only '*.GROUP' and '*.*' "
                          "may use a wildcard")
    return f"/registry/{group or 'core'}/{plural}/"


def _provider(item: Any, where: str) -> list[KeyTransformer]:
    if not isinstance(item, dict) or len(item) != 1:
        raise ConfigError(f"{where}: exactly one provider type per entry (one of "
                          f"{', '.join(KNOWN)})")
    (kind, body), = item.items()
    if kind == "identity":
        return [identity()]
    if kind not in KEYED:
        hint = " (KMS plugins are not supported)" if kind == "kms" else ""
        raise ConfigError(f"{where}: Unsupported value: {kind!r}: supported values: "
                          f"{', '.join(KNOWN)}{hint}")
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ConfigError(f"{where}.{kind}.keys: Required value: at least one key")
    seen: set[str] = set()
    out = []
    for i, key in enumerate(keys):
        name, secret = _key(kind, key, f"{where}.{kind}.keys[{i}]")
        if name in seen:
            raise ConfigError(f"{where}.{kind}.keys[{i}].name: Duplicate value: {name!r}")
        seen.add(name)
        out.append(keyed(kind, name, secret))
    return out


def _key(kind: str, key: Any, where: str) -> tuple[str, bytes]:
    if not isinstance(key, dict):
        raise ConfigError(f"{where}: must be an object with name and secret")
    name, text = key.get("name"), key.get("secret")
    if not isinstance(name, str) or not name or ":" in name:
        raise ConfigError(f"{where}.name: Invalid value: {name!r}: a non-empty name "
                          "without ':'")
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{where}.secret: Required value")
    try:
        secret = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where}.secret: Invalid value: not base64") from None
    if len(secret) not in KEY_SIZES[kind]:
        sizes = " or ".join(str(s) for s in KEY_SIZES[kind])
        raise ConfigError(f"{where}.secret: Invalid value: {kind} keys are {sizes} bytes, "
                          f"this one is {len(secret)}")
    return name, secret


def _no_repeats(rules: list[Rule]) -> None:
    seen: set[str] = set()
    for rule in rules:
        for name in rule.names:
            if name in seen:
                raise ConfigError(f"resources: Duplicate value: {name!r} is named twice")
            seen.add(name)
