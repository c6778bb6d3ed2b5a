"""Pydantic models of every kind the API serves, and the functions the registry
calls on them. Contract (implemented in this package):

    decode(kind, data: dict) -> KubeObject      # raises api.errors.Invalid with field causes
    encode(obj) -> dict                          # JSON-ready, by alias, no None values
    unknown_fields(obj) -> list[str]             # dotted paths of fields no model knows
    MODELS: dict[str, type[KubeObject]]          # by kind, e.g. MODELS["Pod"]
"""
