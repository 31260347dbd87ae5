"""`cropray label` over real HTTP against a real child process: token, durability, undo, resume,
one server per LABELS, port fallback, bad queues and contradictory LABELS refused (exit 2)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from conftest import write_queue

from cropray.archive import read_labeled


def call(srv, path, body=None, token=True):
    sep = "&" if "?" in path else "?"
    url = f"http://127.0.0.1:{srv.port}{path}" + (f"{sep}token={srv.token}" if token else "")
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.read()


def state(srv):
    return json.loads(call(srv, "/api/state")[1])


def answer(srv, word):
    return json.loads(call(srv, "/api/answer", {"crop_id": state(srv)["item"]["crop_id"], "answer": word})[1])


def test_token_required_and_every_answer_durable_before_the_next_crop(tmp_path, label_server):
    ids = write_queue(tmp_path / "q.parquet", 6)
    labels = tmp_path / "labels"
    srv = label_server(tmp_path / "q.parquet", labels)
    for path in ("/", "/api/state", "/api/crop/0.png"):
        with pytest.raises(urllib.error.HTTPError) as e:
            call(srv, path, token=False)
        assert e.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/api/state?token=wrong{srv.token}", timeout=30)
    assert e.value.code == 403
    assert call(srv, "/")[0] == 200 and call(srv, "/api/crop/0.png?cmap=gray&scale=log")[1][:4] == b"\x89PNG"
    s = state(srv)
    assert s["item"]["crop_id"] == ids[0] and len(s["item"]["neighbours"]) == 4
    expect = {}
    for i, word in enumerate(["signal", "not_signal", "skip", "signal"]):
        nxt = answer(srv, word)
        assert nxt["item"]["crop_id"] == ids[i + 1]
        if word != "skip":
            expect[ids[i]] = int(word == "signal")
        # the moment the next crop is served, pandas reads every answer so far from LABELS
        df = pd.read_parquet(labels)
        assert dict(zip(df.crop_id, df.label)) == expect
    # a stale answer (the crop already answered) is refused with the current state, nothing written
    with pytest.raises(urllib.error.HTTPError) as e:
        call(srv, "/api/answer", {"crop_id": ids[0], "answer": "not_signal"})
    assert e.value.code == 409 and len(pd.read_parquet(labels)) == 3
    back = json.loads(call(srv, "/api/undo", {})[1])  # removes ids[3] = signal
    assert back["item"]["crop_id"] == ids[3]
    del expect[ids[3]]
    assert dict(zip(*(pd.read_parquet(labels)[c] for c in ("crop_id", "label")))) == expect
    ls = read_labeled(str(labels))  # what `cropray train` reads: crops decode, labels valid
    assert sorted(ls.crop_id.tolist()) == sorted(expect) and ls.x.shape[1:] == (1, 64, 64)
    q = pd.read_parquet(tmp_path / "q.parquet").set_index("crop_id")
    np.testing.assert_array_equal(np.asarray(ls.x[list(ls.crop_id).index(ids[0]), 0]).reshape(-1),
                                  np.asarray(q.loc[ids[0], "crop"], np.float32).reshape(-1))
    srv.kill()
    again = label_server(tmp_path / "q.parquet", labels)  # resumes: the undone crop is next
    assert state(again)["item"]["crop_id"] == ids[3] and again.token != srv.token


def test_second_server_on_same_labels_refused_and_busy_port_replaced(tmp_path, label_server):
    write_queue(tmp_path / "q.parquet", 3)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    try:
        srv = label_server(tmp_path / "q.parquet", tmp_path / "labels", port=busy)
        assert srv.port != busy
        assert f"port {busy} is in use; using port {srv.port}" in srv.proc.stderr.readline()
        r = subprocess.run([sys.executable, "-m", "cropray", "label", str(tmp_path / "q.parquet"), "--out",
                            str(tmp_path / "labels")], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and "labels" in r.stderr and "another cropray run" in r.stderr
    finally:
        blocker.close()


@pytest.mark.parametrize("drop", ["crop", "crop_id"])
def test_queue_without_crop_or_crop_id_refused(tmp_path, drop):
    write_queue(tmp_path / "q.parquet", 3, drop=drop)
    r = subprocess.run([sys.executable, "-m", "cropray", "label", str(tmp_path / "q.parquet"), "--out",
                        str(tmp_path / "labels")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "q.parquet" in r.stderr and f"lacks column(s) {drop}" in r.stderr


def test_labels_with_two_labels_for_one_crop_refused(tmp_path):
    ids = write_queue(tmp_path / "q.parquet", 3)
    (tmp_path / "labels").mkdir()
    pd.DataFrame({"crop_id": [ids[1], ids[2]], "label": [1, 0]}).to_parquet(tmp_path / "labels" / "mine.parquet")
    pd.DataFrame({"crop_id": [ids[1]], "label": [0]}).to_parquet(tmp_path / "labels" / "theirs.parquet")
    r = subprocess.run([sys.executable, "-m", "cropray", "label", str(tmp_path / "q.parquet"), "--out",
                        str(tmp_path / "labels")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and ids[1] in r.stderr and ids[2] not in r.stderr
    assert "mine.parquet" in r.stderr and "theirs.parquet" in r.stderr
