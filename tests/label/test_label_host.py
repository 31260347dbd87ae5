"""The labelling page against DNS rebinding and oversized bodies, over real HTTP to a real
`cropray label` child process: a Host other than the loopback names is refused (421) even with the
token, and a body over the limit is 413, not "body must be JSON"."""

from __future__ import annotations

import http.client
import json

import pytest
from conftest import write_queue

from cropray.label.server import MAX_BODY


def request(srv, host: str, method: str = "GET", path: str = "/api/state", body: bytes | None = None,
            headers: dict | None = None) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        c.putrequest(method, f"{path}?token={srv.token}", skip_host=True)
        c.putheader("Host", host)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body is not None and "Transfer-Encoding" not in (headers or {}):
            c.putheader("Content-Length", str(len(body)))
        c.endheaders()
        if body is not None:
            try:
                c.send(body)
            except (BrokenPipeError, ConnectionResetError):  # the server answered early and closed
                pass
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.fixture
def srv(tmp_path, label_server):
    write_queue(tmp_path / "q.parquet", 4)
    return label_server(tmp_path / "q.parquet", tmp_path / "labels")


def test_only_loopback_host_names_are_served(srv):
    for host in (f"127.0.0.1:{srv.port}", f"localhost:{srv.port}", f"LocalHost:{srv.port}", f"[::1]:{srv.port}"):
        assert request(srv, host)[0] == 200, host
    for host in (f"evil.example:{srv.port}", "evil.example", f"127.0.0.1.evil.example:{srv.port}",
                 f"127.0.0.1:{srv.port + 1}", f"192.168.0.1:{srv.port}", ""):
        status, text = request(srv, host)
        assert status == 421 and b"localhost" in text, (host, status, text)
    # the answer endpoint too: a rebinding page must not record a label
    body = json.dumps({"crop_id": "q0-000", "answer": "signal"}).encode()
    assert request(srv, f"evil.example:{srv.port}", "POST", "/api/answer", body,
                   {"Content-Type": "application/json"})[0] == 421
    assert json.loads(request(srv, f"127.0.0.1:{srv.port}")[1])["answered"] == 0


def test_a_body_over_the_limit_is_413(srv):
    big = b'{"crop_id": "' + b"x" * (10 * 1024 * 1024) + b'", "answer": "signal"}'
    status, _ = request(srv, f"127.0.0.1:{srv.port}", "POST", "/api/answer", big, {"Content-Type": "application/json"})
    assert status == 413
    chunk = b"x" * (MAX_BODY + 1)  # no Content-Length: the limit holds while reading
    chunked = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n"
    status, _ = request(srv, f"127.0.0.1:{srv.port}", "POST", "/api/answer", chunked,
                        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert status == 413
    body = json.dumps({"crop_id": "q0-000", "answer": "signal"}).encode()
    assert request(srv, f"127.0.0.1:{srv.port}", "POST", "/api/answer", body,
                   {"Content-Type": "application/json"})[0] == 200
