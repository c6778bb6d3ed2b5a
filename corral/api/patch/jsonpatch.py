"""RFC 6902 JSON patch, on the ``jsonpatch`` library.

Errors as Kubernetes answers them: a body that is not a valid patch document is
400 BadRequest; a patch that cannot be applied — a path that is missing, a
``test`` op that fails — is 422 Invalid (apiserver's applyJSPatch).
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from corral.api.errors import BadRequest, Invalid


def apply_json_patch(original: dict[str, Any], operations: Any) -> Any:
    """Apply a list of RFC 6902 operations to a copy of ``original``."""
    if not isinstance(operations, list):
        raise BadRequest("a JSON patch must be a list of operations, got "
                         f"{type(operations).__name__}")
    try:
        patch = jsonpatch.JsonPatch(operations)
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException, TypeError,
            AttributeError) as e:
        raise BadRequest(f"invalid JSON patch: {e}") from None
    try:
        return patch.apply(original, in_place=False)
    except jsonpatch.JsonPatchTestFailed as e:
        raise Invalid(f"the JSON patch test operation failed: {e}") from None
    except jsonpatch.InvalidJsonPatch as e:
        # Missing "path"/"value" members only show up when the op runs.
        raise BadRequest(f"invalid JSON patch: {e}") from None
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException,
            KeyError, IndexError, TypeError) as e:
        raise Invalid(f"the JSON patch could not be applied: {e}") from None
