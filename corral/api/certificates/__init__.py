"""certificates.k8s.io: CertificateSigningRequests and the cluster CA that signs them.

    POST csr ─► validation (requests.py: a real PKCS#10 request, its signer's rules)
             ─► CsrAdmission (admission.py): spec.username/groups from the requester;
                auto-approval of a node's own client and serving certificates
                (kube-controller-manager's csrapproving, asked of the Authorizer)
             ─► approved? ─► Signer (signer.py): status.certificate from the CA
    PUT csr/approval (kubectl certificate approve|deny) ─► `approve` on the signer
             checked ─► approved? signed at once

The kubelet's TLS bootstrap rides on it: an agent with only a bootstrap token
asks for system:node:<name>'s client certificate, then for its serving one.
"""
