"""CertificateSigningRequest admission: who asked, who may approve, and the
approvals and signatures that need no human.

    CREATE  spec.username/uid/groups ← the requester (never the body); status cleared
            kubelet client, CN = the requester itself  ─► `create` on
                certificatesigningrequests/selfnodeclient?  ─► Approved (AutoApproved)
            kubelet client, asked by someone else (a bootstrapper) ─► `create` on
                certificatesigningrequests/nodeclient?      ─► Approved (AutoApproved)
            kubelet serving, CN = the requester, a node, no DNS name but its own
                                                          ─► Approved (AutoApproved)
    UPDATE  a new Approved or Denied condition ─► `approve` on
                signers.certificates.k8s.io/<signerName> (or <domain>/*), else 403
    both    Approved, one of our signers, no certificate yet ─► signed now (signer.py);
            a signer that cannot sign ─► a Failed condition saying why

kube-controller-manager's csrapproving and csrsigning controllers do this after
the write; here it happens in the write, so the object a node gets back from its
POST already carries its certificate.
"""

from __future__ import annotations

import logging

from corral.api.auth import REQUESTER, User
from corral.api.authz import Attributes, Authorizer
from corral.api.certificates.requests import (
    KUBELET_CLIENT,
    KUBELET_SERVING,
    NODE_PREFIX,
    NODES_GROUP,
    SIGNED_HERE,
    dns_names,
    node_of,
    parse_request,
)
from corral.api.certificates.signer import Signer
from corral.api.errors import Forbidden
from corral.api.resources import Resource
from corral.objects import Obj, now_rfc3339, spec, status

log = logging.getLogger(__name__)

GROUP = "certificates.k8s.io"


class CsrAdmission:
    def __init__(self, authorizer: Authorizer, signer: Signer | None) -> None:
        self.authorizer = authorizer
        self.signer = signer  # None: no CA here (plain HTTP); approved requests fail

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False) -> None:
        if res.kind != "CertificateSigningRequest":
            return
        user = REQUESTER.get()
        if op == "CREATE":
            _record_requester(obj, user)
            obj["status"] = {}
            reason = self._auto_approval(obj, user)
            if reason:
                _add_condition(obj, "Approved", "AutoApproved", reason)
        else:
            self._check_approver(obj, old, user)
        if not dry_run:
            self._sign_if_approved(obj)

    def _allowed(self, user: User, verb: str, resource: str, name: str = "",
                 subresource: str = "") -> bool:
        attrs = Attributes(user, verb, True, api_group=GROUP, api_version="v1",
                           resource=resource, subresource=subresource, name=name)
        return self.authorizer.authorize(attrs)[0]

    def _auto_approval(self, obj: Obj, user: User | None) -> str:
        """Kubernetes' message when the request is approved on creation, else ""."""
        if user is None:
            return ""
        signer = str(spec(obj).get("signerName") or "")
        request = parse_request(str(spec(obj).get("request") or ""))
        node = node_of(request)
        if node is None:
            return ""
        own = user.name == f"{NODE_PREFIX}{node}" and NODES_GROUP in user.groups
        if signer == KUBELET_CLIENT:
            if own and self._allowed(user, "create", "certificatesigningrequests",
                                     subresource="selfnodeclient"):
                return "Auto approving self kubelet client certificate after SubjectAccessReview."
            if not own and self._allowed(user, "create", "certificatesigningrequests",
                                         subresource="nodeclient"):
                return "Auto approving kubelet client certificate after SubjectAccessReview."
        # Its serving certificate may name no host but itself (the master checks the
        # agent's certificate against the node's name); its IPs it registers itself.
        if signer == KUBELET_SERVING and own and set(dns_names(request)) <= {node}:
            return "Auto approving kubelet serving certificate: the node asks for its own name."
        return ""

    def _check_approver(self, obj: Obj, old: Obj | None, user: User | None) -> None:
        before = {c.get("type") for c in status(old or {}).get("conditions") or []}
        after = {c.get("type") for c in status(obj).get("conditions") or []}
        decided = (after - before) & {"Approved", "Denied"}
        if not decided or user is None:
            return
        signer = str(spec(obj).get("signerName") or "")
        domain = signer.split("/", 1)[0]
        if not (self._allowed(user, "approve", "signers", signer)
                or self._allowed(user, "approve", "signers", f"{domain}/*")):
            raise Forbidden(f'certificatesigningrequests.certificates.k8s.io '
                            f'"{(obj.get("metadata") or {}).get("name", "")}" is forbidden: '
                            f'user not permitted to approve requests with signerName '
                            f'"{signer}"', kind="certificatesigningrequests", group=GROUP)

    def _sign_if_approved(self, obj: Obj) -> None:
        st = status(obj)
        types = {c.get("type") for c in st.get("conditions") or []}
        signer_name = str(spec(obj).get("signerName") or "")
        if "Approved" not in types or "Failed" in types or st.get("certificate") or \
                signer_name not in SIGNED_HERE:
            return
        if self.signer is None:
            _add_condition(obj, "Failed", "SignerUnavailable",
                           "this master has no cluster CA (it serves plain HTTP)")
            return
        s = spec(obj)
        obj.setdefault("status", {})["certificate"] = self.signer.sign(
            str(s.get("request") or ""), list(s.get("usages") or []), s.get("expirationSeconds"))
        log.info("certificate signed csr=%s signer=%s for=%s",
                 (obj.get("metadata") or {}).get("name"), signer_name, s.get("username"))


def _record_requester(obj: Obj, user: User | None) -> None:
    s = obj.setdefault("spec", {})
    for key in ("username", "uid", "groups", "extra"):
        s.pop(key, None)
    if user is not None:
        s["username"] = user.name
        if user.uid:
            s["uid"] = user.uid
        s["groups"] = list(user.groups)


def _add_condition(obj: Obj, type_: str, reason: str, message: str) -> None:
    now = now_rfc3339()
    conditions = obj.setdefault("status", {}).setdefault("conditions", [])
    conditions.append({"type": type_, "status": "True", "reason": reason, "message": message,
                       "lastUpdateTime": now, "lastTransitionTime": now})
