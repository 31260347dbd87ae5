"""Crops as PNG images, rendered server-side with a matplotlib colour map (no canvas code to trust)."""

from __future__ import annotations

import io

import numpy as np

from cropray.errors import CroprayError

CMAPS = ("viridis", "magma", "inferno", "gray", "cividis")
SCALES = ("linear", "log", "asinh")


def render_png(crop: np.ndarray, *, cmap: str = "viridis", scale: str = "linear", lo: float = 1.0,
               hi: float = 99.5, zoom: int = 6) -> bytes:
    """(H, W) raw power -> PNG bytes (H*zoom, W*zoom), time down, frequency across.

    lo/hi: percentiles of the crop mapped to the ends of the colour map (the colour-scale control)."""
    import matplotlib
    from matplotlib import image as mimage

    if cmap not in CMAPS or scale not in SCALES:
        raise CroprayError(f"cmap must be one of {CMAPS} and scale one of {SCALES}")
    if not (0.0 <= lo < hi <= 100.0) or not 1 <= zoom <= 16:
        raise CroprayError("need 0 <= lo < hi <= 100 and 1 <= zoom <= 16")
    v = np.asarray(crop, np.float64)
    if scale == "log":
        v = np.log10(np.maximum(v, np.finfo(np.float32).tiny))
    elif scale == "asinh":
        med = np.median(v)
        mad = np.median(np.abs(v - med)) * 1.4826 or 1.0
        v = np.arcsinh((v - med) / mad)
    a, b = np.percentile(v, [lo, hi])
    z = np.clip((v - a) / (b - a if b > a else 1.0), 0.0, 1.0)
    rgba = matplotlib.colormaps[cmap](z, bytes=True)  # (H, W, 4) uint8
    rgba = np.repeat(np.repeat(rgba, zoom, axis=0), zoom, axis=1)  # nearest-neighbour zoom
    buf = io.BytesIO()
    mimage.imsave(buf, rgba, format="png")
    return buf.getvalue()
