"""Who is offered what: hierarchical Dominant Resource Fairness, as Mesos' default
allocator does it, pure and clock-injected (the endpoint's loop calls it).

One allocation round (``allocate``), following Mesos' HierarchicalDRFAllocator:

 1. each node's available part = what capacity says frameworks may use there,
    minus outstanding offers, offers taken but not yet launched, and what
    frameworks' tasks hold (``track_used``);
 2. nodes are visited in turn (the starting node rotates each round);
 3. for a node, the candidates are (framework, role) pairs whose role is not
    suppressed and for which no decline filter on this node covers what is
    available;
 4. the role with the lowest weighted dominant share wins (share / weight, DRF
    across roles), then, inside it, the framework with the lowest dominant share
    in that role; ties go by name;
 5. the winner is offered everything available on the node (Mesos offers a whole
    agent), and its share grows at once, so the next node may go elsewhere.

Dominant share: the largest fraction of the cluster's total cpus, mem or disk
held (offered, taken, or used by tasks); ports are not counted, as Mesos'
sorter counts scalars only. An offer needs at least 0.01 cpus or 32 MiB of mem
(Mesos' default ``--min_allocatable_resources``).

Decline filters: declining an offer with ``refuse_seconds`` keeps the node from
that framework's role for that long, unless the node has more than was declined
(Mesos' "refused resources" filter). A negative or non-finite refuse_seconds
means Mesos' default of 5 s; it is capped at a year. REVIVE clears the filters
and lifts suppression.

Capacity contract (``update_capacity``): ``free`` per node is allocatable minus
what Pods and *non-framework* Allocs hold (corral/offers/capacity.py); the
allocator subtracts what frameworks hold itself, from ``track_used``. So an
accepted offer is never offered again while its Alloc is on its way to the
informers, and the framework's own Allocs do not shrink free and rescind.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from corral.client.clock import Clock
from corral.offers.drf import Sorter
from corral.offers.resources import NOTHING, Resources

DEFAULT_REFUSE_SECONDS = 5.0  # Mesos' Filters.refuse_seconds default
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0
MIN_OFFER_CPUS = 0.01  # Mesos' --min_allocatable_resources default: cpus:0.01|mem:32
MIN_OFFER_MEM = 32.0
DEFAULT_ROLE = "*"

UsedKey = tuple[str, str, str]  # (framework id, role, node)


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    framework_id: str
    role: str
    node: str
    resources: Resources


class InvalidOffers(Exception):
    """ACCEPT named offers that are unknown, no longer valid (used, declined,
    rescinded, expired), another framework's, repeated, or on different nodes.
    As Mesos does, the caller's own valid offers in the same call are voided
    (``voided``; their resources are free again), so retrying the same call fails
    again: the framework waits for new offers. The endpoint answers with task
    updates carrying REASON_INVALID_OFFERS."""

    def __init__(self, message: str, voided: Sequence[Offer] = ()) -> None:
        super().__init__(message)
        self.voided = list(voided)


@dataclass(slots=True)
class _Filter:
    resources: Resources  # what was declined: filtered while the node has no more
    until: float  # clock.monotonic() deadline


@dataclass(slots=True)
class _Framework:
    roles: tuple[str, ...]
    suppressed: set[str] = field(default_factory=set)
    filters: dict[tuple[str, str], list[_Filter]] = field(default_factory=dict)  # (role, node)


def refuse_duration(seconds: float) -> float:
    """Mesos' reading of Filters.refuse_seconds: bad values mean the default."""
    if not math.isfinite(seconds) and seconds > 0:
        return MAX_REFUSE_SECONDS
    if not math.isfinite(seconds) or seconds < 0:
        return DEFAULT_REFUSE_SECONDS
    return min(seconds, MAX_REFUSE_SECONDS)


def allocatable(resources: Resources) -> bool:
    """Whether an amount is worth an offer (Mesos' minimum allocatable resources)."""
    return resources.cpus >= MIN_OFFER_CPUS or resources.mem >= MIN_OFFER_MEM


