"""Label and field selectors, parsed from Kubernetes' string syntax.

Label selectors (``labelSelector=``, and a workload's ``spec.selector`` object):

    app=web, tier==front, env!=prod      equality (== is the same as =)
    env in (a,b), env notin (a,b)        set membership
    canary, !canary                      the label exists / does not exist
    n>3, n<3                             integer comparison (label must exist)

Requirements are joined with "," (AND); whitespace around tokens is ignored.
A selector with no requirement matches everything. ``from_label_selector_object``
follows metav1.LabelSelectorAsSelector: None selects nothing (a workload without a
selector must not adopt every pod), ``{}`` selects everything.

Field selectors (``fieldSelector=``): ``path=value``, ``path==value``,
``path!=value`` on dotted paths into the object, joined by ","; a missing field
compares as "". Each kind allows only the fields Kubernetes indexes; the API
rejects the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from corral.api.resources import BY_KIND


class Operator(str, Enum):
    EQUALS = "="  # "==" parses to this too
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_NAME_RE = re.compile(_NAME)
_VALUE_RE = re.compile(f"({_NAME})?")
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _check_key(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if not _NAME_RE.fullmatch(name) or (
        slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(prefix))
    ):
        raise ValueError(f"invalid label key {key!r}: must be a qualified name "
                         "([prefix/]name, name up to 63 alphanumerics, '-', '_' or '.')")
    return key


def _check_value(value: str) -> str:
    if not _VALUE_RE.fullmatch(value):
        raise ValueError(f"invalid label value {value!r}: must be empty or up to 63 "
                         "alphanumerics, '-', '_' or '.', starting and ending alphanumeric")
    return value


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()  # sorted for in/notin; one value for =, !=, gt, lt

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        match self.operator:
            case Operator.EQUALS | Operator.IN:
                return present and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return not present or value not in self.values
            case Operator.EXISTS:
                return present
            case Operator.DOES_NOT_EXIST:
                return not present
            case Operator.GREATER_THAN | Operator.LESS_THAN:
                return present and self._compare(value)
        return False

    def _compare(self, value: str) -> bool:
        try:
            have, bound = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > bound if self.operator is Operator.GREATER_THAN else have < bound

    def to_string(self) -> str:
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.DOES_NOT_EXIST:
                return f"!{self.key}"
            case Operator.IN | Operator.NOT_IN:
                return f"{self.key} {self.operator.value} ({','.join(self.values)})"
            case Operator.GREATER_THAN:
                return f"{self.key}>{self.values[0]}"
            case Operator.LESS_THAN:
                return f"{self.key}<{self.values[0]}"
        return f"{self.key}{self.operator.value}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # the selector of a nil LabelSelector: matches no object

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def everything(self) -> bool:
        return not self.nothing and not self.requirements

    def exact_labels(self) -> dict[str, str]:
        """The labels every match must carry with exactly this value (an index can
        look these up instead of scanning)."""
        return {r.key: r.values[0] for r in self.requirements
                if r.operator in (Operator.EQUALS, Operator.IN) and len(r.values) == 1}

    def to_string(self) -> str:
        return ",".join(r.to_string() for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _selector(requirements: list[Requirement]) -> LabelSelector:
    # Kubernetes keeps requirements sorted by key, which fixes to_string's order.
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


# --- label selector strings -------------------------------------------------

_TOKEN_RE = re.compile(r"\s*(?:(?P<op>==|!=|=|!|\(|\)|,|>|<)|(?P<ident>[^\s!=(),<>]+))")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        found = _TOKEN_RE.match(text, position)
        if found is None:  # cannot happen: every non-space char starts a token
            raise ValueError(f"cannot read {text[position:]!r}")
        tokens.append(found.group("op") or found.group("ident"))
        position = found.end()
    return tokens


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.at += 1
        return token

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        while self.peek() is not None:
            requirements.append(self.requirement())
            separator = self.take()
            if separator not in (None, ","):
                raise ValueError(f"found {separator!r} in {self.text!r}, expected: ','")
            if separator == "," and self.peek() is None:
                raise ValueError(f"found end of input after ',' in {self.text!r}, "
                                 "expected: a requirement")
        return _selector(requirements)

    def identifier(self, what: str) -> str:
        token = self.take()
        if token is None or _is_symbol(token):
            found = "end of input" if token is None else repr(token)
            raise ValueError(f"found {found} in {self.text!r}, expected: {what}")
        return token

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return Requirement(_check_key(self.identifier("label key")), Operator.DOES_NOT_EXIST)
        key = _check_key(self.identifier("label key"))
        operator = self.peek()
        if operator in (None, ","):
            return Requirement(key, Operator.EXISTS)
        self.take()
        if operator in ("=", "==", "!="):
            op = Operator.NOT_EQUALS if operator == "!=" else Operator.EQUALS
            return Requirement(key, op, (_check_value(self.optional_value()),))
        if operator in (">", "<"):
            return self.comparison(key, operator)
        if operator in ("in", "notin"):
            return Requirement(key, Operator(operator), self.value_set())
        raise ValueError(f"found {operator!r} after {key!r}, expected: "
                         "'=', '!=', '==', 'in', 'notin', '>' or '<'")

    def optional_value(self) -> str:
        """``a=`` means the label's value is empty."""
        return "" if self.peek() in (None, ",") else self.identifier("label value")

    def comparison(self, key: str, operator: str) -> Requirement:
        bound = self.identifier("an integer")
        if not re.fullmatch(r"-?\d+", bound):
            raise ValueError(f"for '{operator}' the value must be an integer, got {bound!r}")
        op = Operator.GREATER_THAN if operator == ">" else Operator.LESS_THAN
        return Requirement(key, op, (bound,))

    def value_set(self) -> tuple[str, ...]:
        if self.take() != "(":
            raise ValueError(f"expected '(' after 'in'/'notin' in {self.text!r}")
        values: set[str] = set()
        while True:
            values.add(_check_value("" if self.peek() in (",", ")") else self.identifier(
                "label value")))
            token = self.take()
            if token == ")":
                return tuple(sorted(values))
            if token != ",":
                found = "end of input" if token is None else repr(token)
                raise ValueError(f"found {found} in {self.text!r}, expected: ',' or ')'")


