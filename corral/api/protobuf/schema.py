"""The protobuf messages corral decodes, with Kubernetes' field numbers.

Field numbers and types are facts from Kubernetes' published generated.proto
files (k8s.io/api core/v1, apps/v1, discovery/v1, autoscaling/v1 and v2, batch/v1, policy/v1, scheduling/v1, rbac/v1 and apimachinery's
meta/v1, runtime, util/intstr, api/resource); field names are the JSON names.
One line per field:

    "name=NUMBER[:TYPE][!]"

TYPE is a scalar (string, the default; int32, int64, bool, bytes), a message
defined here, a special (Time, Quantity, IntOrString: decoded to their JSON
forms), ``[T]`` for a repeated field or ``{T}`` for a map from string to T.
``-`` skips a field: an
object's status, which the server sets itself (create and update of the main
resource ignore it), is not decoded. ``!`` keeps a zero value: the field is a pointer in Go (replicas: 0 is not
"unset"), whereas Kubernetes' encoder writes every non-pointer field, so a zero
there only means "not given" and is dropped as JSON's omitempty would. A name
starting with ``^`` is an embedded struct whose fields JSON inlines into the
parent (Probe's handler, a key selector's LocalObjectReference).

A field missing here is not silently dropped: decoding reports it (415), so a
client falls back to JSON rather than losing data.
"""

from __future__ import annotations

_STANDARD_OBJECT = "metadata=1:ObjectMeta"

