"""Name and label syntax, as Kubernetes checks it
(k8s.io/apimachinery/pkg/util/validation). Each check returns the list of
problems, worded as Kubernetes words them; an empty list means valid."""

from __future__ import annotations

import ipaddress
import re

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = f"({_QUALIFIED_NAME})?"
_CONFIG_KEY = "[-._a-zA-Z0-9]+"

LABEL_MAX = 63
SUBDOMAIN_MAX = 253


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^{pattern}$")


_MATCH = {p: _full(p) for p in (_DNS1123_LABEL, _DNS1123_SUBDOMAIN, _DNS1035_LABEL,
                                _QUALIFIED_NAME, _LABEL_VALUE, _CONFIG_KEY)}


def _too_long(value: str, limit: int) -> list[str]:
    return [f"must be no more than {limit} characters"] if len(value) > limit else []


def _checked(value: str, limit: int, pattern: str, message: str) -> list[str]:
    """The problems of ``value``: longer than ``limit``, or not matching ``pattern``."""
    problems = _too_long(value, limit)
    if not _MATCH[pattern].match(value):
        problems.append(message)
    return problems


def dns1123_label(value: str) -> list[str]:
    return _checked(value, LABEL_MAX, _DNS1123_LABEL,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
            "or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
            f"or '123-abc', regex used for validation is '{_DNS1123_LABEL}')")


def dns1123_subdomain(value: str) -> list[str]:
    return _checked(value, SUBDOMAIN_MAX, _DNS1123_SUBDOMAIN,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character "
            f"(e.g. 'example.com', regex used for validation is '{_DNS1123_SUBDOMAIN}')")


def dns1035_label(value: str) -> list[str]:
    return _checked(value, LABEL_MAX, _DNS1035_LABEL,
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character "
            f"(e.g. 'my-name',  or 'abc-123', regex used for validation is '{_DNS1035_LABEL}')")


def qualified_name(value: str) -> list[str]:
    """A label or annotation key: an optional DNS subdomain prefix and '/', then a
    name of at most 63 characters ("app", "example.com/tier")."""
    prefix, slash, name = value.rpartition("/")
    if slash and not prefix:
        return ["prefix part must be non-empty"]
    problems = [f"prefix part {p}" for p in dns1123_subdomain(prefix)] if slash else []
    if not name:
        return [*problems, "name part must be non-empty"]
    if len(name) > LABEL_MAX:
        problems.append(f"name part must be no more than {LABEL_MAX} characters")
    if not _MATCH[_QUALIFIED_NAME].match(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            f"'123-abc', regex used for validation is '{_QUALIFIED_NAME}')")
    return problems


def label_value(value: str) -> list[str]:
    return _checked(value, LABEL_MAX, _LABEL_VALUE,
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
            f"'{_LABEL_VALUE}')")


def config_key(value: str) -> list[str]:
    """A ConfigMap or Secret data key."""
    problems = _too_long(value, SUBDOMAIN_MAX)
    if not _MATCH[_CONFIG_KEY].match(value):
        problems.append(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
            "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation "
            f"is '{_CONFIG_KEY}')")
    elif value in (".", ".."):
        problems.append(f"must not be '{value}'")
    return problems


def port_name(value: str) -> list[str]:
    """An IANA service name, as port names are ("http", "metrics")."""
    problems = _too_long(value, 15)
    if not re.fullmatch("[-a-z0-9]+", value):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in value:
        problems.append("must not contain consecutive hyphens")
    if not re.search("[a-z]", value):
        problems.append("must contain at least one letter (a-z)")
    if value.startswith("-") or value.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return problems


def ip_address(value: str) -> list[str]:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
    return []


def path_segment(value: str) -> list[str]:
    """Names that only have to be one URL path segment (the RBAC kinds': system:...)."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]
