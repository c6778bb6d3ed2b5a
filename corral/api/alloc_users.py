"""Who may have an Alloc's tasks run as a user: Mesos' run_tasks ACL, held at the
API so that it binds whoever writes the Alloc, not only the Mesos endpoint.

    Alloc CREATE/UPDATE with spec.tasks[].user U that the old object did not have
        caller in system:masters, or may "run" taskusers.corral.dev/U?  ─► ok
        else 403 'allocs.corral.dev "a" is forbidden: user "jane" may not run
             tasks as "root" (RBAC: "run" on taskusers.corral.dev "root")'

The agent runs a framework task as the user its Alloc names (corral/agent/run_as.py);
the Mesos master checks the framework's principal before it writes one
(corral/offers/auth.py) and is itself allowed every user. A task naming no user
runs as the node's unprivileged pod user and needs nothing. The server's own
writes (no request user) are not checked.
"""

from __future__ import annotations

from corral.api.admission.priority import forbidden
from corral.api.authz import CURRENT_USER, Attributes
from corral.api.rbac import MASTERS, RbacAuthorizer
from corral.api.resources import Resource
from corral.objects import Obj, name_of

GROUP, RESOURCE, VERB = "corral.dev", "taskusers", "run"


def _users(alloc: Obj | None) -> set[str]:
    tasks = ((alloc or {}).get("spec") or {}).get("tasks") or []
    return {str(t["user"]) for t in tasks if isinstance(t, dict) and t.get("user")}


class TaskUserCheck:
    """An admission plugin over Allocs."""

    def __init__(self, authorizer: RbacAuthorizer) -> None:
        self.authorizer = authorizer

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        user = CURRENT_USER.get()
        if res.kind != "Alloc" or user is None or MASTERS in user.groups:
            return
        for wanted in sorted(_users(obj) - _users(old)):
            attrs = Attributes(user, VERB, True, "", GROUP, "v1", "", RESOURCE, "", wanted)
            if not self.authorizer.authorize(attrs)[0]:
                raise forbidden(res, name_of(obj), f'user "{user.name}" may not run tasks as '
                                f'"{wanted}" (RBAC: "{VERB}" on {RESOURCE}.{GROUP} '
                                f'"{wanted}")')