MESSAGES: dict[str, str] = {
    # ---- apimachinery meta/v1 -------------------------------------------------------
    "ObjectMeta": """name=1 generateName=2 namespace=3 selfLink=4 uid=5 resourceVersion=6
        generation=7:int64 creationTimestamp=8:Time deletionTimestamp=9:Time
        deletionGracePeriodSeconds=10:int64! labels=11:{string} annotations=12:{string}
        ownerReferences=13:[OwnerReference] finalizers=14:[string]""",
    "OwnerReference": """kind=1 name=3 uid=4 apiVersion=5 controller=6:bool!
        blockOwnerDeletion=7:bool!""",
    "LabelSelector": "matchLabels=1:{string} matchExpressions=2:[LabelSelectorRequirement]",
    "LabelSelectorRequirement": "key=1 operator=2 values=3:[string]",
    "DeleteOptions": """gracePeriodSeconds=1:int64! preconditions=2:Preconditions
        orphanDependents=3:bool! propagationPolicy=4 dryRun=5:[string]""",
    "Preconditions": "uid=1 resourceVersion=2",
    # ---- core/v1 objects ------------------------------------------------------------
    "Namespace": f"{_STANDARD_OBJECT} spec=2:NamespaceSpec status=3:-",
    "NamespaceSpec": "finalizers=1:[string]",
    "ConfigMap": f"""{_STANDARD_OBJECT} data=2:{{string}} binaryData=3:{{bytes}}
        immutable=4:bool!""",
    "Secret": f"""{_STANDARD_OBJECT} data=2:{{bytes}} type=3 stringData=4:{{string}}
        immutable=5:bool!""",
    "ServiceAccount": f"""{_STANDARD_OBJECT} secrets=2:[ObjectReference]
        imagePullSecrets=3:[LocalObjectReference] automountServiceAccountToken=4:bool!""",
    "ObjectReference": """kind=1 namespace=2 name=3 uid=4 apiVersion=5 resourceVersion=6
        fieldPath=7""",
    "Service": f"{_STANDARD_OBJECT} spec=2:ServiceSpec status=3:-",
    "ServiceSpec": """ports=1:[ServicePort] selector=2:{string} clusterIP=3 type=4
        externalIPs=5:[string] sessionAffinity=7 loadBalancerIP=8
        loadBalancerSourceRanges=9:[string] externalName=10 externalTrafficPolicy=11
        healthCheckNodePort=12:int32 publishNotReadyAddresses=13:bool
        clusterIPs=18:[string] ipFamilies=19:[string] ipFamilyPolicy=17
        allocateLoadBalancerNodePorts=20:bool! loadBalancerClass=21
        internalTrafficPolicy=22""",
    "ServicePort": """name=1 protocol=2 port=3:int32 targetPort=4:IntOrString
        nodePort=5:int32 appProtocol=6""",
    "ResourceQuota": f"{_STANDARD_OBJECT} spec=2:ResourceQuotaSpec status=3:-",
    "ResourceQuotaSpec": "hard=1:{Quantity} scopes=2:[string] scopeSelector=3:ScopeSelector",
    "ScopeSelector": "matchExpressions=1:[ScopedResourceSelectorRequirement]",
    "LimitRange": f"{_STANDARD_OBJECT} spec=2:LimitRangeSpec",
    "LimitRangeSpec": "limits=1:[LimitRangeItem]",
    "LimitRangeItem": """type=1 max=2:{Quantity} min=3:{Quantity} default=4:{Quantity}
        defaultRequest=5:{Quantity} maxLimitRequestRatio=6:{Quantity}""",
    "ScopedResourceSelectorRequirement": "scopeName=1 operator=2 values=3:[string]",
    "Pod": f"{_STANDARD_OBJECT} spec=2:PodSpec status=3:-",
    # ---- core/v1 pod template -------------------------------------------------------
    "PodTemplateSpec": f"{_STANDARD_OBJECT} spec=2:PodSpec",
    "PodSpec": """volumes=1:[Volume] containers=2:[Container] restartPolicy=3
        terminationGracePeriodSeconds=4:int64! activeDeadlineSeconds=5:int64! dnsPolicy=6
        nodeSelector=7:{string} serviceAccountName=8 serviceAccount=9 nodeName=10
        hostNetwork=11:bool hostPID=12:bool hostIPC=13:bool
        imagePullSecrets=15:[LocalObjectReference] hostname=16 subdomain=17
        affinity=18:Affinity schedulerName=19 initContainers=20:[Container]
        automountServiceAccountToken=21:bool! tolerations=22:[Toleration]
        hostAliases=23:[HostAlias] priorityClassName=24 priority=25:int32!
        shareProcessNamespace=27:bool! runtimeClassName=29 enableServiceLinks=30:bool!
        preemptionPolicy=31 overhead=32:{Quantity}
        topologySpreadConstraints=33:[TopologySpreadConstraint]
        setHostnameAsFQDN=35:bool!""",
    "Container": """name=1 image=2 command=3:[string] args=4:[string] workingDir=5
        ports=6:[ContainerPort] env=7:[EnvVar] resources=8:ResourceRequirements
        volumeMounts=9:[VolumeMount] livenessProbe=10:Probe readinessProbe=11:Probe
        lifecycle=12:Lifecycle terminationMessagePath=13 imagePullPolicy=14
        stdin=16:bool stdinOnce=17:bool tty=18:bool envFrom=19:[EnvFromSource]
        terminationMessagePolicy=20 startupProbe=22:Probe restartPolicy=24""",
    "ContainerPort": "name=1 hostPort=2:int32 containerPort=3:int32 protocol=4 hostIP=5",
    "EnvVar": "name=1 value=2 valueFrom=3:EnvVarSource",
    "EnvVarSource": """fieldRef=1:ObjectFieldSelector resourceFieldRef=2:ResourceFieldSelector
        configMapKeyRef=3:KeySelector secretKeyRef=4:KeySelector""",
    "ObjectFieldSelector": "apiVersion=1 fieldPath=2",
    "ResourceFieldSelector": "containerName=1 resource=2 divisor=3:Quantity",
    "KeySelector": "^ref=1:LocalObjectReference key=2 optional=3:bool!",
    "EnvFromSource": "prefix=1 configMapRef=2:EnvSource secretRef=3:EnvSource",
    "EnvSource": "^ref=1:LocalObjectReference optional=2:bool!",
    "LocalObjectReference": "name=1",
    "ResourceRequirements": "limits=1:{Quantity} requests=2:{Quantity}",
    "VolumeMount": """name=1 readOnly=2:bool mountPath=3 subPath=4 mountPropagation=5
        subPathExpr=6""",
    "Probe": """^handler=1:ProbeHandler initialDelaySeconds=2:int32 timeoutSeconds=3:int32
        periodSeconds=4:int32 successThreshold=5:int32 failureThreshold=6:int32
        terminationGracePeriodSeconds=7:int64!""",
    "ProbeHandler": """exec=1:ExecAction httpGet=2:HTTPGetAction tcpSocket=3:TCPSocketAction
        grpc=4:GRPCAction""",
    "Lifecycle": "postStart=1:LifecycleHandler preStop=2:LifecycleHandler",
    "LifecycleHandler": "exec=1:ExecAction httpGet=2:HTTPGetAction tcpSocket=3:TCPSocketAction",
    "ExecAction": "command=1:[string]",
    "HTTPGetAction": """path=1 port=2:IntOrString host=3 scheme=4
        httpHeaders=5:[HTTPHeader]""",
    "HTTPHeader": "name=1 value=2",
    "TCPSocketAction": "port=1:IntOrString host=2",
    "GRPCAction": "port=1:int32 service=2!",
    "Volume": "name=1 ^source=2:VolumeSource",
    "VolumeSource": """hostPath=1:HostPathVolumeSource emptyDir=2:EmptyDirVolumeSource
        secret=6:SecretVolumeSource persistentVolumeClaim=10:PVCVolumeSource
        configMap=19:ConfigMapVolumeSource""",
    "HostPathVolumeSource": "path=1 type=2!",
    "EmptyDirVolumeSource": "medium=1 sizeLimit=2:Quantity",
    "SecretVolumeSource": """secretName=1 items=2:[KeyToPath] defaultMode=3:int32!
        optional=4:bool!""",
    "ConfigMapVolumeSource": """^ref=1:LocalObjectReference items=2:[KeyToPath]
        defaultMode=3:int32! optional=4:bool!""",
    "PVCVolumeSource": "claimName=1 readOnly=2:bool",
    "KeyToPath": "key=1 path=2 mode=3:int32!",
    "Toleration": "key=1 operator=2 value=3 effect=4 tolerationSeconds=5:int64!",
    "HostAlias": "ip=1 hostnames=2:[string]",
    "TopologySpreadConstraint": """maxSkew=1:int32 topologyKey=2 whenUnsatisfiable=3
        labelSelector=4:LabelSelector""",
    "Affinity": """nodeAffinity=1:NodeAffinity podAffinity=2:PodAffinity
        podAntiAffinity=3:PodAffinity""",
    "NodeAffinity": """requiredDuringSchedulingIgnoredDuringExecution=1:NodeSelector
        preferredDuringSchedulingIgnoredDuringExecution=2:[PreferredSchedulingTerm]""",
    "NodeSelector": "nodeSelectorTerms=1:[NodeSelectorTerm]",
    "NodeSelectorTerm": """matchExpressions=1:[NodeSelectorRequirement]
        matchFields=2:[NodeSelectorRequirement]""",
    "NodeSelectorRequirement": "key=1 operator=2 values=3:[string]",
    "PreferredSchedulingTerm": "weight=1:int32 preference=2:NodeSelectorTerm",
    "PodAffinity": """requiredDuringSchedulingIgnoredDuringExecution=1:[PodAffinityTerm]
        preferredDuringSchedulingIgnoredDuringExecution=2:[WeightedPodAffinityTerm]""",
    "PodAffinityTerm": """labelSelector=1:LabelSelector namespaces=2:[string] topologyKey=3
        namespaceSelector=4:LabelSelector""",
    "WeightedPodAffinityTerm": "weight=1:int32 podAffinityTerm=2:PodAffinityTerm",
    # ---- apps/v1 ----------------------------------------------------------------------
    "Deployment": f"{_STANDARD_OBJECT} spec=2:DeploymentSpec status=3:-",
    "DeploymentSpec": """replicas=1:int32! selector=2:LabelSelector template=3:PodTemplateSpec
        strategy=4:DeploymentStrategy minReadySeconds=5:int32
        revisionHistoryLimit=6:int32! paused=7:bool progressDeadlineSeconds=9:int32!""",
    "DeploymentStrategy": "type=1 rollingUpdate=2:RollingUpdateDeployment",
    "RollingUpdateDeployment": "maxUnavailable=1:IntOrString maxSurge=2:IntOrString",
    # ---- batch/v1 ---------------------------------------------------------------------
    "Job": f"{_STANDARD_OBJECT} spec=2:JobSpec status=3:-",
    "CronJob": f"{_STANDARD_OBJECT} spec=2:CronJobSpec status=3:-",
    "CronJobSpec": """schedule=1 startingDeadlineSeconds=2:int64! concurrencyPolicy=3
        suspend=4:bool! jobTemplate=5:JobTemplateSpec successfulJobsHistoryLimit=6:int32!
        failedJobsHistoryLimit=7:int32! timeZone=8""",
    "JobTemplateSpec": f"{_STANDARD_OBJECT} spec=2:JobSpec",
    "JobSpec": """parallelism=1:int32! completions=2:int32! activeDeadlineSeconds=3:int64!
        selector=4:LabelSelector manualSelector=5:bool! template=6:PodTemplateSpec
        backoffLimit=7:int32! ttlSecondsAfterFinished=8:int32! completionMode=9
        suspend=10:bool! backoffLimitPerIndex=12:int32! maxFailedIndexes=13:int32!
        podReplacementPolicy=14 managedBy=15""",
    # ---- autoscaling/v1 and v2 (kubectl autoscale: 1.32 sends v1, 1.33 v2 first) -------
    "CrossVersionObjectReference": "kind=1 name=2 apiVersion=3",
    "HorizontalPodAutoscalerV1": f"""{_STANDARD_OBJECT} spec=2:HorizontalPodAutoscalerSpecV1
        status=3:-""",
    "HorizontalPodAutoscalerSpecV1": """scaleTargetRef=1:CrossVersionObjectReference
        minReplicas=2:int32! maxReplicas=3:int32 targetCPUUtilizationPercentage=4:int32!""",
    "HorizontalPodAutoscaler": f"""{_STANDARD_OBJECT} spec=2:HorizontalPodAutoscalerSpec
        status=3:-""",
    "HorizontalPodAutoscalerSpec": """scaleTargetRef=1:CrossVersionObjectReference
        minReplicas=2:int32! maxReplicas=3:int32 metrics=4:[MetricSpec]
        behavior=5:HorizontalPodAutoscalerBehavior""",
    "MetricSpec": """type=1 object=2:ObjectMetricSource pods=3:PodsMetricSource
        resource=4:ResourceMetricSource external=5:ExternalMetricSource
        containerResource=7:ContainerResourceMetricSource""",
    "MetricTarget": "type=1 value=2:Quantity averageValue=3:Quantity averageUtilization=4:int32!",
    "MetricIdentifier": "name=1 selector=2:LabelSelector",
    "ResourceMetricSource": "name=1 target=2:MetricTarget",
    "ContainerResourceMetricSource": "name=1 target=2:MetricTarget container=3",
    "PodsMetricSource": "metric=1:MetricIdentifier target=2:MetricTarget",
    "ObjectMetricSource": """describedObject=1:CrossVersionObjectReference
        target=2:MetricTarget metric=3:MetricIdentifier""",
    "ExternalMetricSource": "metric=1:MetricIdentifier target=2:MetricTarget",
    "HorizontalPodAutoscalerBehavior": "scaleUp=1:HPAScalingRules scaleDown=2:HPAScalingRules",
    "HPAScalingRules": """stabilizationWindowSeconds=3:int32! selectPolicy=1
        policies=2:[HPAScalingPolicy]""",
    "HPAScalingPolicy": "type=1 value=2:int32 periodSeconds=3:int32",
    # ---- policy/v1 ------------------------------------------------------------------
    "Eviction": f"{_STANDARD_OBJECT} deleteOptions=2:DeleteOptions",
    # ---- authentication/v1, authorization/v1 (kubectl auth whoami, can-i) -------------
    "SelfSubjectReview": f"{_STANDARD_OBJECT} status=2:-",
    "SelfSubjectAccessReview": f"""{_STANDARD_OBJECT} spec=2:SelfSubjectAccessReviewSpec
        status=3:-""",
    "SelfSubjectAccessReviewSpec": """resourceAttributes=1:ResourceAttributes
        nonResourceAttributes=2:NonResourceAttributes""",
    "ResourceAttributes": """namespace=1 verb=2 group=3 version=4 resource=5 subresource=6
        name=7""",
    "NonResourceAttributes": "path=1 verb=2",
    "TokenRequest": f"{_STANDARD_OBJECT} spec=2:TokenRequestSpec status=3:-",
    "TokenRequestSpec": """audiences=1:[string] expirationSeconds=4:int64!
        boundObjectRef=3:BoundObjectReference""",
    "BoundObjectReference": "kind=1 apiVersion=2 name=3 uid=4",
    "TokenReview": f"{_STANDARD_OBJECT} spec=2:TokenReviewSpec status=3:-",
    "TokenReviewSpec": "token=1 audiences=2:[string]",
    "SubjectAccessReview": f"""{_STANDARD_OBJECT} spec=2:SubjectAccessReviewSpec
        status=3:-""",
    "SubjectAccessReviewSpec": """resourceAttributes=1:ResourceAttributes
        nonResourceAttributes=2:NonResourceAttributes user=3 groups=4:[string] uid=6""",
    "SelfSubjectRulesReview": f"{_STANDARD_OBJECT} spec=2:SelfSubjectRulesReviewSpec status=3:-",
    "SelfSubjectRulesReviewSpec": "namespace=1",
    # ---- policy/v1 (kubectl create pdb) ------------------------------------------------
    "PodDisruptionBudget": f"{_STANDARD_OBJECT} spec=2:PodDisruptionBudgetSpec status=3:-",
    "PodDisruptionBudgetSpec": """minAvailable=1:IntOrString selector=2:LabelSelector
        maxUnavailable=3:IntOrString unhealthyPodEvictionPolicy=4""",
    # ---- scheduling/v1 ----------------------------------------------------------------
    "PriorityClass": f"""{_STANDARD_OBJECT} value=2:int32! globalDefault=3:bool description=4
        preemptionPolicy=5""",
    # ---- rbac.authorization.k8s.io/v1 (kubectl create role|rolebinding|...) -------------
    "PolicyRule": """verbs=1:[string] apiGroups=2:[string] resources=3:[string]
        resourceNames=4:[string] nonResourceURLs=5:[string]""",
    "AggregationRule": "clusterRoleSelectors=1:[LabelSelector]",
    "Role": f"{_STANDARD_OBJECT} rules=2:[PolicyRule]",
    "ClusterRole": f"{_STANDARD_OBJECT} rules=2:[PolicyRule] aggregationRule=3:AggregationRule",
    "Subject": "kind=1 apiGroup=2 name=3 namespace=4",
    "RoleRef": "apiGroup=1 kind=2 name=3",
    "RoleBinding": f"{_STANDARD_OBJECT} subjects=2:[Subject] roleRef=3:RoleRef",
    "ClusterRoleBinding": f"{_STANDARD_OBJECT} subjects=2:[Subject] roleRef=3:RoleRef",
    # ---- discovery.k8s.io/v1 (client-go controllers write EndpointSlices) ------------
    "EndpointSlice": f"""{_STANDARD_OBJECT} endpoints=2:[SliceEndpoint]
        ports=3:[SliceEndpointPort] addressType=4""",
    "SliceEndpoint": """addresses=1:[string] conditions=2:EndpointConditions hostname=3
        targetRef=4:ObjectReference deprecatedTopology=5:{string} nodeName=6 zone=7
        hints=8:EndpointHints""",
    "EndpointConditions": "ready=1:bool! serving=2:bool! terminating=3:bool!",
    "EndpointHints": "forZones=1:[ForZone] forNodes=2:[ForNode]",
    "ForZone": "name=1",
    "ForNode": "name=1",
    "SliceEndpointPort": "name=1 protocol=2 port=3:int32! appProtocol=4",
    # ---- certificates/v1 (kubectl certificate approve|deny PUTs the approval) ------
    # spec.extra (6) is skipped: the server sets the requester's fields itself.
    "CertificateSigningRequest": f"""{_STANDARD_OBJECT} spec=2:CertificateSigningRequestSpec
        status=3:CertificateSigningRequestStatus""",
    "CertificateSigningRequestSpec": """request=1:bytes username=2 uid=3 groups=4:[string]
        usages=5:[string] extra=6:[-] signerName=7 expirationSeconds=8:int32!""",
    "CertificateSigningRequestStatus": """conditions=1:[CertificateSigningRequestCondition]
        certificate=2:bytes""",
    "CertificateSigningRequestCondition": """type=1 reason=2 message=3 lastUpdateTime=4:Time
        lastTransitionTime=5:Time status=6""",
}

# The message of each kind a protobuf body may carry, by (apiVersion, kind).
# DeleteOptions comes with whatever group-version the DELETE was sent to.
KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io/v1", "TokenReview"): "TokenReview",
    ("authorization.k8s.io/v1", "SubjectAccessReview"): "SubjectAccessReview",
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): "SubjectAccessReview",
    ("v1", "Service"): "Service",
    ("v1", "ResourceQuota"): "ResourceQuota",
    ("v1", "LimitRange"): "LimitRange",
    ("v1", "Pod"): "Pod",
    ("apps/v1", "Deployment"): "Deployment",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
    ("scheduling.k8s.io/v1", "PriorityClass"): "PriorityClass",
    ("policy/v1", "Eviction"): "Eviction",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "HorizontalPodAutoscalerV1",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "HorizontalPodAutoscaler",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    ("certificates.k8s.io/v1", "CertificateSigningRequest"): "CertificateSigningRequest",
    ("discovery.k8s.io/v1", "EndpointSlice"): "EndpointSlice",
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): "SelfSubjectAccessReview",
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): "SelfSubjectRulesReview",
}
