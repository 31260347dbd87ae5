"""Robust noise level of background crops, per channel, in the crops' raw units.

Radiometer noise has a std proportional to its mean, and the receiver gain multiplies both, so a
channel's noise std is (a per-crop ratio) x (its level). Dividing each channel by its time median is
the models' bandpass flattening (`cropray.models.preprocess`, without the running median across
frequency that keeps narrowband tones: here the whole channel is the level); the ratio is then one
robust std over the flattened crop: a MAD estimate, refined by the plain std of the pixels within
5 MADs (closer to the true std for skewed chi-square noise, still blind to sparse bright RFI).
"""

from __future__ import annotations

import numpy as np


def noise_sigma(x: np.ndarray, clip: float = 5.0) -> np.ndarray:
    """(B, 1, T, F) or (B, T, F) raw crops -> (B, F) per-pixel noise std of each channel (float32).

    Crops whose channel medians are not all positive (e.g. offset or rescaled integer data) get the
    additive estimate: one robust std of (crop - channel median), the same for every channel.
    """
    x = np.asarray(x, np.float32).reshape(len(x), *np.shape(x)[-2:])  # (B, T, F)
    med = np.median(x, axis=1)  # (B, F) channel levels
    positive = (med > 0).all(axis=1) & np.isfinite(med).all(axis=1)  # (B,)
    safe = np.where(positive[:, None], med, 1.0)
    r = np.where(positive[:, None, None], x / safe[:, None, :], x - med[:, None, :])  # (B, T, F) flattened
    centre = np.median(r.reshape(len(r), -1), axis=1)  # (B,)
    dev = np.abs(r - centre[:, None, None])
    mad = 1.4826 * np.median(dev.reshape(len(r), -1), axis=1)  # (B,)
    inside = dev <= clip * np.maximum(mad, 1e-30)[:, None, None]
    cnt = np.maximum(inside.sum(axis=(1, 2)), 1)
    mean = np.where(inside, r, 0).sum(axis=(1, 2)) / cnt
    var = np.where(inside, (r - mean[:, None, None]) ** 2, 0).sum(axis=(1, 2)) / np.maximum(cnt - 1, 1)
    ratio = np.sqrt(var)  # (B,) std of the flattened crop
    return np.where(positive[:, None], ratio[:, None] * med, ratio[:, None]).astype(np.float32)
