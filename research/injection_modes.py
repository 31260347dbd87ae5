"""What a plain archive background should teach, and whether anchoring to physics helps: one table on
crops of the independent outside simulator (research/outside_sim), which no cropray code generated.

    python research/injection_modes.py --labels 50 --seeds 0,1 --jsonl /tmp/modes.jsonl
    python research/injection_modes.py --modes negative,paired --per-epoch 256,768,2048   # budget sweep
    python research/injection_modes.py --smoke-test   # 20 labels, 120 archive crops, 1 epoch: checks that it runs

Labels: the outside simulator's "labels" set (what a user labels: straight and chirped tracks, its own
noise law and RFI). Archive: its unlabelled "archive" set (half signals, SNR 3-60, some curved), read
through `cropray.inject` as `cropray train --archive` does. Judged on its "fresh", "faint" (SNR 4-12)
and "curved" sets. Every model is a shallow_cnn trained by `fit` for a fixed number of epochs (no
early stopping: the comparison is about what the crops teach, not about when to stop).

Modes (one model each):
  dedoppler  the label-free baseline
  free       labels only, the CNN + track prior from a random head, nothing pulling it back (the prior
             calibrated on the labels as the anchored one's: the difference is the anchoring alone)
  anchored   labels only, anchored: zero head, L2 on its logit, prior calibrated on the labels
  negative   anchored + archive, plain backgrounds as negatives (exclusion at the 0.99 quantile)
  strict     as negative, exclusion at --strict-quantile (more backgrounds dropped)
  pu         anchored + archive, plain backgrounds unlabelled (non-negative PU risk, --pu-prior)
  paired     anchored + archive, every background plain and injected; the pair asks only that the
             injected copy score higher
  siamese    labels only, the Siamese encoder (no track prior to anchor to): does it earn its place?
Reports ROC-AUC [95% bootstrap], recall@1%FPR (fresh), faint and curved ROC-AUC, excluded and
usable backgrounds, wall and CPU seconds. Torch runs on 1 thread; rows are appended to --jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cropray.evaluate.metrics import binary_metrics
from cropray.inject import InjectConfig
from cropray.inject.build import inject_from_archive
from cropray.train import TrainConfig, fit
from cropray.train.archive_data import ExtraCrops

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # for research.outside_sim
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cropray.report.table import fmt_table  # noqa: E402
from research.outside_sim.sets import generate, write_set  # noqa: E402

MODES = ("dedoppler", "free", "anchored", "negative", "strict", "pu", "paired", "siamese")
ARCHIVE_MODES = {"negative": "negative", "strict": "negative", "pu": "pu", "paired": "paired"}


def test_sets(cache: Path, n: int) -> dict:
    """{name: (crops (n, 1, 64, 64), labels (n,))} of the fresh, faint and curved sets, cached as .npz."""
    out = {}
    for kind in ("fresh", "faint", "curved"):
        f = cache / f"{kind}-{n}.npz"
        if not f.exists():
            d = generate(kind, n, seed=8)
            np.savez(f, x=d["crops"], y=d["label"])
        z = np.load(f)
        out[kind] = (z["x"][:, None], z["y"].astype(np.int64))
    return out


def archive_dir(cache: Path, n: int) -> Path:
    d = cache / f"archive-{n}"
    if not (d / "part-00000.parquet").exists():
        write_set(d, "archive", n, seed=7)
    return d


def score(model, x: np.ndarray) -> np.ndarray:
    import torch

    model.eval()
    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(np.ascontiguousarray(x[i:i + 512]))).float().numpy()
                               for i in range(0, len(x), 512)])


def evaluate(model, sets: dict, n_boot: int) -> dict:
    x, y = sets["fresh"]
    m = binary_metrics(y, score(model, x), 0.5, n_boot=n_boot, seed=0)
    def r4(v):
        return None if v is None else round(v, 4)

    out = {"auc": r4(m["roc_auc"]["value"]), "auc_lo": r4(m["roc_auc"]["lo"]), "auc_hi": r4(m["roc_auc"]["hi"]),
           "recall_1pct": r4(m["recall_at_1pct_fpr"]["value"])}
    for kind in ("faint", "curved"):
        xk, yk = sets[kind]
        out[f"{kind}_auc"] = round(binary_metrics(yk, score(model, xk), 0.5, n_boot=0)["roc_auc"]["value"], 4)
    return out


def run_one(args, mode: str, n: int, seed: int, per_epoch: int, lab, arch_dir: Path, sets: dict,
            anchor_l2: float) -> dict:
    from cropray.models import build_model

    x, y = lab
    t0, c0 = time.perf_counter(), time.process_time()
    info: dict = {}
    if mode == "dedoppler":
        model = build_model("dedoppler")
    else:
        arch = "siamese" if mode == "siamese" else "shallow_cnn"
        kw = {"anchor": False} if mode == "free" else {} if mode == "siamese" else {"anchor_l2": anchor_l2}
        cfg = TrainConfig(arch=arch, seed=seed, epochs=args.epochs, batch_size=32, epoch_crops=256,
                          model_kwargs=kw)
        extra = None
        if mode in ARCHIVE_MODES:
            icfg = InjectConfig(archive_crops=args.archive_crops, seed=seed, per_epoch=per_epoch,
                                plain=ARCHIVE_MODES[mode], pu_prior=args.pu_prior, min_backgrounds=10,
                                exclude_quantile=args.strict_quantile if mode == "strict" else 0.99)
            s = inject_from_archive(arch_dir, x, y, icfg)
            extra = ExtraCrops(s.x, s.y, icfg.real_share, icfg.per_epoch, plain=icfg.plain, pu_prior=icfg.pu_prior)
            info = {k: s.summary[k] for k in ("drawn", "excluded", "usable", "injected", "plain")}
        res = fit(cfg, x, y, epochs=args.epochs, extra=extra, progress=False)
        model = res.model
    anchored = mode not in ("dedoppler", "free", "siamese")
    return {"labels": n, "seed": seed, "mode": mode, "per_epoch": per_epoch if mode in ARCHIVE_MODES else None,
            "anchor_l2": anchor_l2 if anchored else None,
            "epochs": args.epochs, "archive_crops": args.archive_crops if mode in ARCHIVE_MODES else None,
            **evaluate(model, sets, args.n_boot), **info, "wall_s": round(time.perf_counter() - t0, 1),
            "cpu_s": round(time.process_time() - c0, 1), "load_average": round(os.getloadavg()[0], 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", default="50", help="label counts, comma-separated (balanced)")
    p.add_argument("--seeds", default="0", help="training seeds (each draws its own labels), comma-separated")
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--per-epoch", default="768", help="archive crops per epoch, comma-separated (a sweep)")
    p.add_argument("--archive-crops", type=int, default=3000)
    p.add_argument("--test", type=int, default=1000, help="crops per test set (fresh, faint, curved)")
    p.add_argument("--strict-quantile", type=float, default=0.8)
    p.add_argument("--pu-prior", type=float, default=0.2)
    p.add_argument("--anchor-l2", default="0.05", help="anchored models' penalty weights, comma-separated (a sweep)")
    p.add_argument("--n-boot", type=int, default=500)
    p.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "cropray_injection_modes"),
                   help="where the outside simulator's sets are written once")
    p.add_argument("--jsonl", default=None, help="append each row here as it finishes")
    p.add_argument("--smoke-test", action="store_true",
                   help="20 labels, 120 archive crops, 60 test crops, 1 epoch: checks that it runs")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.labels, args.seeds, args.epochs, args.per_epoch = "20", "0", 1, "32"
        args.archive_crops, args.test, args.n_boot = 120, 60, 0
        args.cache = tempfile.mkdtemp(prefix="cropray_modes_smoke_")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = sorted(set(modes) - set(MODES))
    if bad:
        p.error(f"--modes: unknown {', '.join(bad)}; valid: {', '.join(MODES)}")
    import torch

    torch.set_num_threads(1)  # the machine is shared
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sets = test_sets(cache, args.test)
    arch_dir = archive_dir(cache, args.archive_crops)
    rows = []
    for n in [int(v) for v in args.labels.split(",")]:
        for seed in [int(v) for v in args.seeds.split(",")]:
            d = generate("labels", n, seed=100 + seed)  # alternating labels: balanced
            lab = (d["crops"][:, None], d["label"].astype(np.int64))
            for mode in modes:
                for pe in ([int(v) for v in args.per_epoch.split(",")] if mode in ARCHIVE_MODES else [0]):
                    for l2 in ([float(v) for v in args.anchor_l2.split(",")]
                               if mode not in ("dedoppler", "free", "siamese") else [0.0]):
                        r = run_one(args, mode, n, seed, pe, lab, arch_dir, sets, l2)
                        rows.append(r)
                        print(json.dumps(r), file=sys.stderr, flush=True)
                        if args.jsonl:
                            with open(args.jsonl, "a") as f:
                                f.write(json.dumps(r) + "\n")
    header = ["labels", "seed", "mode", "per_epoch", "anchor_l2", "ROC-AUC [95%]", "recall@1%", "faint", "curved", "usable",
              "wall s"]
    print(fmt_table([[r["labels"], r["seed"], r["mode"], r["per_epoch"] or "-", r["anchor_l2"] or "-",
                      f"{r['auc']:.3f} [{r['auc_lo'] or 0:.3f}, {r['auc_hi'] or 0:.3f}]", f"{r['recall_1pct']:.3f}",
                      f"{r['faint_auc']:.3f}", f"{r['curved_auc']:.3f}", r.get("usable", "-"), r["wall_s"]]
                     for r in rows], header))
    if args.smoke_test:
        assert all(np.isfinite(r["auc"]) for r in rows), rows
    return 0


if __name__ == "__main__":
    sys.exit(main())
