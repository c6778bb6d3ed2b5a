"""Kubernetes' protobuf wire format for request bodies (see codec.py)."""

from __future__ import annotations

from corral.api.protobuf.codec import decode as decode_protobuf

__all__ = ["decode_protobuf"]
