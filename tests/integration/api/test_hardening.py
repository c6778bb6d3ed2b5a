"""Hostile and sloppy requests the table in test_bad_input cannot express: bodies
refused before they are read, unknown fields under each fieldValidation mode,
objects grown past the stored-size limit, and the health endpoints."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.cluster import Master

NS = "hard"
CMS = f"/api/v1/namespaces/{NS}/configmaps"


@pytest.fixture(scope="module")
def api(quiet_master: Master) -> Iterator[httpx.Client]:
    with quiet_master.http() as client:
        assert client.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).status_code == 201
        yield client


def _tls(master: Master) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(master.ca_path))
    raw = socket.create_connection((master.host, master.port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname=master.host)


def _head(master: Master, extra: str) -> bytes:
    return (f"POST {CMS} HTTP/1.1\r\nHost: {master.host}\r\n"
            f"Authorization: Bearer {master.token}\r\nContent-Type: application/json\r\n"
            f"{extra}\r\n").encode()


def _status_line(sock: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


def test_declared_length_over_the_limit_is_refused_before_the_body(quiet_master: Master,
                                                                   api: httpx.Client) -> None:
    # 100 MB announced, not a byte of it sent: only an answer from the header
    # arrives (a server that read first would wait for the body forever).
    with _tls(quiet_master) as sock:
        sock.sendall(_head(quiet_master, "Content-Length: 104857600\r\n"))
        assert b" 413 " in _status_line(sock)


def test_chunked_body_stops_being_read_at_the_limit(quiet_master: Master,
                                                    api: httpx.Client) -> None:
    chunk = b"a" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with _tls(quiet_master) as sock:
        sock.sendall(_head(quiet_master, "Transfer-Encoding: chunked\r\n") + b'6\r\n{"x":"\r\n')
        sock.settimeout(0.0)
        answer = b""
        while sent < (200 << 20) and not answer:  # stop sending once answered
            try:
                answer = sock.recv(65536)
            except ssl.SSLWantReadError:
                pass
            if not answer:
                try:
                    sock.send(frame)
                    sent += len(chunk)
                except (ssl.SSLWantWriteError, BlockingIOError):
                    time.sleep(0.001)
        sock.settimeout(30)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < (40 << 20), f"sent {sent} bytes before the server answered"


def test_the_size_limit_applies_to_what_is_stored(api: httpx.Client) -> None:
    half = "x" * (2 << 20)
    assert api.post(CMS, json={"metadata": {"name": "big"}, "data": {"a": half}}
                    ).status_code == 201
    r = api.patch(f"{CMS}/big", json={"data": {"b": half}},
                  headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge", r.text
    assert set(api.get(f"{CMS}/big").json()["data"]) == {"a"}


def _with_unknown(name: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "data": {"k": "v"}, "dataa": {"k": "v"}}


def test_unknown_fields_by_field_validation_mode(api: httpx.Client) -> None:
    # Warn (the default): created without the field, one Warning per field.
    r = api.post(CMS, json=_with_unknown("warn"))
    assert r.status_code == 201, r.text
    assert r.headers["warning"] == '299 - "unknown field \\"dataa\\""'
    assert "dataa" not in api.get(f"{CMS}/warn").json()
    # Ignore: dropped without a word.
    r = api.post(f"{CMS}?fieldValidation=Ignore", json=_with_unknown("ignore"))
    assert r.status_code == 201 and "warning" not in r.headers
    assert "dataa" not in r.json()
    # Strict: refused, the field named.
    r = api.post(f"{CMS}?fieldValidation=Strict", json=_with_unknown("strict"))
    assert r.status_code == 400 and 'unknown field "dataa"' in r.json()["message"]
    assert api.get(f"{CMS}/strict").status_code == 404


def test_livez_and_readyz_answer_as_kube_apiserver(api: httpx.Client) -> None:
    assert api.get("/readyz").text == "ok"
    verbose = api.get("/readyz?verbose").text.splitlines()
    assert verbose[-1] == "readyz check passed"
    assert {"[+]ping ok", "[+]etcd ok", "[+]bootstrap-namespaces ok"} <= set(verbose)
    assert api.get("/livez?verbose").text.splitlines()[-1] == "livez check passed"
    assert api.get("/readyz/etcd").text == "ok"
    assert api.get("/readyz/nope").status_code == 404
    excluded = api.get("/readyz?verbose&exclude=etcd").text
    assert "[+]etcd excluded: ok" in excluded


def test_readyz_requires_the_components_to_be_led(master: Master) -> None:
    with master.http() as http:
        lines = http.get("/readyz?verbose").text.splitlines()
        assert "[+]leader/corral-scheduler ok" in lines, lines
        assert "[+]leader/corral-controller-manager ok" in lines, lines
        # A Lease nobody renews any more fails the check, with the verbose list.
        lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/corral-scheduler"
        stale = {"spec": {"holderIdentity": "gone", "leaseDurationSeconds": 1,
                          "renewTime": "2020-01-01T00:00:00.000000Z"}}
        r = http.patch(lease, json=stale,
                       headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        ready = http.get("/readyz")
        if ready.status_code == 200:  # the scheduler took its Lease back already
            assert http.get(lease).json()["spec"]["holderIdentity"] != "gone"
        else:
            assert ready.status_code == 500
            assert "[-]leader/corral-scheduler failed: reason withheld" in ready.text
            assert ready.text.endswith("readyz check failed\n")
