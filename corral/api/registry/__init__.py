"""The generic registry: CRUD, list/watch and subresources for every resource."""

from corral.api.registry.core import Admission, Registry, Result
from corral.api.registry.delete import DeleteOptions, delete, delete_collection
from corral.api.registry.prepare import FieldValidation
from corral.api.registry.read import Filter, Page, list_objects, watch_objects

__all__ = ["Admission", "DeleteOptions", "FieldValidation", "Filter", "Page", "Registry", "Result",
           "delete", "delete_collection", "list_objects", "watch_objects"]
