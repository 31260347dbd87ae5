"""Sweep plots as PNG (matplotlib Agg): the objective against each searched parameter, and over time."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless everywhere (CI, Ray job drivers)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from cropray.tune.spaces import SPACES, Choice, Float, Int  # noqa: E402

MARKERS = {"completed": "o", "stopped": "x"}


def _leaf_specs(space: dict, prefix: str = "") -> dict:
    out = {}
    for name, spec in space.items():
        out[prefix + name] = spec
        if isinstance(spec, Choice):
            for opt, sub in spec.branches.items():
                out.update(_leaf_specs(sub, f"{prefix}{opt}."))
    return out


def _scored(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    return df[df["status"].isin(list(MARKERS)) & np.isfinite(df[metric].astype(float))]


def plot_params(df: pd.DataFrame, regime: str, metric: str, path: Path) -> str:
    """One panel per searched parameter: objective (y) vs value (x); colour = architecture, marker:
    o completed, x stopped early. Failed trials have no objective and are counted in the title."""
    specs = _leaf_specs(SPACES[regime])
    scored = _scored(df, metric)
    archs = list(SPACES[regime]["arch"].options)
    colours = {a: f"C{i}" for i, a in enumerate(archs)}
    n = len(specs)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, spec) in zip(axes.flat, specs.items()):
        sub = scored[scored[name].notna()] if name in scored else scored.iloc[:0]
        for (arch, status), g in sub.groupby(["arch", "status"]):
            x = g[name]
            if isinstance(spec, Choice):
                x = x.map({o: i for i, o in enumerate(spec.options)})
            ax.scatter(x.astype(float), g[metric].astype(float), c=colours.get(arch, "k"),
                       marker=MARKERS[status], s=28, label=f"{arch} ({status})")
        if isinstance(spec, Choice):
            ax.set_xticks(range(len(spec.options)), spec.options, fontsize=7)
            ax.set_xlim(-0.5, len(spec.options) - 0.5)
        elif isinstance(spec, (Float, Int)):
            if spec.log:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on short ranges
            ax.set_xlim(spec.low * (0.8 if spec.log else 1), spec.high * (1.25 if spec.log else 1))
            ax.axvline(spec.default, color="grey", lw=0.6, ls=":")  # the library default
        ax.set_title(name, fontsize=8)
        ax.set_ylabel(metric, fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower right", fontsize=7)
    failed = int((df["status"] == "failed").sum())
    fig.suptitle(f"{regime} sweep: {metric} vs each parameter ({len(scored)} scored, {failed} failed; "
                 "dotted = default)", fontsize=9)
    return _save(fig, path)


def plot_progress(df: pd.DataFrame, metric: str, mode: str, path: Path) -> str:
    """Objective by trial index and by elapsed time at trial end, with the running best (completed)."""
    scored = _scored(df, metric)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    t0 = np.nanmin(df["started_at"].to_numpy(float)) if len(df) else 0.0
    for ax, xcol, xlabel in ((axes[0], "trial", "trial index"), (axes[1], "elapsed", "minutes since start")):
        d = scored.assign(elapsed=(scored["ended_at"] - t0) / 60.0).sort_values(xcol)
        for status, g in d.groupby("status"):
            ax.scatter(g[xcol], g[metric], marker=MARKERS[status], s=28, label=status)
        done = d[d["status"] == "completed"]
        if len(done):
            best = done[metric].cummax() if mode == "max" else done[metric].cummin()
            ax.step(done[xcol], best, where="post", color="k", lw=1, label="best so far")
        ax.set(xlabel=xlabel, ylabel=metric)
        ax.legend(fontsize=7)
    fig.suptitle(f"{metric} over the sweep", fontsize=9)
    return _save(fig, path)


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
