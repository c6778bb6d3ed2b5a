"""What `kubectl explain` prints: a description of each main kind and its fields.

Keyed by the pydantic model's name (the schema corral generates for it), then by
the field's wire name. Written for corral from Kubernetes' API semantics (the
facts, not Kubernetes' text), and saying where corral differs: pods are
processes, images are recorded and not pulled, ports are allocated per node.
A field without an entry is shown without a description.
"""

from __future__ import annotations

_TYPE_META = {
    "apiVersion": "The versioned schema of this representation of an object, e.g. apps/v1. "
                  "Servers reject a body whose apiVersion does not match the request.",
    "kind": "The REST resource this object represents, in CamelCase (Pod, Deployment).",
    "metadata": "Standard object metadata: name, namespace, labels, annotations, owners.",
}


def _object(description: str, spec: str = "", status: str = "",
            **fields: str) -> tuple[str, dict[str, str]]:
    described = dict(_TYPE_META)
    if spec:
        described["spec"] = spec
    if status:
        described["status"] = status
    described.update(fields)
    return description, described


DESCRIPTIONS: dict[str, tuple[str, dict[str, str]]] = {
    # ---- metadata ----------------------------------------------------------------------
    "ObjectMeta": ("Metadata every persisted object has.", {
        "name": "Unique within a namespace (or the cluster, for cluster-scoped kinds). "
                "Cannot be changed after creation.",
        "generateName": "A prefix the server completes with random characters to make a "
                        "unique name, used when name is empty.",
        "namespace": "The namespace the object lives in; empty for cluster-scoped kinds.",
        "uid": "Unique for the object's lifetime, set by the server; a new object of the "
               "same name gets a new uid.",
        "resourceVersion": "The store revision of this version of the object. Send it back "
                           "on update for optimistic concurrency (a stale one is a 409).",
        "generation": "Counts changes of the desired state (spec); set by the server.",
        "creationTimestamp": "When the object was created (RFC 3339, UTC). Read-only.",
        "deletionTimestamp": "Set when deletion was requested: the object goes once its "
                             "finalizers are done (a pod once its containers stopped).",
        "deletionGracePeriodSeconds": "Seconds the object has to terminate gracefully.",
        "labels": "Key/value pairs to organize and select objects (label selectors).",
        "annotations": "Key/value pairs for tools and people; not used for selection.",
        "ownerReferences": "The objects this one depends on; when all owners are gone the "
                           "garbage collector deletes it.",
        "finalizers": "Entries that must be removed before the object is deleted.",
    }),
    "LabelSelector": ("A label query: every condition must hold (AND); an empty one "
                      + "matches everything.", {
        "matchLabels": "Labels that must be present with exactly these values.",
        "matchExpressions": "Requirements with In, NotIn, Exists or DoesNotExist.",
    }),
    "OwnerReference": ("Points at an owner of the object, in the same namespace.", {
        "controller": "True for the one owner that manages this object.",
        "blockOwnerDeletion": "The owner's foreground deletion waits for this object.",
    }),
    # ---- pods -----------------------------------------------------------------------------
    "Pod": _object("A group of containers scheduled together onto one node. In corral each "
                   "container is an OS process the node's agent starts and supervises.",
                   "What the pod should run and where.",
                   "What the pod is doing, as its node's agent last reported. Read-only."),
    "PodSpec": ("The desired behaviour of a pod.", {
        "containers": "The containers (processes) of the pod; at least one.",
        "initContainers": "Containers run one after another, each to success, before the "
                          "containers start.",
        "restartPolicy": "Always, OnFailure or Never: whether exited containers are started "
                         "again, with an exponential back-off (CrashLoopBackOff).",
        "terminationGracePeriodSeconds": "Seconds between SIGTERM and SIGKILL when the pod "
                                         "is stopped. Defaults to 30.",
        "activeDeadlineSeconds": "Seconds the pod may run before it is failed.",
        "nodeSelector": "Labels a node must have for the pod to be scheduled there.",
        "nodeName": "The node the pod runs on; set by the scheduler, or by you to skip it.",
        "affinity": "Node affinity and pod (anti-)affinity scheduling rules.",
        "tolerations": "Taints of nodes this pod tolerates.",
        "schedulerName": "The scheduler that places the pod.",
        "priorityClassName": "The PriorityClass giving the pod its priority (and the right "
                             "to preempt lower priorities).",
        "priority": "The priority value, filled in from priorityClassName.",
        "preemptionPolicy": "PreemptLowerPriority or Never.",
        "volumes": "Volumes the containers may mount.",
        "hostname": "The pod's hostname; defaults to its name.",
        "serviceAccountName": "The ServiceAccount the pod runs as.",
        "topologySpreadConstraints": "How to spread matching pods across topology domains.",
        "enableServiceLinks": "Whether Services' environment variables are injected.",
        "hostNetwork": "Use the node's network namespace (always so for corral's processes).",
    }),
    "PodStatus": ("The observed state of a pod.", {
        "phase": "Pending, Running, Succeeded, Failed or Unknown.",
        "conditions": "PodScheduled, Initialized, ContainersReady and Ready.",
        "hostIP": "The address of the node the pod runs on.",
        "podIP": "The pod's address; in corral the node's, with a host port per "
                 "container port.",
        "startTime": "When the node's agent accepted the pod.",
        "containerStatuses": "One entry per container: state, readiness, restarts.",
        "initContainerStatuses": "One entry per init container.",
        "qosClass": "Guaranteed, Burstable or BestEffort, from the resources asked.",
        "portMappings": "corral: the host port the agent allocated for each container port.",
    }),
    "PodTemplateSpec": ("The pods a workload creates.", {
        "metadata": "Labels and annotations of the pods; the labels must match the "
                    "workload's selector.",
        "spec": "The spec of the pods.",
    }),
    "Container": ("One process of a pod.", {
        "name": "Unique within the pod (a DNS label).",
        "image": "The container image. corral records it and runs command on the node; "
                 "no image is pulled.",
        "command": "The program and its arguments (argv, not a shell). $(VAR) expands "
                   "from the container's environment.",
        "args": "Arguments appended to command.",
        "workingDir": "The working directory; by default a directory of the pod's own.",
        "env": "Environment variables, literal or from a ConfigMap, Secret or field.",
        "envFrom": "Every key of a ConfigMap or Secret as environment variables.",
        "ports": "Ports the container listens on. corral allocates a host port for each "
                 "and hands it over as $PORT / $PORT_<NAME>.",
        "resources": "CPU and memory requests (for scheduling) and limits (enforced with "
                     "cgroups).",
        "livenessProbe": "Restart the container when this check fails.",
        "readinessProbe": "Send Service traffic only while this check passes.",
        "startupProbe": "Hold the other probes until this check first passes.",
        "imagePullPolicy": "Always, IfNotPresent or Never (recorded; nothing is pulled).",
        "restartPolicy": "Always on an init container makes it a sidecar.",
        "volumeMounts": "Volumes to mount into the container.",
        "securityContext": "Security options of the container.",
        "terminationMessagePath": "File whose content becomes the termination message.",
        "stdin": "Keep a standard input buffer open for attach.",
        "tty": "Allocate a terminal (needs stdin).",
    }),
    "ContainerPort": ("A port a container listens on.", {
        "containerPort": "The port number, 1-65535.",
        "name": "A name Services and probes can refer to (an IANA service name).",
        "protocol": "TCP, UDP or SCTP. Defaults to TCP.",
        "hostPort": "A port to open on the node.",
    }),
    "EnvVar": ("One environment variable.", {
        "name": "The variable's name.",
        "value": "A literal value; $(VAR) expands earlier variables.",
        "valueFrom": "Take the value from a ConfigMap or Secret key, or a pod field.",
    }),
    "ResourceRequirements": ("Compute resources of a container.", {
        "requests": "What the scheduler reserves on the node (cpu, memory, ...).",
        "limits": "The most the container may use; memory over it is OOMKilled.",
    }),
    "Probe": ("A check the node's agent runs against a container.", {
        "exec": "Run a command; exit code 0 is success.",
        "httpGet": "An HTTP GET; 200-399 is success.",
        "tcpSocket": "Open a TCP connection.",
        "grpc": "A gRPC health check.",
        "initialDelaySeconds": "Seconds after start before the first check.",
        "periodSeconds": "Seconds between checks. Defaults to 10.",
        "timeoutSeconds": "Seconds a check may take. Defaults to 1.",
        "successThreshold": "Consecutive successes to pass after a failure.",
        "failureThreshold": "Consecutive failures to fail. Defaults to 3.",
    }),
    # ---- workloads ------------------------------------------------------------------------
    "Deployment": _object("Declarative updates of a set of identical pods through "
                          "ReplicaSets, with rolling update and rollback.",
                          "The desired pods and how to roll out changes.",
                          "The rollout as the deployment controller last observed it."),
    "DeploymentSpec": ("The desired state of a Deployment.", {
        "replicas": "How many pods. Defaults to 1.",
        "selector": "The pods this Deployment manages; must match the template's labels. "
                    "Immutable.",
        "template": "The pods to create.",
        "strategy": "RollingUpdate (default) or Recreate.",
        "minReadySeconds": "Seconds a new pod must be ready to count as available.",
        "revisionHistoryLimit": "Old ReplicaSets kept for rollback. Defaults to 10.",
        "paused": "Stop rolling out template changes while true.",
        "progressDeadlineSeconds": "Seconds without progress before the rollout is "
                                   "reported failed (ProgressDeadlineExceeded).",
    }),
    "DeploymentStrategy": ("How a Deployment replaces old pods.", {
        "type": "RollingUpdate or Recreate.",
        "rollingUpdate": "maxSurge and maxUnavailable of a rolling update.",
    }),
    "RollingUpdateDeployment": ("The pace of a rolling update.", {
        "maxSurge": "Pods over the desired count during the update (number or percent).",
        "maxUnavailable": "Pods that may be unavailable during the update.",
    }),
    "ReplicaSet": _object("Keeps a number of identical pods running.",
                          "The desired pods.", "The pods the controller last counted."),
    "ReplicaSetSpec": ("The desired state of a ReplicaSet.", {
        "replicas": "How many pods.",
        "selector": "The pods this ReplicaSet owns.",
        "template": "The pods to create.",
    }),
    "DaemonSet": _object("Runs one pod on every node that fits its template (node selector, "
                         "tolerated taints).", "The pods and how to roll out changes.",
                         "How many nodes run the daemon pod, ready and up to date."),
    "DaemonSetSpec": ("The desired state of a DaemonSet.", {
        "selector": "The pods this DaemonSet manages; must match the template's labels.",
        "template": "The pod to run on each node; its nodeSelector and tolerations pick "
                    "the nodes.",
        "updateStrategy": "RollingUpdate (default: one node at a time) or OnDelete.",
        "minReadySeconds": "Seconds a new pod must be ready to count as available.",
    }),
    "ReplicationController": _object("The ReplicaSet's predecessor: keeps a number of pods "
                                     "matching a label map.", "The desired pods.",
                                     "The pods the controller last counted."),
    "Job": _object("Runs pods until a number of them succeed (a Borg batch job).",
                   "The pods and how many must succeed.", "Progress of the job."),
    "JobSpec": ("The desired behaviour of a Job.", {
        "template": "The pods to run; restartPolicy must be Never or OnFailure. "
                    "Immutable once the job exists.",
        "completions": "Successful pods needed; unset: the first success finishes it.",
        "parallelism": "Pods running at once.",
        "completionMode": "NonIndexed or Indexed (each pod gets an index).",
        "backoffLimit": "Failures before the job fails. Defaults to 6, or to 2147483647 "
                        "when backoffLimitPerIndex is set.",
        "backoffLimitPerIndex": "Indexed only: failures of one index before that index "
                                "fails (status.failedIndexes) and is not retried; the "
                                "count is kept in each pod's "
                                "batch.kubernetes.io/job-index-failure-count annotation.",
        "maxFailedIndexes": "With backoffLimitPerIndex: the job fails at once when more "
                            "indexes than this have failed; at most completions.",
        "activeDeadlineSeconds": "Seconds the job may run before it fails.",
        "ttlSecondsAfterFinished": "Seconds after finishing before the job is deleted.",
        "suspend": "Create no pods while true.",
        "selector": "The pods of this job; generated unless manualSelector.",
        "podFailurePolicy": "What a failed pod does to the job, by the first rule it "
                            "matches; restartPolicy must be Never.",
    }),
    "PodFailurePolicy": ("Rules for failed pods of a Job, tried in order.", {
        "rules": "Up to 20 rules; a failure no rule matches counts towards backoffLimit.",
    }),
    "PodFailurePolicyRule": (("An action for the failed pods that match exit codes or "
                             "pod conditions (one of the two)."), {
        "action": "FailJob (fail the job at once), Ignore (do not count the failure; "
                  "replace the pod), Count (count it) or FailIndex (needs "
                  "backoffLimitPerIndex).",
        "onExitCodes": "Matches a container that ended with a non-zero exit code.",
        "onPodConditions": "Matches a pod that has one of these conditions.",
    }),
    "PodFailurePolicyOnExitCodesRequirement": ("Exit codes a rule matches.", {
        "containerName": "Only this container (or init container); all when unset.",
        "operator": "In or NotIn the values.",
        "values": "Up to 255 exit codes, ascending, without duplicates; 0 is not allowed "
                  "with In.",
    }),
    "PodFailurePolicyOnPodConditionsPattern": ("A pod condition a rule matches.", {
        "type": "The condition's type, e.g. DisruptionTarget.",
        "status": "True (the default), False or Unknown.",
    }),
    # ---- services and config --------------------------------------------------------------
    "Service": _object("A stable virtual address load-balancing over the pods its selector "
                       "picks.", "The address, ports and selector.",
                       "Load-balancer state."),
    "ServiceSpec": ("The desired behaviour of a Service.", {
        "type": "ClusterIP (default), NodePort, LoadBalancer or ExternalName.",
        "selector": "Pods with these labels receive the traffic.",
        "ports": "The ports the Service exposes.",
        "clusterIP": "The virtual address, allocated unless given; None for headless.",
        "sessionAffinity": "None or ClientIP.",
        "externalName": "The DNS name an ExternalName Service aliases.",
        "clusterIPs": "The virtual addresses (clusterIP first); one per IP family.",
        "externalIPs": "Addresses outside the cluster that also route to the Service.",
        "sessionAffinityConfig": "Settings of ClientIP affinity (its timeout).",
        "publishNotReadyAddresses": "Publish endpoints of pods that are not ready too.",
        "loadBalancerIP": "The address asked of a load balancer (deprecated).",
        "loadBalancerSourceRanges": "Client ranges a load balancer lets in.",
        "loadBalancerClass": "Which load-balancer implementation handles the Service.",
        "externalTrafficPolicy": "Cluster or Local: whether traffic from outside may go to "
                                 "endpoints on other nodes.",
        "internalTrafficPolicy": "Cluster or Local, for traffic from inside the cluster.",
        "healthCheckNodePort": "The node port a load balancer checks (Local policy).",
        "ipFamilies": "The IP families of the Service's addresses (IPv4, IPv6).",
        "ipFamilyPolicy": "SingleStack, PreferDualStack or RequireDualStack.",
        "allocateLoadBalancerNodePorts": "Whether a LoadBalancer Service gets node ports.",
        "trafficDistribution": "A preference for how traffic spreads over endpoints.",
    }),
    "ServicePort": ("One port of a Service.", {
        "port": "The port the Service listens on.",
        "targetPort": "The pods' port (number or name); defaults to port.",
        "nodePort": "The port opened on every node for NodePort and LoadBalancer.",
        "protocol": "TCP, UDP or SCTP.",
        "name": "Required when the Service has several ports.",
    }),
    "EndpointSlice": _object(
        "A piece of a Service's endpoints: one address type, one set of ports, at most 1000 "
        "endpoints (the endpointslice controller puts at most 100 in each). All slices "
        "labelled kubernetes.io/service-name=<service> together are the Service's "
        "endpoints. corral's pods listen on host ports of their own, so pods whose ports "
        "differ are in different slices.",
        addressType="IPv4, IPv6 or FQDN: the type of every address in the slice. Immutable.",
        endpoints="The endpoints, each unique in the slice.",
        ports="The ports every endpoint of the slice serves; names unique. A port "
              "without a number means every port."),
    "Endpoint": ("One backend of a Service: a pod, or an address its user wrote.", {
        "addresses": "1 to 100 addresses of the slice's type; the controllers write one.",
        "conditions": "Whether it is ready, serving, terminating.",
        "hostname": "Its DNS label, when the pod's subdomain is the Service.",
        "targetRef": "The object it stands for (its Pod).",
        "nodeName": "The node it runs on.",
        "zone": "The topology.kubernetes.io/zone of its node.",
        "hints": "Which zones or nodes should use it (topology aware routing).",
        "deprecatedTopology": "v1beta1's topology labels; dropped when written through v1.",
    }),
    "EndpointConditions": ("The state of an endpoint.", {
        "ready": "Ready for traffic: serving and not terminating (or the Service publishes "
                 "not-ready addresses). Unset means true.",
        "serving": "Its pod passes its readiness checks, terminating or not. Unset means "
                   "true.",
        "terminating": "Its pod is being deleted. Unset means false.",
    }),
    # One model name in core/v1 (an Endpoints subset's port) and discovery/v1.
    "EndpointPort": (("A port endpoints serve: of an Endpoints subset, or of every "
                      "endpoint of an EndpointSlice."), {
        "name": "The Service port's name; empty or a DNS label, unique among the ports.",
        "protocol": "TCP (default), UDP or SCTP.",
        "port": "The port number (in corral, the host port the agent allocated); unset "
                "in an EndpointSlice means every port.",
        "appProtocol": "The application protocol, a label-style name (kubernetes.io/h2c).",
    }),
    "ConfigMap": _object("Non-secret configuration as key/value pairs.",
                         data="UTF-8 values by key.", binaryData="Binary values, base64.",
                         immutable="When true, data can no longer change."),
    "Secret": _object("Sensitive data as key/value pairs.",
                      data="Values by key, base64-encoded.",
                      stringData="Write-only convenience: plain values merged into data.",
                      type="How to read the data, e.g. Opaque, kubernetes.io/tls.",
                      immutable="When true, data can no longer change."),
    "Namespace": _object("A scope for names; deleting it deletes everything in it.",
                         "Finalizers of the namespace.", "Active or Terminating."),
    "LimitRange": _object("Default and bounds of the resources of each container and pod "
                          "created in its namespace (the LimitRanger admission plugin).",
                          "The limits, one item per type."),
    "LimitRangeSpec": ("The limits of a LimitRange.", {
        "limits": "One item per type: Container, Pod or PersistentVolumeClaim.",
    }),
    "LimitRangeItem": ("One type's defaults and bounds, by resource name.", {
        "type": "Container (each container and init container), Pod (the sum over the "
                "pod's containers) or PersistentVolumeClaim.",
        "min": "The least request (and limit) allowed.",
        "max": "The largest limit (and request) allowed; a container must have a limit.",
        "default": "The limit of a container that names none (Container only; defaults "
                   "to max).",
        "defaultRequest": "The request of a container that names none (Container only; "
                          "defaults to default, else min).",
        "maxLimitRequestRatio": "The largest limit divided by request allowed, at least 1.",
    }),
    "Node": _object("A machine (in corral, an agent) that runs pods.",
                    "Schedulability and taints.", "Capacity, conditions and addresses, "
                    "reported by the node's agent."),
    "NodeSpec": ("The desired state of a node.", {
        "unschedulable": "When true no new pods are scheduled here (kubectl cordon).",
        "taints": "Taints pods must tolerate to be scheduled (or stay) here.",
    }),
    # One entry serves autoscaling/v2 and v1: a field a version lacks is skipped.
    "HorizontalPodAutoscaler": _object(
        "Sets the replicas of a scalable object (a Deployment, StatefulSet, ReplicaSet or "
        "custom resource with a scale subresource) from the metrics of its pods. Stored as "
        "autoscaling/v2; autoscaling/v1 is the same object with one CPU target.",
        "The target, the bounds and the metrics to follow.",
        "What the controller last saw and decided."),
    "HorizontalPodAutoscalerSpec": ("The desired behaviour of an autoscaler.", {
        "scaleTargetRef": "The object whose scale subresource is set (kind, name, apiVersion).",
        "minReplicas": "The fewest replicas it scales down to (default 1).",
        "maxReplicas": "The most replicas it scales up to; required.",
        "targetCPUUtilizationPercentage": "autoscaling/v1: the pods' average CPU use as a "
                                          "percentage of their requests to aim for.",
        "metrics": "autoscaling/v2: the metrics to aim for; the largest replica count any "
                   "of them asks for wins.",
        "behavior": "autoscaling/v2: how fast it may scale up and down (policies and "
                    "stabilization windows).",
    }),
}
