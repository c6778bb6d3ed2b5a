"""apiextensions.k8s.io/v1: CustomResourceDefinition, a kind users define.

The schema itself (openAPIV3Schema) stays an opaque JSON object here: its
structural rules are checked by corral.api.crd.structural, with Kubernetes'
field paths, not by pydantic."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from corral.api.kinds.base import Int32, KubeModel, Opaque, Time
from corral.api.kinds.meta import KubeObject


class CustomResourceDefinitionNames(KubeModel):
    plural: str = ""
    singular: str | None = None
    kind: str = ""
    list_kind: str | None = None
    short_names: list[str] | None = None
    categories: list[str] | None = None


class CustomResourceValidation(KubeModel):
    open_apiv3_schema: Opaque | None = Field(default=None, alias="openAPIV3Schema")


class CustomResourceSubresourceScale(KubeModel):
    spec_replicas_path: str = ""
    status_replicas_path: str = ""
    label_selector_path: str | None = None


class CustomResourceSubresources(KubeModel):
    status: Opaque | None = None
    scale: CustomResourceSubresourceScale | None = None


class CustomResourceColumnDefinition(KubeModel):
    name: str = ""
    type: str = ""
    format: str | None = None
    description: str | None = None
    priority: Int32 = 0
    json_path: str = Field(default="", alias="jsonPath")


class CustomResourceDefinitionVersion(KubeModel):
    name: str = ""
    served: bool = True
    storage: bool = False
    deprecated: bool | None = None
    deprecation_warning: str | None = None
    schema_: CustomResourceValidation | None = Field(default=None, alias="schema")
    subresources: CustomResourceSubresources | None = None
    additional_printer_columns: list[CustomResourceColumnDefinition] | None = None


class CustomResourceDefinitionSpec(KubeModel):
    group: str = ""
    names: CustomResourceDefinitionNames = Field(default_factory=CustomResourceDefinitionNames)
    scope: str = ""  # Namespaced, Cluster
    versions: list[CustomResourceDefinitionVersion] = Field(default_factory=list)
    conversion: Opaque | None = None
    preserve_unknown_fields: bool | None = None


class CustomResourceDefinitionCondition(KubeModel):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: Time | None = None


class CustomResourceDefinitionStatus(KubeModel):
    conditions: list[CustomResourceDefinitionCondition] | None = None
    accepted_names: CustomResourceDefinitionNames | None = None
    stored_versions: list[str] | None = None


class CustomResourceDefinition(KubeObject):
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apiextensions.k8s.io/v1",)
    spec: CustomResourceDefinitionSpec = Field(default_factory=CustomResourceDefinitionSpec)
    status: CustomResourceDefinitionStatus | None = None
