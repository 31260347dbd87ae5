"""Bundles and small archives (good, and with every kind of bad row) shared by the scoring tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

H = W = 64
L = H * W


def make_bundle(name: str, out: Path) -> Path:
    """A bundle with non-default state (BN statistics from real batches, a Siamese gallery)."""
    import torch

    from cropray.bundle import save_bundle
    from cropray.models import build_model

    torch.manual_seed(0)
    m = build_model(name)
    x = torch.from_numpy(crops(16, seed=1)[:, None])
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None  # running stats become these batches' statistics
    m.train()
    with torch.no_grad():
        if bns:
            m.embed(x) if name == "siamese" else m.logits(x)
        m.eval()
        if name == "siamese":
            m.set_gallery(m.embed(x[:10]), torch.tensor([1, 0] * 5))
        thr = float(m(x).median())  # about half the crops positive
    for bn in bns:
        bn.momentum = 0.1
    return save_bundle(m, out, threshold=thr, train_summary={"n_labels": 16, "input_shape": [H, W]}, metrics={})


def crops(n: int, seed: int) -> np.ndarray:
    """(n, 64, 64) float32 raw power over several decades, a few with a narrow vertical line."""
    rng = np.random.default_rng(seed)
    x = rng.chisquare(2, size=(n, H, W)).astype(np.float32) * (10.0 ** rng.uniform(-2, 3, (n, 1, 1))).astype(np.float32)
    x[::3, :, 30:32] *= 20.0
    return x


def ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


def write_good(out_dir: Path, n: int, files: int, *, prefix="part", seed=0, id_prefix="c") -> list[str]:
    from cropray.archive import write_archive

    x = crops(n, seed)
    return write_archive(out_dir, {"crop_id": ids(id_prefix, n), "obs": np.arange(n, dtype=np.int64)}, x,
                         files=files, prefix=prefix)


def tensor_with_nulls(x: np.ndarray, null_rows) -> pa.ExtensionArray:
    mask = np.zeros(len(x), bool)
    mask[list(null_rows)] = True
    storage = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), L, mask=pa.array(mask))
    return pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(pa.float32(), [H, W]), storage)


def write_bad_archive(d: Path) -> dict:
    """Two encodings with injected bad rows, a corrupt footer, a corrupt data page (5 files).

    Returns the expected reason counts and row totals of the readable files.
    """
    d.mkdir(parents=True, exist_ok=True)
    # a: canonical tensor float32, NaN (row 3), inf (row 7), null crop (row 11), null crop_id (row 15)
    xa = crops(40, 10)
    xa[3, 5, 5] = np.nan
    xa[7, 0, 0] = np.inf
    ida = pa.array(ids("a", 40), mask=np.isin(np.arange(40), [15]))
    pq.write_table(pa.table({"crop_id": ida, "crop": tensor_with_nulls(xa, [11]), "obs": np.arange(40)}),
                   d / "a.parquet", row_group_size=16)
    # b: variable-length list<float32>; row 2 has 100 values, row 5 a NaN
    xb = crops(30, 11).reshape(30, L)
    xb[5, 9] = np.nan
    rows_b = [xb[i] if i != 2 else xb[i][:100] for i in range(30)]
    offsets = np.r_[0, np.cumsum([len(r) for r in rows_b])].astype(np.int32)
    lb = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.concatenate(rows_b)))
    pq.write_table(pa.table({"crop_id": ids("b", 30), "crop": lb, "obs": np.arange(30)}), d / "b.parquet")
    # c: canonical again, all good (same encoding as a: one pipeline for both)
    pq.write_table(pa.table({"crop_id": ids("c", 30), "crop": tensor_with_nulls(crops(30, 12), []),
                             "obs": np.arange(30)}), d / "c.parquet")
    # d: not Parquet at all (fails the footer pre-check)
    (d / "d.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 8)
    # e: valid footer, zstd data pages overwritten in the middle (fails at read time)
    xe = crops(64, 13)
    pq.write_table(pa.table({"crop_id": ids("e", 64), "crop": tensor_with_nulls(xe, []), "obs": np.arange(64)}),
                   d / "e.parquet", compression="zstd", row_group_size=32)
    raw = bytearray((d / "e.parquet").read_bytes())
    mid = len(raw) // 3
    raw[mid : mid + 4000] = bytes(4000)
    (d / "e.parquet").write_bytes(bytes(raw))
    return {
        "reasons": {"non_finite": 3, "null_crop": 1, "missing_crop_id": 1, "wrong_length": 1},
        "read": 100, "quarantined": 6, "failed": ["d.parquet", "e.parquet"],
    }


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    """name -> bundle path, built once per session on first use."""
    root = tmp_path_factory.mktemp("bundles")
    made: dict[str, Path] = {}

    def get(name: str = "shallow_cnn") -> Path:
        if name not in made:
            made[name] = make_bundle(name, root / name)
        return made[name]

    return get
