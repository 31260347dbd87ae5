"""Report plots as PNG files (matplotlib, Agg backend: no display needed, safe in workers)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless everywhere (CI, Ray workers)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot_roc(y, s, path: Path, title: str = "") -> str:
    f, t, _ = roc_curve(y, s)
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot(f, t, lw=1.8, label="model")
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="chance")
    for a in (0.01, 0.05):
        ax.axvline(a, color="grey", lw=0.6, ls="--")
    ax.set(xlabel="false-positive rate", ylabel="recall (true-positive rate)", title=title or "ROC",
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_pr(y, s, path: Path, title: str = "") -> str:
    p, r, _ = precision_recall_curve(y, s)
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot(r, p, lw=1.8)
    ax.axhline(float(np.mean(y)), color="k", ls=":", lw=1, label="prevalence")
    ax.set(xlabel="recall", ylabel="precision", title=title or "precision-recall", xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left")
    return _save(fig, path)


def plot_histograms(y, s, threshold: float, path: Path, title: str = "") -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    bins = np.linspace(float(np.min(s)), float(np.max(s)) + 1e-12, 41)
    for lab, name, c in ((0, "label 0 (not signal)", "tab:blue"), (1, "label 1 (signal)", "tab:red")):
        ax.hist(s[y == lab], bins=bins, alpha=0.55, color=c, label=f"{name}, n={int((y == lab).sum())}")
    ax.axvline(threshold, color="k", lw=1.2, ls="--", label=f"threshold {threshold:.3g}")
    ax.set(xlabel="score", ylabel="crops", title=title or "score by label")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_calibration(y, s, path: Path, bins: int = 10, title: str = "") -> str:
    """Reliability curve: fraction of signals per equal-count score bin against the bin's mean score.
    The diagonal is drawn only when scores lie in [0, 1] (probability-like)."""
    order = np.argsort(s, kind="stable")
    chunks = [c for c in np.array_split(order, min(bins, len(s))) if c.size]
    mean_s = [float(s[c].mean()) for c in chunks]
    frac = [float(y[c].mean()) for c in chunks]
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot(mean_s, frac, "o-", lw=1.5)
    if np.min(s) >= 0 and np.max(s) <= 1:
        ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
        ax.legend(loc="upper left")
    ax.set(xlabel="mean score in bin", ylabel="fraction labelled signal", title=title or "calibration",
           ylim=(-0.02, 1.02))
    return _save(fig, path)


def plot_snr_recall(bins: list[dict], path: Path, title: str = "") -> str:
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    mid = [(b["snr_lo"] + b["snr_hi"]) / 2 for b in bins]
    rec = [b["recall"] for b in bins]
    # A percentile-bootstrap interval need not contain the point estimate in tiny bins: clamp at 0.
    err = [[max(0.0, r - b["lo"]) for r, b in zip(rec, bins)], [max(0.0, b["hi"] - r) for r, b in zip(rec, bins)]]
    ax.errorbar(mid, rec, yerr=err, fmt="o-", capsize=3)
    for b in bins:
        ax.axvspan(b["snr_lo"], b["snr_hi"], color="grey", alpha=0.06)
    ax.set(xlabel="SNR (bin centre; bins hold equal numbers of positives)", ylabel="recall at threshold",
           title=title or "recall by SNR", ylim=(-0.02, 1.05))
    if min(b["snr_lo"] for b in bins) > 0:
        ax.set_xscale("log")
    return _save(fig, path)
