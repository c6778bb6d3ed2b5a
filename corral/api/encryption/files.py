"""The encryption provider config file on disk: the one `corral master` makes
when none is given, and the edits of a key rotation (`corral secrets rotate-key`).

The default, DATA_DIR/encryption-config.yaml (0600, like the CA key beside it):
Secrets sealed with secretbox under a random 32-byte key ``key1``; identity
last, so Secrets stored before encryption was on still read (and are sealed
on their next write).

A rotation is three edits, each loaded by every master before the next one:

    stage    the new key last among its provider's keys: it reads, nothing writes it
    promote  the new key first: every write uses it (all masters can read it already)
    retire   the provider's other keys removed, once every Secret was re-written
"""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path
from typing import Any

import yaml

from corral.api.auth import write_private
from corral.api.encryption.config import API_VERSION, KIND, ConfigError, parse_config
from corral.api.encryption.providers import KEYED, new_secret

DEFAULT_FILE = "encryption-config.yaml"
DEFAULT_PROVIDER = "secretbox"
ROTATED_RESOURCE = "secrets"

Doc = dict[str, Any]


def default_document(provider: str = DEFAULT_PROVIDER) -> Doc:
    return {"apiVersion": API_VERSION, "kind": KIND, "resources": [{
        "resources": [ROTATED_RESOURCE],
        "providers": [{provider: {"keys": [_new_key(provider, "key1")]}}, {"identity": {}}],
    }]}


def ensure_default(data_dir: Path) -> Path:
    """DATA_DIR/encryption-config.yaml, made with a new key if it is not there."""
    path = data_dir / DEFAULT_FILE
    if not path.exists():
        write_document(path, default_document())
    return path


def read_document(path: Path) -> Doc:
    raw = path.read_bytes()
    parse_config(raw)  # refuse to edit a file the masters would refuse
    doc = yaml.safe_load(raw)
    assert isinstance(doc, dict)
    return doc


def write_document(path: Path, doc: Doc) -> None:
    text = yaml.safe_dump(doc, sort_keys=False)
    parse_config(text.encode())  # never write what a master would refuse
    write_private(path, text)


def writing_provider(doc: Doc, resource: str = ROTATED_RESOURCE) -> tuple[str, list[Any]]:
    """(provider, its key list) that writes ``resource``: the first provider of
    the first rule covering it. ConfigError when that is identity."""
    group_plural = ("core", resource)
    for entry in doc["resources"]:
        for name in entry["resources"]:
            plural, _, group = name.partition(".")
            if name == "*.*" or (group or "core", plural) == group_plural or (
                    plural == "*" and (group or "core") == group_plural[0]):
                (provider, body), = entry["providers"][0].items()
                if provider not in KEYED:
                    raise ConfigError(f"{resource} are written by the {provider} provider: "
                                      "there is no key to rotate (put a keyed provider first)")
                return provider, body["keys"]
    raise ConfigError(f"no rule of the encryption provider config covers {resource}")


def stage_key(doc: Doc) -> tuple[Doc, str]:
    out = copy.deepcopy(doc)
    provider, keys = writing_provider(out)
    name = _next_name(k["name"] for k in keys)
    keys.append(_new_key(provider, name))
    return out, name


def promote_key(doc: Doc, name: str) -> Doc:
    out = copy.deepcopy(doc)
    _, keys = writing_provider(out)
    keys.sort(key=lambda k: k["name"] != name)  # stable: the others keep their order
    return out


def retire_keys(doc: Doc, keep: str) -> tuple[Doc, list[str]]:
    out = copy.deepcopy(doc)
    _, keys = writing_provider(out)
    retired = [k["name"] for k in keys if k["name"] != keep]
    keys[:] = [k for k in keys if k["name"] == keep]
    return out, retired


def _new_key(provider: str, name: str) -> dict[str, str]:
    return {"name": name, "secret": base64.b64encode(new_secret(provider)).decode()}


def _next_name(names: Any) -> str:
    numbers = [int(m.group(1)) for n in names if (m := re.fullmatch(r"key(\d+)", n))]
    return f"key{max(numbers, default=0) + 1}"
