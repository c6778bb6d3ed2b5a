"""Values the API server hands out to objects: Services' clusterIPs and nodePorts.

    ranges.py    the pools (a CIDR inside 127.0.0.0/8, a port range)
    claims.py    one store key per value, created only if absent; stale ones reclaimed
    services.py  the admission plugin and delete hook that use them
"""

from __future__ import annotations

from corral.api.allocation.claims import CLAIMS_PREFIX, Claims, Owner
from corral.api.allocation.ranges import (
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_SERVICE_CIDR,
    IpRange,
    PortRange,
    RangeError,
)
from corral.api.allocation.services import ServiceAllocation

__all__ = ["CLAIMS_PREFIX", "DEFAULT_NODE_PORT_RANGE", "DEFAULT_SERVICE_CIDR", "Claims",
           "IpRange", "Owner", "PortRange", "RangeError", "ServiceAllocation"]