class Allocator:
    """Offers, decline filters, suppression and framework holdings; see the module
    docstring for one round. Offer ids carry a per-instance prefix, so an offer
    of a deposed leader's allocator never names one of its successor's."""

    def __init__(self, clock: Clock, *, offer_timeout: float = 60.0,
                 id_prefix: str | None = None) -> None:
        self._clock = clock
        self.offer_timeout = offer_timeout
        self._prefix = id_prefix or uuid.uuid4().hex[:12]
        self._seq = itertools.count(1)
        self._round = 0
        self._frameworks: dict[str, _Framework] = {}
        self._weights: dict[str, float] = {}
        self._free: dict[str, Resources] = {}
        self._totals: dict[str, Resources] = {}
        self._offers: dict[str, Offer] = {}  # outstanding, in offer order
        self._offered_at: dict[str, float] = {}
        self._taken: dict[str, Offer] = {}  # accepted, until give_back
        self._used: dict[UsedKey, Resources] = {}

    # -- frameworks and roles ------------------------------------------------

    def add_framework(self, framework_id: str, roles: Sequence[str], *,
                      suppressed_roles: Sequence[str] = ()) -> None:
        """Register (or re-register, with new roles) a framework. No roles means
        Mesos' default role ``*``. Filters of roles it keeps survive."""
        wanted = tuple(dict.fromkeys(roles)) or (DEFAULT_ROLE,)
        old = self._frameworks.get(framework_id)
        framework = _Framework(wanted, set(suppressed_roles) & set(wanted))
        if old is not None:
            framework.filters = {k: v for k, v in old.filters.items() if k[0] in wanted}
        self._frameworks[framework_id] = framework

    def remove_framework(self, framework_id: str) -> list[Offer]:
        """Forget a framework's registration, filters and outstanding offers (the
        returned offers are void). What its tasks hold stays accounted until
        ``release_used``: removing a framework does not free its Allocs."""
        self._frameworks.pop(framework_id, None)
        void = [o for o in self._offers.values() if o.framework_id == framework_id]
        for offer in void:
            self._drop_offer(offer.id)
        return void

    def frameworks(self) -> list[str]:
        return list(self._frameworks)

    def set_weight(self, role: str, weight: float) -> None:
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"role weight must be a positive number, not {weight}")
        self._weights[role] = weight

    def weight(self, role: str) -> float:
        return self._weights.get(role, 1.0)

    def suppress(self, framework_id: str, roles: Sequence[str] | None = None) -> None:
        """No more offers for these roles (all when None) until REVIVE. Outstanding
        offers stay valid, as in Mesos."""
        framework = self._frameworks.get(framework_id)
        if framework is not None:
            framework.suppressed |= self._roles_of(framework, roles)

    def revive(self, framework_id: str, roles: Sequence[str] | None = None) -> None:
        """Lift suppression and clear decline filters for these roles (all when None)."""
        framework = self._frameworks.get(framework_id)
        if framework is None:
            return
        chosen = self._roles_of(framework, roles)
        framework.suppressed -= chosen
        framework.filters = {k: v for k, v in framework.filters.items() if k[0] not in chosen}

    @staticmethod
    def _roles_of(framework: _Framework, roles: Sequence[str] | None) -> set[str]:
        return set(framework.roles) if roles is None else set(roles) & set(framework.roles)

    # -- capacity --------------------------------------------------------------

    def update_capacity(self, free: Mapping[str, Resources], *,
                        totals: Mapping[str, Resources] | None = None) -> list[Offer]:
        """Take each node's free part for frameworks (see the module docstring) and
        optionally its total (the DRF denominator; default: ``free``). Returns the
        offers to rescind: those on nodes gone, and the newest on a node whose
        outstanding offers no longer fit (the oldest are kept while they fit)."""
        self._free = dict(free)
        self._totals = dict(totals) if totals is not None else {}
        rescind: list[Offer] = []
        by_node: dict[str, list[Offer]] = {}
        for offer in self._offers.values():
            by_node.setdefault(offer.node, []).append(offer)
        committed = self._held_by_node(offers=False)
        for node, offers in by_node.items():
            room = self._free.get(node)
            if room is None:
                rescind.extend(offers)
                continue
            room = room - committed.get(node, NOTHING)
            kept = Resources()
            for offer in offers:
                if (kept + offer.resources).fits(room):
                    kept = kept + offer.resources
                else:
                    rescind.append(offer)
        for offer in rescind:
            self._drop_offer(offer.id)
        return rescind

    def track_used(self, framework_id: str, role: str, node: str,
                   resources: Resources) -> None:
        """Resources a framework's tasks (its Allocs) hold on a node: counted in its
        share and kept out of offers until ``release_used``."""
        key = (framework_id, role, node)
        self._used[key] = self._used.get(key, NOTHING) + resources

    def release_used(self, framework_id: str, role: str, node: str,
                     resources: Resources) -> None:
        key = (framework_id, role, node)
        left = self._used.get(key, NOTHING) - resources
        if left.is_empty():
            self._used.pop(key, None)
        else:
            self._used[key] = left

    # -- offers ------------------------------------------------------------------

    def allocate(self) -> list[Offer]:
        """One allocation round: new offers, in the order DRF made them."""
        now = self._clock.monotonic()
        sorter = self._sorter()
        committed = self._held_by_node(offers=True)
        nodes = sorted(self._free)
        if nodes:
            start = self._round % len(nodes)
            nodes = nodes[start:] + nodes[:start]
        self._round += 1
        made: list[Offer] = []
        for node in nodes:
            available = self._free[node] - committed.get(node, NOTHING)
            if not allocatable(available):
                continue
            winner = self._pick(node, available, now, sorter)
            if winner is None:
                continue
            offer = Offer(f"{self._prefix}-O{next(self._seq)}", winner[0], winner[1], node,
                          available)
            self._offers[offer.id] = offer
            self._offered_at[offer.id] = now
            sorter.add(winner, available)
            made.append(offer)
        return made

    def _pick(self, node: str, available: Resources, now: float,
              sorter: Sorter) -> tuple[str, str] | None:
        """The (framework, role) DRF offers ``node`` to, or None."""
        by_role: dict[str, list[str]] = {}
        for framework_id, framework in self._frameworks.items():
            for role in framework.roles:
                if role in framework.suppressed:
                    continue
                if self._filtered(framework, role, node, available, now):
                    continue
                by_role.setdefault(role, []).append(framework_id)
        if not by_role:
            return None
        role = min(by_role, key=lambda r: (sorter.role_share(r) / self.weight(r), r))
        framework_id = min(by_role[role], key=lambda f: (sorter.client_share((f, role)), f))
        return framework_id, role

    @staticmethod
    def _filtered(framework: _Framework, role: str, node: str, available: Resources,
                  now: float) -> bool:
        filters = framework.filters.get((role, node))
        if not filters:
            return False
        live = [f for f in filters if f.until > now]
        if live:
            framework.filters[(role, node)] = live
        else:
            del framework.filters[(role, node)]
        return any(available.fits(f.resources) for f in live)

    def decline(self, framework_id: str, offer_ids: Sequence[str],
                refuse_seconds: float = DEFAULT_REFUSE_SECONDS) -> None:
        """Return offers; their node is not offered to the framework's role again for
        ``refuse_seconds`` unless it has more than was declined. Offers that are
        unknown or another framework's are ignored, as Mesos ignores them."""
        seconds = refuse_duration(refuse_seconds)
        for offer_id in offer_ids:
            offer = self._offers.get(offer_id)
            if offer is None or offer.framework_id != framework_id:
                continue
            self._drop_offer(offer_id)
            self._add_filter(offer.framework_id, offer.role, offer.node, offer.resources,
                             seconds)

    def _add_filter(self, framework_id: str, role: str, node: str, resources: Resources,
                    seconds: float) -> None:
        framework = self._frameworks.get(framework_id)
        if framework is None or seconds <= 0 or resources.is_empty():
            return
        until = self._clock.monotonic() + seconds
        framework.filters.setdefault((role, node), []).append(_Filter(resources, until))

    def take(self, framework_id: str, offer_ids: Sequence[str]) -> list[Offer]:
        """Accept offers: they leave the outstanding set and are held as taken until
        ``give_back``. All must be this framework's, valid, distinct and on one node
        (Mesos' rule for ACCEPT); otherwise InvalidOffers, see there."""
        mine = [self._offers[i] for i in dict.fromkeys(offer_ids)
                if i in self._offers and self._offers[i].framework_id == framework_id]
        problem = self._take_problem(framework_id, offer_ids, mine)
        for offer in mine:
            self._drop_offer(offer.id)
        if problem:
            raise InvalidOffers(problem, mine)
        for offer in mine:
            self._taken[offer.id] = offer
        return mine

    def _take_problem(self, framework_id: str, offer_ids: Sequence[str],
                      mine: Sequence[Offer]) -> str:
        if not offer_ids:
            return "no offer ids given"
        if len(set(offer_ids)) != len(offer_ids):
            return "an offer id is given more than once"
        for offer_id in offer_ids:
            offer = self._offers.get(offer_id)
            if offer is None:
                return f"Offer {offer_id} is no longer valid"
            if offer.framework_id != framework_id:
                return f"Offer {offer_id} is not for framework {framework_id}"
        if len({o.node for o in mine}) > 1:
            return "Aggregated offers must belong to one single agent"
        return ""

    def give_back(self, offers: Sequence[Offer], used: Mapping[str, Resources], *,
                  refuse_seconds: float = 0.0) -> None:
        """End taken offers. ``used``: node name → what was launched there out of
        them; the caller has already called ``track_used`` for it (tasks hold it
        now). The rest is free again; with ``refuse_seconds`` (ACCEPT's filters)
        it is filtered from the framework's role on that node for that long."""
        returned: dict[tuple[str, str, str], Resources] = {}
        for offer in offers:
            if self._taken.pop(offer.id, None) is None:
                continue
            key = (offer.framework_id, offer.role, offer.node)
            returned[key] = returned.get(key, NOTHING) + offer.resources
        seconds = refuse_duration(refuse_seconds) if refuse_seconds else 0.0
        for (framework_id, role, node), resources in returned.items():
            unused = resources - used.get(node, NOTHING)
            if allocatable(unused):
                self._add_filter(framework_id, role, node, unused, seconds)

    def expired(self) -> list[Offer]:
        """Offers outstanding for offer_timeout seconds, now removed; the caller
        sends RESCIND for each."""
        deadline = self._clock.monotonic() - self.offer_timeout
        old = [self._offers[i] for i, at in self._offered_at.items() if at <= deadline]
        for offer in old:
            self._drop_offer(offer.id)
        return old

    def offers(self, framework_id: str | None = None) -> list[Offer]:
        """Outstanding offers (of one framework), oldest first."""
        return [o for o in self._offers.values()
                if framework_id is None or o.framework_id == framework_id]

    def _drop_offer(self, offer_id: str) -> None:
        self._offers.pop(offer_id, None)
        self._offered_at.pop(offer_id, None)

    # -- shares --------------------------------------------------------------

    def shares(self) -> dict[str, float]:
        """Framework id → dominant share of everything it holds, across its roles."""
        sorter = self._sorter()
        return {f: sorter.framework_share(f) for f in self._frameworks}

    def role_shares(self) -> dict[str, float]:
        """Role → dominant share held in it (not divided by its weight)."""
        sorter = self._sorter()
        roles = {r for f in self._frameworks.values() for r in f.roles} | set(sorter.roles())
        return {r: sorter.role_share(r) for r in sorted(roles)}

    def _sorter(self) -> Sorter:
        return Sorter(self._total(), (((f, r), res) for f, r, _, res in self._holdings()))

    def _total(self) -> Resources:
        return Resources.sum(self._totals.get(node, free) for node, free in self._free.items())

    def _holdings(self) -> Iterable[tuple[str, str, str, Resources]]:
        """(framework, role, node, resources) for offers, taken offers and tasks."""
        for offer in itertools.chain(self._offers.values(), self._taken.values()):
            yield offer.framework_id, offer.role, offer.node, offer.resources
        for (framework_id, role, node), resources in self._used.items():
            yield framework_id, role, node, resources

    def _held_by_node(self, *, offers: bool) -> dict[str, Resources]:
        """What is committed on each node: taken offers and tasks, and outstanding
        offers too when ``offers``."""
        held: dict[str, Resources] = {}
        outstanding = self._offers.values() if offers else ()
        for offer in itertools.chain(outstanding, self._taken.values()):
            held[offer.node] = held.get(offer.node, NOTHING) + offer.resources
        for (_, _, node), resources in self._used.items():
            held[node] = held.get(node, NOTHING) + resources
        return held
