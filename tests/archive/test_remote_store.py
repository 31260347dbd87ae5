"""An S3 store that refuses (403) or accepts and never answers, played by a real socket server on
127.0.0.1 that pyarrow's S3 filesystem reaches through AWS_ENDPOINT_URL: exit 2, one line naming the
URI and the store's own reason, within a bounded wait."""

from __future__ import annotations

import socket
import threading
import time

import pyarrow.fs as pafs
import pytest

from cropray.archive import files as archive_files
from cropray.cli import main

ACCESS_DENIED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                 b"<Message>Access Denied</Message></Error>")


class StandIn:
    """A TCP server on 127.0.0.1: `mode` "403" answers every request AccessDenied, "silent" accepts
    connections and never answers. `connections` counts what the client tried."""

    def __init__(self, mode: str) -> None:
        self.mode, self.connections, self._open = mode, 0, []
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(c)  # "silent": held open, never written to
            if self.mode == "403":
                threading.Thread(target=self._deny, args=(c,), daemon=True).start()

    @staticmethod
    def _deny(c: socket.socket) -> None:
        c.settimeout(5)
        try:
            while b"\r\n\r\n" not in c.recv(65536):
                pass
            c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: "
                      + str(len(ACCESS_DENIED)).encode() + b"\r\nConnection: close\r\n\r\n" + ACCESS_DENIED)
        except OSError:
            pass
        c.close()

    def close(self) -> None:
        self.sock.close()
        for c in self._open:
            c.close()


@pytest.fixture
def store(monkeypatch):
    made = []

    def start(mode: str) -> StandIn:
        s = StandIn(mode)
        made.append(s)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{s.port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cropray-test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cropray-test")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        return s

    yield start
    for s in made:
        s.close()


def one_error_line(err: str, command: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith(f"cropray {command}: error:"), err
    return lines[0]


def test_a_store_that_answers_403_is_exit_2_naming_the_uri_and_the_reason(store, capsys):
    store("403")
    rc = main(["inspect", "s3://bucket/x"])
    line = one_error_line(capsys.readouterr().err, "inspect")
    assert rc == 2 and "s3://bucket/x" in line and "ACCESS_DENIED" in line, line


def test_score_with_a_403_store_is_one_line_and_writes_nothing(store, capsys, tmp_path):
    from cropray.bundle import save_bundle
    from cropray.models import build_model

    b = save_bundle(build_model("shallow_cnn", channels=[4, 4, 4]).eval(), tmp_path / "m", threshold=0.5,
                    train_summary={"input_shape": [64, 64]}, metrics={})
    store("403")
    rc = main(["score", str(b), "s3://bucket/x", str(tmp_path / "out")])
    line = one_error_line(capsys.readouterr().err, "score")
    assert rc == 2 and "s3://bucket/x" in line and "ACCESS_DENIED" in line, line
    assert not (tmp_path / "out").exists()


def test_a_silent_store_is_given_up_after_bounded_attempts(store, capsys, monkeypatch):
    """Accepts, never answers: S3_ATTEMPTS tries of S3_REQUEST_TIMEOUT_S each (1 s here to keep CI
    short; the shipped 10 s gives ~30 s), not the SDK's default of ~100 s over 31 connections."""
    s = store("silent")
    monkeypatch.setattr(archive_files, "S3_REQUEST_TIMEOUT_S", 1.0)
    t0 = time.monotonic()
    rc = main(["inspect", "s3://bucket/x"])
    waited = time.monotonic() - t0
    line = one_error_line(capsys.readouterr().err, "inspect")
    assert rc == 2 and "s3://bucket/x" in line and "NETWORK_CONNECTION" in line, line
    assert s.connections == archive_files.S3_ATTEMPTS
    assert waited < archive_files.S3_ATTEMPTS * (1.0 + 1.5) + 2, waited


def test_the_bounded_filesystem_keeps_what_the_uri_said(store):
    s = store("403")
    fs = archive_files._split_fs("s3://cropray-key:cropray-secret@bucket/x?region=eu-west-3")[0]
    assert isinstance(fs, pafs.S3FileSystem)
    opts = fs.__reduce__()[1][0]
    assert opts["endpoint_override"] == f"http://127.0.0.1:{s.port}" and opts["access_key"] == "cropray-key"
    assert opts["region"] == "eu-west-3"
    assert opts["connect_timeout"] == archive_files.S3_CONNECT_TIMEOUT_S
    assert opts["request_timeout"] == archive_files.S3_REQUEST_TIMEOUT_S
