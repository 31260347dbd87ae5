"""Show crops as images: fetch them by crop_id from an archive, draw a labelled grid."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cropray.archive import CROP_ID, iter_tables, validate_decode


def fetch_crops(archive: str, crop_ids: list) -> dict:
    """{crop_id: (H, W) float32} for the given ids, streaming the archive once (bounded memory)."""
    want = pa.array(list(crop_ids))
    found: dict = {}
    for _, spec, t in iter_tables(archive, batch_rows=32768):
        ids = t.column(CROP_ID)
        if ids.type != want.type:
            ids = ids.cast(want.type)
        hit = pc.is_in(ids, value_set=want).to_numpy(zero_copy_only=False)
        if not hit.any():
            continue
        sub = t.filter(pa.array(hit))
        x, check = validate_decode(sub, spec)
        for cid, crop in zip(np.asarray(sub.column(CROP_ID).to_pylist(), dtype=object)[check.valid], x[:, 0]):
            found[cid] = crop
        if len(found) >= len(want):
            break
    return found


def crop_grid_png(out: str, crops: list[np.ndarray], titles: list[str], cols: int = 8, suptitle: str = "") -> str:
    """Save a grid of crops (time down, frequency across), each scaled to its own robust range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(crops))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.8), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, crop, title in zip(axes.ravel(), crops, titles):
        # Per-crop robust scaling: raw levels differ by decades between crops.
        lo, hi = np.percentile(crop, [1, 99.5])
        ax.imshow(crop, aspect="auto", cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        ax.set_title(title, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle + "  (rows = time, columns = frequency)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
