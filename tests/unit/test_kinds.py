"""Models: realistic manifests of every kind round-trip unchanged, bad shapes give
Invalid with wire paths, unknown fields are found, defaults are applied."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from corral.agent.csr import csr_object, new_key, request_pem
from corral.api import kinds
from corral.api.defaults import JOB_CONTROLLER_UID, apply_defaults
from corral.api.errors import BadRequest, Invalid
from corral.api.kinds.apps import Deployment
from corral.api.kinds.batch import Job
from corral.api.kinds.core import Pod, Secret
from corral.api.kinds.service import Service
from corral.api.resources import RESOURCES

META = {
    "name": "web", "namespace": "default", "uid": "0b5f-11", "resourceVersion": "42",
    "generation": 3, "creationTimestamp": "2024-05-01T10:00:00Z",
    "labels": {"app": "web", "tier": "front"}, "annotations": {"example.com/note": "x"},
    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d",
                         "uid": "77aa", "controller": True, "blockOwnerDeletion": True}],
    "finalizers": ["example.com/cleanup"],
    "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}],
}

PROBE = {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP",
                     "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
         "initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1,
         "successThreshold": 1, "failureThreshold": 3}

POD_SPEC: dict[str, Any] = {
    "initContainers": [{"name": "init", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
    "containers": [{
        "name": "app", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
        "command": ["python3", "-m", "http.server"], "args": ["8080"], "workingDir": "/srv",
        "env": [{"name": "MODE", "value": ""},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw",
                                                               "optional": False}}}],
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                  {"containerPort": 9090, "hostPort": 0, "protocol": "UDP"}],
        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                      "limits": {"cpu": "1", "memory": "128Mi"}},
        "livenessProbe": PROBE,
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5},
        "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "failureThreshold": 30,
                         "terminationGracePeriodSeconds": 5},
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": False}],
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "1"]}}},
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
    }],
    "volumes": [{"name": "data", "emptyDir": {}},
                {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}],
    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler", "serviceAccountName": "default",
    "securityContext": {"fsGroup": 2000}, "hostNetwork": False,
    "nodeSelector": {"disk": "ssd"},
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                                      {"key": "cores", "operator": "Gt", "values": ["2"]}],
                 "matchFields": [{"key": "metadata.name", "operator": "NotIn",
                                  "values": ["n9"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [
                    {"key": "gpu", "operator": "DoesNotExist"}]}}]},
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}},
                 "topologyKey": "kubernetes.io/hostname"}],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": {
                    "labelSelector": {"matchExpressions": [
                        {"key": "app", "operator": "Exists"}]},
                    "topologyKey": "zone"}}]},
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "zone",
             "namespaces": ["db"]}]},
    },
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "web",
                     "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                     "effect": "NoExecute", "tolerationSeconds": 300}],
    "priorityClassName": "high", "priority": 1000, "preemptionPolicy": "PreemptLowerPriority",
    "activeDeadlineSeconds": 600, "hostname": "web-0", "subdomain": "web",
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                   "whenUnsatisfiable": "ScheduleAnyway",
                                   "labelSelector": {"matchLabels": {"app": "web"}}}],
}

POD_STATUS = {
    "phase": "Running",
    "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": "2024-05-01T10:00:01Z",
                    "lastTransitionTime": "2024-05-01T10:00:01Z"},
                   {"type": "PodScheduled", "status": "True", "reason": "Bound",
                    "message": "ok", "lastTransitionTime": "2024-05-01T10:00:00Z"}],
    "hostIP": "127.0.1.2", "hostIPs": [{"ip": "127.0.1.2"}], "podIP": "127.0.1.2",
    "podIPs": [{"ip": "127.0.1.2"}], "startTime": "2024-05-01T10:00:00Z",
    "nominatedNodeName": "n2", "qosClass": "Burstable", "reason": "", "message": "",
    "containerStatuses": [{
        "name": "app", "ready": True, "started": True, "restartCount": 2,
        "image": "nginx:1.25", "imageID": "sha256:abc", "containerID": "corral://123",
        "state": {"running": {"startedAt": "2024-05-01T10:00:02Z"}},
        "lastState": {"terminated": {"exitCode": 137, "signal": 9, "reason": "OOMKilled",
                                     "message": "", "startedAt": "2024-05-01T09:00:00Z",
                                     "finishedAt": "2024-05-01T09:59:00Z"}}}],
    "initContainerStatuses": [{
        "name": "init", "ready": False, "restartCount": 0, "image": "busybox:1.36",
        "imageID": "", "state": {"waiting": {"reason": "PodInitializing", "message": "m"}}}],
}

TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}

MANIFESTS: dict[str, dict[str, Any]] = {
    "Namespace": {"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
    "Node": {
        "spec": {"unschedulable": False, "podCIDR": "10.0.1.0/24", "podCIDRs": ["10.0.1.0/24"],
                 "providerID": "corral://n1",
                 "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule",
                             "timeAdded": "2024-05-01T10:00:00Z"}]},
        "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "allocatable": {"cpu": "3800m", "memory": "7Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "AgentReady",
                                   "lastHeartbeatTime": "2024-05-01T10:00:00Z",
                                   "lastTransitionTime": "2024-05-01T09:00:00Z"}],
                   "addresses": [{"type": "InternalIP", "address": "127.0.1.1"},
                                 {"type": "Hostname", "address": "n1"}],
                   "nodeInfo": {"kubeletVersion": "corral-0.1", "architecture": "amd64"},
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}},
    },
    "Pod": {"spec": {**POD_SPEC, "nodeName": "n1"}, "status": POD_STATUS},
    "Service": {
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http",
                            "nodePort": 30080},
                           {"name": "metrics", "port": 9090, "targetPort": 9090}],
                 "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                 "externalIPs": ["192.0.2.1"], "sessionAffinity": "None",
                 "publishNotReadyAddresses": False},
        "status": {"loadBalancer": {}},
    },
    "Endpoints": {"subsets": [{
        "addresses": [{"ip": "127.0.1.2", "hostname": "web-0", "nodeName": "n1",
                       "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0",
                                     "uid": "u1"}}],
        "notReadyAddresses": [{"ip": "127.0.1.3"}],
        "ports": [{"name": "http", "port": 31001, "protocol": "TCP"}]}]},
    "EndpointSlice": {
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.1.2"],
                       "conditions": {"ready": True, "serving": True, "terminating": False},
                       "hostname": "web-0", "nodeName": "n1", "zone": "z1",
                       "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0",
                                     "uid": "u1"},
                       "hints": {"forZones": [{"name": "z1"}], "forNodes": [{"name": "n1"}]}}],
        "ports": [{"name": "http", "port": 31001, "protocol": "TCP", "appProtocol": "http"}]},
    "Event": {
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": "u1",
                           "apiVersion": "v1", "resourceVersion": "7",
                           "fieldPath": "spec.containers{app}"},
        "reason": "Started", "message": "Started container app", "type": "Normal", "count": 1,
        "firstTimestamp": "2024-05-01T10:00:00Z", "lastTimestamp": "2024-05-01T10:00:00Z",
        "eventTime": "2024-05-01T10:00:00.123456Z", "source": {"component": "agent", "host": "n1"},
        "reportingComponent": "corral-agent", "reportingInstance": "n1", "action": "Start",
    },
    "ConfigMap": {"data": {"k": "v", "empty": ""}, "binaryData": {"b": "AAE="},
                  "immutable": False},
    "Secret": {"data": {"pw": "aHVudGVyMg=="}, "type": "Opaque", "immutable": True},
    "ServiceAccount": {"secrets": [{"name": "robot-token"}],
                       "imagePullSecrets": [{"name": "registry"}],
                       "automountServiceAccountToken": False},
    "ResourceQuota": {"spec": {"hard": {"pods": "10", "requests.cpu": "4"},
                               "scopes": ["NotBestEffort"]},
                      "status": {"hard": {"pods": "10"}, "used": {"pods": "0"}}},
    "LimitRange": {"spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"},
         "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "200m"},
         "maxLimitRequestRatio": {"cpu": "4"}},
        {"type": "Pod", "max": {"memory": "2Gi"}}]}},
    "Lease": {"spec": {"holderIdentity": "master-1", "leaseDurationSeconds": 15,
                       "acquireTime": "2024-05-01T10:00:00.000000Z",
                       "renewTime": "2024-05-01T10:00:05.123456Z", "leaseTransitions": 0}},
    "Deployment": {
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"},
                                             "matchExpressions": [{"key": "tier",
                                                                   "operator": "NotIn",
                                                                   "values": ["db"]}]},
                 "template": TEMPLATE,
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
                 "minReadySeconds": 0, "revisionHistoryLimit": 10, "paused": False,
                 "progressDeadlineSeconds": 600},
        "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3,
                   "readyReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 1,
                   "collisionCount": 0,
                   "conditions": [{"type": "Available", "status": "False",
                                   "reason": "MinimumReplicasUnavailable", "message": "m",
                                   "lastUpdateTime": "2024-05-01T10:00:00Z",
                                   "lastTransitionTime": "2024-05-01T10:00:00Z"}]},
    },
    "ReplicaSet": {
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": TEMPLATE, "minReadySeconds": 5},
        "status": {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3,
                   "availableReplicas": 3, "observedGeneration": 1, "conditions": []},
    },
    "ReplicationController": {
        "spec": {"replicas": 3, "selector": {"app": "web"}, "template": TEMPLATE,
                 "minReadySeconds": 5},
        "status": {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 3,
                   "availableReplicas": 3, "observedGeneration": 1},
    },
    "DaemonSet": {
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE,
                 "updateStrategy": {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0}},
                 "minReadySeconds": 5, "revisionHistoryLimit": 10},
        "status": {"currentNumberScheduled": 2, "numberMisscheduled": 0,
                   "desiredNumberScheduled": 2, "numberReady": 2, "observedGeneration": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 2,
                   "numberUnavailable": 0},
    },
    "StatefulSet": {
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": TEMPLATE, "serviceName": "web",
                 "podManagementPolicy": "OrderedReady",
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}],
                 "revisionHistoryLimit": 10,
                 "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                          "whenScaled": "Retain"}},
        "status": {"replicas": 3, "readyReplicas": 3, "currentReplicas": 3,
                   "updatedReplicas": 3, "availableReplicas": 3, "observedGeneration": 1,
                   "currentRevision": "web-7c9f", "updateRevision": "web-7c9f"},
    },
    "ControllerRevision": {
        "data": {"spec": {"template": {"$patch": "replace", **TEMPLATE}}}, "revision": 2,
    },
    "Job": {
        "spec": {"parallelism": 2, "completions": 4, "completionMode": "Indexed",
                 "backoffLimit": 0, "activeDeadlineSeconds": 100, "ttlSecondsAfterFinished": 0,
                 "suspend": False, "manualSelector": True,
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {**POD_SPEC, "restartPolicy": "Never"}}},
        "status": {"active": 1, "succeeded": 2, "failed": 0, "ready": 1,
                   "startTime": "2024-05-01T10:00:00Z", "completionTime": "2024-05-01T10:01:00Z",
                   "completedIndexes": "0-1", "failedIndexes": "",
                   "uncountedTerminatedPods": {"succeeded": ["u9"], "failed": []},
                   "conditions": [{"type": "Complete", "status": "True",
                                   "lastProbeTime": "2024-05-01T10:01:00Z",
                                   "lastTransitionTime": "2024-05-01T10:01:00Z"}]},
    },
    "PriorityClass": {"value": 1000, "globalDefault": False, "preemptionPolicy": "Never",
                      "description": "batch work"},
    "CronJob": {
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Europe/Berlin",
                 "startingDeadlineSeconds": 60, "concurrencyPolicy": "Forbid", "suspend": False,
                 "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                 "jobTemplate": {"metadata": {"labels": {"team": "a"}},
                                 "spec": {"backoffLimit": 2, "template": {
                                     "metadata": {"labels": {"team": "a"}}, "spec": {
                                     "restartPolicy": "Never",
                                     "containers": [{"name": "c", "image": "x"}]}}}}},
        "status": {"active": [{"kind": "Job", "namespace": "default", "name": "tick-1",
                               "uid": "u1", "apiVersion": "batch/v1"}],
                   "lastScheduleTime": "2024-05-01T10:00:00Z",
                   "lastSuccessfulTime": "2024-05-01T09:55:10Z"}},
    "PodDisruptionBudget": {
        "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "web"}},
                 "unhealthyPodEvictionPolicy": "AlwaysAllow"},
        "status": {"observedGeneration": 2, "disruptedPods": {"web-1": "2024-05-01T10:00:00Z"},
                   "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2,
                   "expectedPods": 4,
                   "conditions": [{"type": "DisruptionAllowed", "status": "True",
                                   "reason": "SufficientPods", "message": "",
                                   "observedGeneration": 2,
                                   "lastTransitionTime": "2024-05-01T10:00:00Z"}]}},
    "HorizontalPodAutoscaler": {
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 2, "maxReplicas": 10,
                 "metrics": [
                     {"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 50}}},
                     {"type": "ContainerResource", "containerResource": {
                         "name": "memory", "container": "app",
                         "target": {"type": "AverageValue", "averageValue": "200Mi"}}},
                     {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {
                         "type": "AverageValue", "averageValue": "10"}}}],
                 "behavior": {
                     "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                 "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                              {"type": "Percent", "value": 100,
                                               "periodSeconds": 15}]},
                     "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                                   "policies": [{"type": "Percent", "value": 50,
                                                 "periodSeconds": 60}]}}},
        "status": {"observedGeneration": 1, "lastScaleTime": "2024-05-01T10:00:00Z",
                   "currentReplicas": 3, "desiredReplicas": 4,
                   "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                       "averageUtilization": 70, "averageValue": "70m"}}}],
                   "conditions": [{"type": "AbleToScale", "status": "True",
                                   "lastTransitionTime": "2024-05-01T10:00:00Z",
                                   "reason": "SucceededRescale",
                                   "message": "the HPA controller was able to update the target "
                                              "scale to 4"}]}},
    "CustomResourceDefinition": {
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
                 "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                           "listKind": "CronTabList", "shortNames": ["ct"],
                           "categories": ["all"]},
                 "versions": [{
                     "name": "v1", "served": True, "storage": True,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                         "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}},
                     "subresources": {"status": {}, "scale": {
                         "specReplicasPath": ".spec.replicas",
                         "statusReplicasPath": ".status.replicas",
                         "labelSelectorPath": ".status.selector"}},
                     "additionalPrinterColumns": [{"name": "Spec", "type": "string",
                                                   "priority": 0, "jsonPath": ".spec.cronSpec"}],
                 }],
                 "conversion": {"strategy": "None"}},
        "status": {"conditions": [{"type": "Established", "status": "True",
                                   "reason": "InitialNamesAccepted", "message": "",
                                   "lastTransitionTime": "2024-05-01T10:00:00Z"}],
                   "acceptedNames": {"plural": "crontabs", "kind": "CronTab"},
                   "storedVersions": ["v1"]},
    },
    "Alloc": {
        "spec": {"resources": {"cpu": "2", "memory": "1Gi"}, "slots": 4, "nodeName": "n1",
                 "priorityClassName": "batch", "priority": 1000,
                 "preemptionPolicy": "PreemptLowerPriority", "nodeSelector": {"disk": "ssd"},
                 "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                 "task": {"command": ["sh", "-c", "echo $JOB_COMPLETION_INDEX"],
                          "env": [{"name": "A", "value": "1"}], "resources": {"cpu": "500m"}},
                 "ranges": "0-99,120", "backoffLimitPerIndex": 1,
                 "tasks": [{"id": "t1", "name": "t", "command": ["sh", "-c", "true"],
                            "env": [{"name": "A", "value": "1"}], "workingDir": "/tmp",
                            "resources": {"cpu": "100m"}, "group": "g", "kill": True,
                            "killGraceSeconds": 2.5}]},
        "status": {"phase": "Running", "hostIP": "127.0.1.1", "running": 4,
                   "claimed": "0-50", "completed": "0-40", "failedIndexes": "41",
                   "failedTasks": [{"index": 41, "exitCode": 3, "reason": "Error",
                                    "failures": 2}],
                   "failures": 2,
                   "tasks": [{"id": "t1", "state": "TASK_FAILED", "exitCode": 3,
                              "reason": "REASON_COMMAND_EXECUTOR_FAILED", "message": "m",
                              "time": "2024-05-01T10:02:00Z"}],
                   "conditions": [{"type": "Scheduled", "status": "True",
                                   "lastTransitionTime": "2024-05-01T10:01:00Z"}]},
    },
    "Framework": {
        "spec": {"name": "spark", "user": "root", "roles": ["analytics", "a/b"],
                 "failoverTimeout": 3600.5, "capabilities": ["MULTI_ROLE", "PARTITION_AWARE"],
                 "hostname": "h", "principal": "p", "webuiUrl": "http://h:4040",
                 "checkpoint": True},
        "status": {"phase": "Disconnected", "registeredTime": "2024-05-01T10:00:00Z",
                   "disconnectedTime": "2024-05-01T10:05:00Z", "dominantShare": 0.25,
                   "tasks": 3, "allocs": 1},
    },
    "Role": {"rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                        "verbs": ["get"], "resourceNames": ["a"]}]},
    "ClusterRole": {"rules": [{"nonResourceURLs": ["/healthz/*"], "verbs": ["get"]}],
                    "aggregationRule": {"clusterRoleSelectors": [
                        {"matchLabels": {"rbac.example/agg": "true"}}]}},
    "RoleBinding": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": "view"},
                    "subjects": [{"kind": "ServiceAccount", "name": "default",
                                  "namespace": "team"}]},
    "ClusterRoleBinding": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                       "kind": "ClusterRole", "name": "view"},
                           "subjects": [{"kind": "Group", "name": "dev",
                                         "apiGroup": "rbac.authorization.k8s.io"}]},
    "CertificateSigningRequest": {
        "spec": {**csr_object("x", request_pem(new_key(), "system:node:n1", ("system:nodes",)),
                              "kubernetes.io/kube-apiserver-client-kubelet",
                              ["digital signature", "client auth"], 3600)["spec"],
                 "username": "system:bootstrap:abcdef", "uid": "",
                 "groups": ["system:bootstrappers", "system:authenticated"]},
        "status": {"conditions": [{"type": "Approved", "status": "True",
                                   "reason": "AutoApproved", "message": "ok",
                                   "lastUpdateTime": "2024-05-01T10:00:00Z",
                                   "lastTransitionTime": "2024-05-01T10:00:00Z"}],
                   "certificate": "LS0tLS1CRUdJTi0tLS0t"}},
}


def _manifest(kind: str) -> dict[str, Any]:
    res = next(r for r in RESOURCES if r.kind == kind)
    meta = copy.deepcopy(META)
    if not res.namespaced:
        del meta["namespace"]
    if kind == "CustomResourceDefinition":  # named <plural>.<group>
        meta["name"] = "crontabs.stable.example.com"
    return {"apiVersion": res.api_version, "kind": kind, "metadata": meta,
            **copy.deepcopy(MANIFESTS[kind])}


def test_every_served_kind_has_a_model_and_a_manifest() -> None:
    assert {r.kind for r in RESOURCES} <= set(kinds.MODELS)
    assert {r.kind for r in RESOURCES} == set(MANIFESTS)


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_round_trip_is_unchanged(kind: str) -> None:
    manifest = _manifest(kind)
    obj = kinds.decode(kind, manifest)
    assert kinds.encode(obj) == manifest
    assert kinds.unknown_fields(obj) == []


SUBRESOURCE_BODIES: dict[str, dict[str, Any]] = {
    "Binding": {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}},
    "Scale": {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "d"},
              "spec": {"replicas": 0}, "status": {"replicas": 2, "selector": "app=web"}},
    "Eviction": {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"},
                 "deleteOptions": {"gracePeriodSeconds": 0}},
    "DeleteOptions": {"apiVersion": "apps/v1", "kind": "DeleteOptions",
                      "gracePeriodSeconds": 0, "propagationPolicy": "Foreground",
                      "preconditions": {"uid": "u", "resourceVersion": "3"},
                      "dryRun": ["All"], "orphanDependents": False},
    "Status": {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
               "message": "m", "reason": "Invalid", "code": 422,
               "details": {"name": "p", "kind": "Pod", "causes": [
                   {"reason": "FieldValueRequired", "message": "Required value",
                    "field": "spec.containers"}]}},
}


@pytest.mark.parametrize("kind", sorted(SUBRESOURCE_BODIES))
def test_subresource_bodies_round_trip(kind: str) -> None:
    body = SUBRESOURCE_BODIES[kind]
    assert kinds.encode(kinds.decode(kind, copy.deepcopy(body))) == body


def test_typed_access_uses_python_names() -> None:
    pod = kinds.decode("Pod", _manifest("Pod"))
    assert isinstance(pod, Pod)
    assert pod.status is not None and pod.status.pod_ip == "127.0.1.2"
    container = pod.spec.containers[0]
    assert container.liveness_probe is not None
    assert container.liveness_probe.http_get is not None
    assert container.liveness_probe.http_get.port == "http"
    assert pod.metadata.controller_ref() is not None


def test_numbers_as_quantities_become_strings() -> None:
    pod = kinds.decode("Pod", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"cpu": 1, "memory": 1024}}}]}})
    resources = kinds.encode(pod)["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "1", "memory": "1024"}}


def test_missing_type_meta_is_filled_from_the_kind() -> None:
    obj = kinds.encode(kinds.decode("Deployment", {"metadata": {"name": "d"}}))
    assert (obj["apiVersion"], obj["kind"]) == ("apps/v1", "Deployment")


@pytest.mark.parametrize(("kind", "body"), [
    ("Pod", {"kind": "Service", "metadata": {"name": "p"}}),
    ("Pod", {"apiVersion": "apps/v1", "metadata": {"name": "p"}}),
    ("Deployment", {"apiVersion": "v1", "kind": "Deployment"}),
    ("Job", {"apiVersion": "batch/v2", "kind": "Job"}),
])
def test_wrong_kind_or_version_is_a_bad_request(kind: str, body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        kinds.decode(kind, body)


SHAPE_ERRORS = [
    ("Deployment", {"spec": {"replicas": "three"}}, "spec.replicas",
     'Invalid value: "three": must be an integer'),
    ("Deployment", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "ports": [{"containerPort": "abc"}]}]}}}},
     "spec.template.spec.containers[0].ports[0].containerPort",
     'Invalid value: "abc": must be an integer'),
    ("Pod", {"spec": {"containers": [{"image": "x"}]}}, "spec.containers[0].name",
     "Required value"),
    ("Pod", {"metadata": {"name": "p", "labels": {"v": 1}}}, "metadata.labels[v]",
     "Invalid value: 1: must be a string"),
    ("Pod", {"spec": {"containers": [{"name": "c", "readinessProbe": {
        "httpGet": {"port": 1.5}}}]}}, "spec.containers[0].readinessProbe.httpGet.port",
     "Invalid value: 1.5: must be an integer or a string"),
    ("Pod", {"spec": {"hostNetwork": "yes"}}, "spec.hostNetwork",
     'Invalid value: "yes": must be a boolean'),
    ("Pod", {"spec": {"containers": {"name": "c"}}}, "spec.containers",
     'Invalid value: "object": must be an array'),
    ("Pod", {"spec": "nope"}, "spec", 'Invalid value: "nope": must be an object'),
    ("Service", {"spec": {"ports": [{"port": 80, "targetPort": [1]}]}},
     "spec.ports[0].targetPort", 'Invalid value: "array": must be an integer or a string'),
    ("Node", {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": "x"}}}},
     "status.daemonEndpoints.kubeletEndpoint.Port", 'Invalid value: "x": must be an integer'),
    ("Job", {"spec": {"suspend": 0}}, "spec.suspend", "Invalid value: 0: must be a boolean"),
    ("ConfigMap", {"data": {"k": 5}}, "data[k]", "Invalid value: 5: must be a string"),
]


@pytest.mark.parametrize(("kind", "body", "field", "message"), SHAPE_ERRORS,
                         ids=[e[2] for e in SHAPE_ERRORS])
def test_bad_shapes_are_invalid_with_wire_paths(
    kind: str, body: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        kinds.decode(kind, {"metadata": {"name": "x"}, **body})
    causes = {c.field: c.message for c in caught.value.causes}
    assert causes.get(field) == message, causes


def test_unknown_fields_are_found_at_any_depth_and_kept() -> None:
    manifest = _manifest("Deployment")
    manifest["spec"]["replica"] = 3
    manifest["spec"]["template"]["spec"]["containers"][0]["imagePolicy"] = "x"
    manifest["metadata"]["labelz"] = {}
    obj = kinds.decode("Deployment", manifest)
    assert sorted(kinds.unknown_fields(obj)) == [
        "metadata.labelz", "spec.replica", "spec.template.spec.containers[0].imagePolicy"]
    assert kinds.encode(obj) == manifest


def test_zero_false_and_empty_values_survive_encoding() -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {}},
            "data": {}, "immutable": False}
    assert kinds.encode(kinds.decode("ConfigMap", body)) == body


# ---- defaults -----------------------------------------------------------------------

def _defaulted(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    obj = kinds.decode(kind, {"metadata": {"name": "x", "uid": "u-1"}, **body})
    apply_defaults(obj)
    return kinds.encode(obj)


def test_pod_defaults() -> None:
    spec = _defaulted("Pod", {"spec": {"containers": [{
        "name": "c", "image": "app", "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "1"}, "requests": {"memory": "1Mi"}},
        "livenessProbe": {"httpGet": {"port": 80}}}]}})["spec"]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"], spec["dnsPolicy"],
            spec["schedulerName"]) == ("Always", 30, "ClusterFirst", "default-scheduler")
    container = spec["containers"][0]
    assert container["imagePullPolicy"] == "Always"
    assert container["ports"][0]["protocol"] == "TCP"
    assert container["resources"]["requests"] == {"memory": "1Mi", "cpu": "1"}
    assert container["livenessProbe"] == {
        "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "periodSeconds": 10,
        "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3}


@pytest.mark.parametrize(("image", "policy"), [
    ("app", "Always"), ("app:latest", "Always"), ("app:1.2", "IfNotPresent"),
    ("reg:5000/app", "Always"), ("reg:5000/app:v1", "IfNotPresent"),
    ("app@sha256:abc", "IfNotPresent"),
])
def test_image_pull_policy_default(image: str, policy: str) -> None:
    spec = _defaulted("Pod", {"spec": {"containers": [{"name": "c", "image": image}]}})["spec"]
    assert spec["containers"][0]["imagePullPolicy"] == policy


def test_set_values_are_not_overwritten() -> None:
    spec = _defaulted("Pod", {"spec": {"restartPolicy": "Never",
                                       "terminationGracePeriodSeconds": 0,
                                       "containers": [{"name": "c"}]}})["spec"]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"]) == ("Never", 0)


def test_deployment_defaults() -> None:
    obj = kinds.decode("Deployment", {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [
            {"name": "c"}]}}}})
    apply_defaults(obj)
    assert isinstance(obj, Deployment)
    spec = kinds.encode(obj)["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)
    assert spec["template"]["spec"]["restartPolicy"] == "Always"


def test_recreate_strategy_gets_no_rolling_update() -> None:
    spec = _defaulted("Deployment", {"spec": {"strategy": {"type": "Recreate"}}})["spec"]
    assert spec["strategy"] == {"type": "Recreate"}


def test_replica_set_defaults() -> None:
    assert _defaulted("ReplicaSet", {"spec": {}})["spec"]["replicas"] == 1


@pytest.mark.parametrize(("given", "parallelism", "completions"), [
    ({}, 1, 1), ({"parallelism": 3}, 3, None), ({"completions": 5}, 1, 5),
    ({"parallelism": 2, "completions": 4}, 2, 4),
])
def test_job_parallelism_and_completions(
    given: dict[str, int], parallelism: int, completions: int | None
) -> None:
    spec = _defaulted("Job", {"spec": given})["spec"]
    assert (spec["parallelism"], spec.get("completions")) == (parallelism, completions)
    assert (spec["backoffLimit"], spec["completionMode"], spec["suspend"]) == (
        6, "NonIndexed", False)


def test_job_gets_a_selector_on_its_uid() -> None:
    obj = kinds.decode("Job", {"metadata": {"name": "j", "uid": "u-1"}, "spec": {
        "template": {"metadata": {"labels": {"app": "j"}}, "spec": {"containers": [
            {"name": "c"}]}}}})
    apply_defaults(obj)
    assert isinstance(obj, Job)
    assert obj.spec.selector is not None
    assert obj.spec.selector.match_labels == {JOB_CONTROLLER_UID: "u-1"}
    labels = obj.spec.template.metadata.labels or {}
    assert labels[JOB_CONTROLLER_UID] == "u-1" and labels["job-name"] == "j"
    assert labels["app"] == "j"


def test_job_manual_selector_is_left_alone() -> None:
    spec = _defaulted("Job", {"spec": {"manualSelector": True,
                                       "selector": {"matchLabels": {"a": "b"}}}})["spec"]
    assert spec["selector"] == {"matchLabels": {"a": "b"}}


def test_service_defaults() -> None:
    obj = kinds.decode("Service", {"metadata": {"name": "s"}, "spec": {
        "ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}})
    apply_defaults(obj)
    assert isinstance(obj, Service)
    spec = kinds.encode(obj)["spec"]
    assert (spec["type"], spec["sessionAffinity"]) == ("ClusterIP", "None")
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80},
                             {"port": 53, "protocol": "UDP", "targetPort": "dns"}]


def test_secret_defaults_fold_string_data() -> None:
    obj = kinds.decode("Secret", {"metadata": {"name": "s"}, "data": {"a": "eA=="},
                                  "stringData": {"b": "hunter2"}})
    apply_defaults(obj)
    assert isinstance(obj, Secret)
    assert obj.type == "Opaque" and obj.string_data is None
    assert obj.data == {"a": "eA==", "b": "aHVudGVyMg=="}


def test_priority_class_and_namespace_defaults() -> None:
    assert _defaulted("PriorityClass", {"value": 5})["preemptionPolicy"] == \
        "PreemptLowerPriority"
    assert _defaulted("Namespace", {})["status"] == {"phase": "Active"}