def _is_symbol(token: str) -> bool:
    return token in ("==", "!=", "=", "!", "(", ")", ",", ">", "<")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse Kubernetes' label selector syntax; ValueError names the bad part."""
    return _LabelParser(text).parse()


_EXPRESSION_OPERATORS = {"In": Operator.IN, "NotIn": Operator.NOT_IN,
                         "Exists": Operator.EXISTS, "DoesNotExist": Operator.DOES_NOT_EXIST}


def from_label_selector_object(obj: dict[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector (``{matchLabels, matchExpressions}``) as a selector.
    None selects nothing; ``{}`` selects everything."""
    if obj is None:
        return NOTHING
    if not isinstance(obj, dict):
        # ValueError, not TypeError: every selector problem is a 400 for the API.
        raise ValueError(f"a label selector must be an object, got {type(obj).__name__}")  # noqa: TRY004
    match_labels = obj.get("matchLabels") or {}
    requirements = [Requirement(_check_key(str(k)), Operator.EQUALS, (_check_value(str(v)),))
                    for k, v in match_labels.items()]
    requirements += [_expression(e) for e in obj.get("matchExpressions") or []]
    return _selector(requirements)


def _expression(expression: Any) -> Requirement:
    if not isinstance(expression, dict):
        raise ValueError(f"a matchExpressions item must be an object, got {expression!r}")  # noqa: TRY004
    key = _check_key(str(expression.get("key", "")))
    name = expression.get("operator")
    operator = _EXPRESSION_OPERATORS.get(str(name))
    if operator is None:
        raise ValueError(f"{name!r} is not a valid label selector operator "
                         f"(one of {', '.join(_EXPRESSION_OPERATORS)})")
    values = tuple(sorted({_check_value(str(v)) for v in expression.get("values") or []}))
    if operator in (Operator.IN, Operator.NOT_IN) and not values:
        raise ValueError(f"key {key!r}: for 'In', 'NotIn' operators, values set can't be empty")
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        raise ValueError(f"key {key!r}: values set must be empty for exists and does not exist")
    return Requirement(key, operator, values)


# --- field selectors -----------------------------------------------------------

_METADATA_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
# corral's own field label (Kubernetes has none for owners): the objects with an
# owner reference of this uid, so that the garbage collector deletes a gone
# owner's dependents with one deletecollection instead of a DELETE each.
OWNER_UID_FIELD = "metadata.ownerReferences.uid"

# Field labels beyond metadata.* that Kubernetes' registries declare selectable.
_KIND_FIELDS: dict[str, frozenset[str]] = {
    "Pod": frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                      "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                      "status.podIP", "status.nominatedNodeName"}),
    "Node": frozenset({"spec.unschedulable"}),
    "Alloc": frozenset({"spec.nodeName", "spec.schedulerName", "status.phase"}),
    "Event": frozenset({"involvedObject.kind", "involvedObject.namespace",
                        "involvedObject.name", "involvedObject.uid",
                        "involvedObject.apiVersion", "involvedObject.resourceVersion",
                        "involvedObject.fieldPath", "reason", "reportingComponent", "source",
                        "type"}),
    "Secret": frozenset({"type"}),
    "Namespace": frozenset({"status.phase"}),
    "ReplicaSet": frozenset({"status.replicas"}),
    "Job": frozenset({"status.successful"}),
    "Service": frozenset({"spec.clusterIP", "spec.type"}),
}

# Field labels that are not the object's path; the first non-empty path wins.
_ALIASES: dict[str, tuple[str, ...]] = {
    "source": ("source.component", "reportingComponent"),
    "status.successful": ("status.succeeded",),
}


# What Kubernetes' field sets hold for these when the object leaves them out:
# they are Go values, not pointers, so an absent one reads as its zero value.
_ZERO_VALUES: dict[str, str] = {
    "spec.unschedulable": "false", "spec.hostNetwork": "false",
    "status.successful": "0", "status.replicas": "0",
}


def selectable_fields(kind: str) -> frozenset[str]:
    """Field labels a field selector may use on ``kind``."""
    resource = BY_KIND.get(kind)
    common = _METADATA_FIELDS if resource is None or resource.namespaced else frozenset(
        {"metadata.name"})
    return common | {OWNER_UID_FIELD} | _KIND_FIELDS.get(kind, frozenset())


def field_value(obj: dict[str, Any], field: str) -> str:
    """The string a field selector compares for ``field``; "" when it is absent."""
    for path in _ALIASES.get(field, (field,)):
        value = _stringify(_resolve(obj, path))
        if value:
            return value
    return _ZERO_VALUES.get(field, "")


def _owner_uids(obj: dict[str, Any]) -> list[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    return [str(r.get("uid")) for r in refs if isinstance(r, dict)] if isinstance(refs, list) else []


def _resolve(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return ""


class FieldOperator(str, Enum):
    EQUALS = "="  # "==" parses to this too
    NOT_EQUALS = "!="


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: FieldOperator
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        if self.field == OWNER_UID_FIELD:  # any of the references
            equal = self.value in _owner_uids(obj)
        else:
            equal = field_value(obj, self.field) == self.value
        return equal if self.operator is FieldOperator.EQUALS else not equal

    def to_string(self) -> str:
        return f"{self.field}{self.operator.value}{_escape(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: dict[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def unsupported(self, kind: str) -> list[str]:
        """The fields used here that ``kind`` does not allow, in order."""
        allowed = selectable_fields(kind)
        return [r.field for r in self.requirements if r.field not in allowed]

    def supported(self, kind: str) -> bool:
        return not self.unsupported(kind)

    def exact_value(self, field: str) -> str | None:
        """The value ``field`` must equal, if the selector pins it (e.g. the
        metadata.name of a single-object watch)."""
        for r in self.requirements:
            if r.field == field and r.operator is FieldOperator.EQUALS:
                return r.value
        return None

    @property
    def everything(self) -> bool:
        return not self.requirements

    def to_string(self) -> str:
        return ",".join(r.to_string() for r in self.requirements)


def parse_field_selector(text: str) -> FieldSelector:
    """Parse ``a.b=v,c!=w``; values may escape ',', '=' and '\\' with a backslash."""
    requirements = [_field_term(term) for term in _split_unescaped(text, ",") if term.strip()]
    return FieldSelector(tuple(requirements))


def _field_term(term: str) -> FieldRequirement:
    for index in range(len(term)):
        if term[index] == "\\":
            break  # an escape before any operator: the field name itself is malformed
        for symbol, operator in (("!=", FieldOperator.NOT_EQUALS), ("==", FieldOperator.EQUALS),
                                 ("=", FieldOperator.EQUALS)):
            if term.startswith(symbol, index):
                field = term[:index].strip()
                if not field:
                    raise ValueError(f"invalid selector term {term!r}: the field is empty")
                value = _unescape(term[index + len(symbol):].strip())
                return FieldRequirement(field, operator, value)
    raise ValueError(f"invalid selector: {term!r}; can't understand it "
                     "(expected field=value, field==value or field!=value)")


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    if escaped:
        current += "\\"
    parts.append(current)
    return parts


def _unescape(value: str) -> str:
    result, escaped = "", False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise ValueError(f"invalid escape sequence '\\{char}' in {value!r}")
            result += char
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            result += char
    if escaped:
        raise ValueError(f"unterminated escape sequence at the end of {value!r}")
    return result


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
