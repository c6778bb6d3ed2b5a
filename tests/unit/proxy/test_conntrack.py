"""Which conntrack entries go when endpoints leave: read from `conntrack -L` output."""

from __future__ import annotations

from corral.proxy.conntrack import Flow, parse_flows, to_drop
from corral.proxy.nftrules import Stale

LISTING = """\
tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.100.0.1 sport=40000 dport=80 \
src=10.0.0.1 dst=127.0.0.1 sport=8080 dport=40000 [ASSURED] mark=2097152 use=1
tcp      6 100 TIME_WAIT src=127.0.0.1 dst=127.100.0.1 sport=40001 dport=80 \
src=10.0.0.1 dst=127.0.0.1 sport=8080 dport=40001 [ASSURED] mark=0 use=1
tcp      6 431999 ESTABLISHED src=10.9.0.2 dst=10.9.0.1 sport=50000 dport=30080 \
src=10.0.0.1 dst=10.9.0.2 sport=8080 dport=50000 [ASSURED] mark=0 use=1
tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=10.0.0.1 sport=40002 dport=8080 \
src=10.0.0.1 dst=127.0.0.1 sport=8080 dport=40002 [ASSURED] mark=0 use=1
tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.100.0.2 sport=40003 dport=80 \
src=10.0.0.1 dst=127.0.0.1 sport=8080 dport=40003 [ASSURED] mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 5 flow entries have been shown.
"""


def test_flows_parse_with_original_and_reply_tuples() -> None:
    flows = parse_flows(LISTING)
    assert len(flows) == 5
    assert flows[0] == Flow("ESTABLISHED", "127.0.0.1", "127.100.0.1", 40000, 80,
                            "10.0.0.1", 8080)
    assert flows[0].dnated and not flows[3].dnated


def test_only_live_dnated_flows_of_a_departed_pair_are_dropped() -> None:
    flows = parse_flows(LISTING)
    stale = [Stale("127.100.0.1", 80, ("10.0.0.1", 8080)), Stale(None, 30080, ("10.0.0.1", 8080))]
    dropped = to_drop(flows, stale)
    # Not the finished one, not a direct connection to the endpoint, not another
    # Service (127.100.0.2) that still has this endpoint.
    assert [f.sport for f in dropped] == [40000, 50000]
    assert to_drop(flows, []) == []
