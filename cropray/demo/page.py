"""The demo's HTML page: headline figures, the sweep, the model on fresh crops, the scoring run,
the top-scoring crops as images, and where every output lives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cropray.demo.config import DemoConfig
from cropray.report import Section, crop_grid_png, fetch_crops, render_html


def _fmt(m: dict | None) -> str:
    if not m or m.get("value") is None:
        return "n/a"
    if m.get("lo") is None:
        return f"{m['value']:.3f}"
    return f"{m['value']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]"


def _top_crops(summary: dict, cfg: DemoConfig, out_png: Path) -> tuple[str | None, list[list]]:
    scores = pd.read_parquet(summary["paths"]["scores"], columns=["crop_id", "score", "is_signal"])
    top = scores.nlargest(cfg.top, "score")
    crops = fetch_crops(summary["paths"]["archive"], top["crop_id"].tolist())
    shown = [(cid, s) for cid, s in zip(top["crop_id"], top["score"]) if cid in crops]
    if not shown:
        return None, []
    crop_grid_png(str(out_png), [crops[c] for c, _ in shown], [f"{s:.3f}" for _, s in shown],
                  suptitle=f"top {len(shown)} of {len(scores):,} scored crops (title = score)")
    rows = [[c, f"{s:.4f}"] for c, s in shown[:10]]
    return str(out_png), rows


def write_demo_page(out: Path, summary: dict, cfg: DemoConfig) -> Path:
    ev, sc, sw = summary["eval"], summary["score"], summary["sweep"]
    m = ev["metrics"]
    best = sw.get("best") or {}
    bundle = sw.get("bundle") or {}
    comp = summary.get("comparison") or {}
    head = Section("Headline", kpis={
        "ROC-AUC on fresh crops": _fmt(m.get("roc_auc")),
        "dedoppler baseline AUC": f"{summary['baseline_dedoppler_auc']:.3f}",
        **({"fresh AUC with / without archive": f"{_val(comp['with'], 'roc_auc')} / {_val(comp['without'], 'roc_auc')}"}
           if comp.get("with") else {}),
        "recall @1% FPR": _fmt(m.get("recall_at_1pct_fpr")),
        "scored crops/s": f"{sc.get('crops_per_s') or 0:,.0f}",
        "positives found": f"{sc['positives']:,} of {sc['rows_scored']:,}",
    }, paragraphs=[
        (f"Model {ev['model_id']} ({ev['arch']}): the label-free physics search ships, because no model "
         f"trained by a {sw['regime']!r}-regime sweep of {cfg.samples} trials on {cfg.labels} labelled crops "
         "(with or without the archive) proved a gain over it on the same out-of-fold crops"
         if comp.get("chosen") == "dedoppler" else
         f"Model {ev['model_id']} ({ev['arch']}), chosen by a {sw['regime']!r}-regime sweep of "
         f"{cfg.samples} trials on {cfg.labels} labelled crops"
         + (" and retrained with the unlabelled archive" if comp.get("chosen") == "with" else ""))
        + f", evaluated on {cfg.eval_n} fresh crops "
        "made with another seed. Intervals are 95% bootstrap intervals: with few labels every figure is "
        "uncertain, and the sweep's cross-validated score says more than any single split.",
    ])
    archive = _archive_section(comp, cfg) if comp else None
    rep = Path(ev["report"]["dir"])
    model = Section("Model on fresh labelled crops", tables=[(
        ["metric", "value [95% interval]"],
        [[k, _fmt(m.get(k))] for k in ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "recall_at_5pct_fpr",
                                         "accuracy", "balanced_accuracy")] + [["threshold", f"{ev['threshold']:.4g}"]],
    )], images=[(str(rep / n), c) for n, c in (
        ("roc.png", "ROC curve"), ("pr.png", "precision-recall"), ("score_hist.png", "scores by label"),
        ("calibration.png", "calibration"), ("snr_recall.png", "recall by SNR"))])
    trials = sw.get("trials") or {}
    sweep_dir = Path(summary["paths"]["sweep"])
    table_rows = []
    csv = sweep_dir / "trials.csv"
    if csv.is_file():
        df = pd.read_csv(csv)
        metric = sw.get("metric", "cv_auc")
        cols = [c for c in ["trial_id", "arch", "status", "epochs_run", metric] if c in df.columns]
        df = df.sort_values(metric, ascending=False) if metric in df.columns else df
        table_rows = [[("" if pd.isna(v) else (f"{v:.4f}" if isinstance(v, float) else v)) for v in r]
                      for r in df[cols].head(12).itertuples(index=False)]
        sweep_table = [(cols, table_rows)]
    else:
        sweep_table = []
    sweep = Section("Sweep (Ray Tune)", paragraphs=[
        f"Search: {sw.get('search')}; objective {sw.get('metric')} (stratified k-fold); "
        f"{trials.get('total', 0)} trials: {trials.get('completed', 0)} completed, {trials.get('stopped', 0)} "
        f"stopped early by ASHA, {trials.get('failed', 0)} failed, {trials.get('not_run', 0)} not run. "
        f"Best trial {best.get('trial_id')} at {best.get('value', float('nan')):.4f}"
        + (f" vs the default configuration's {sw['default']['value']:.4f}." if sw.get("default") else "."),
        f"Bundle retrained on all labels: {bundle.get('path')} (threshold {bundle.get('threshold')}).",
    ], tables=sweep_table, wide=True, images=[(str(sweep_dir / "sweep_params.png"), "objective vs each searched parameter"),
                                   (str(sweep_dir / "sweep_progress.png"), "objective over trials")])
    grid, top_rows = _top_crops(summary, cfg, Path(out).parent / "top_crops.png")
    dup = sc.get("duplicates") or {}
    scoring = Section("Archive scoring (Ray Data)", kpis={
        "rows read": f"{sc['rows_read']:,}", "scored": f"{sc['rows_scored']:,}",
        "quarantined": f"{sc['rows_quarantined']:,}", "files done": f"{sc['files_done']} / {sc['files']}",
        "wall": f"{sc.get('wall_s') or 0:.1f} s",
    }, paragraphs=[
        f"Reconciled (read = scored + quarantined): {sc['reconciled']}. Duplicate crop_ids: {dup.get('crop_ids', 0)}. "
        + _pool_text(sc.get("pool") or {}, sc),
    ], tables=[(["crop_id", "score"], top_rows)] if top_rows else [],
        images=[(grid, "top-scoring crops")] if grid else [], wide=True)
    outputs = Section("Where everything is", tables=[(["what", "path"], [
        ["labelled training set", summary["paths"]["labels"]], ["fresh evaluation set", summary["paths"]["eval"]],
        ["unlabelled archive", summary["paths"]["archive"]], ["sweep (trials table, plots, best_config.json)", str(sweep_dir)],
        ["model bundle", summary["bundle"]], ["scores (pandas.read_parquet(dir))", summary["paths"]["scores"]],
        ["scoring manifest", str(Path(summary["paths"]["scores"]) / "_manifest.json")],
        ["evaluation report (metrics.json + PNGs)", str(rep)],
    ])])
    sections = [head, *([archive] if archive else []), model, sweep, scoring, outputs]
    return render_html(out, "cropray demo", f"workdir {summary['workdir']}", sections)


def _val(row: dict, key: str) -> str:
    m = row.get(key)
    return "n/a" if not m or m.get("value") is None else f"{m['value']:.3f}"


def _archive_section(comp: dict, cfg: DemoConfig) -> Section:
    """With and without the archive and dedoppler, side by side: CV on the labels, then the fresh labelled
    crops, and which of them ships (the paired rule)."""
    rows = []
    without = "labels only (the sweep's bundle)"
    if comp.get("without", {}).get("arch") == "dedoppler":
        without = "labels only (the sweep's bundle: dedoppler, its best trial's gain unproven)"
    for key, name in (("without", without), ("with", "labels + archive injection"),
                      ("dedoppler", "dedoppler (label-free, no training)")):
        r = comp.get(key)
        if r is None:
            continue
        rows.append([name + (" - shipped" if comp["chosen"] == key else ""), _fmt(r["cv_roc_auc"]),
                     _fmt(r["roc_auc"]), _fmt(r["recall_at_1pct_fpr"]), r.get("model_id") or ""])
    a = comp.get("archive")
    text = [
        "Where the archive enters: the sweep itself trains on the labels only; its best configuration is then "
        "retrained twice on all labels, once on the labels alone (the sweep's bundle) and once with synthetic "
        "signals injected into backgrounds drawn from the unlabelled archive (cropray train --archive), both "
        "cross-validated on the same folds of the real labels. The labels judge, by paired out-of-fold "
        "ROC-AUC gains with 95% bootstrap intervals: a model ships over a cheaper one (dedoppler first) only "
        f"when the interval's lower end is above zero. {comp['reason']}. The shipped model scores the archive "
        "below.",
        "The CV column is out-of-fold ROC-AUC on the labelled crops (for dedoppler, which trains nothing, its "
        "ROC-AUC on those crops); the labels-only figure is the winning sweep trial's, the best of "
        f"{cfg.samples}, so slightly optimistic. The fresh columns are the {cfg.eval_n} evaluation crops, "
        "which neither model saw.",
    ]
    if a:
        text.append(f"Archive backgrounds: {a['drawn']:,} drawn, {a['excluded']:,} excluded (their track statistic "
                    f"says they may already hold a signal), {a['injected']:,} injected + {a['plain']:,} kept plain; "
                    f"{a['settings']['per_epoch']} archive crops per epoch beside as many real ones "
                    f"(real share {a['settings']['real_share']})."
                    + (f" Warnings: {'; '.join(a['warnings'])}" if a.get("warnings") else ""))
    header = ["model", "CV ROC-AUC (labels)", "fresh ROC-AUC", "fresh recall @1% FPR", "model id"]
    return Section("With and without the archive", paragraphs=text, tables=[(header, rows)])


def _pool_text(pool: dict, sc: dict) -> str:
    """The actor pool and timing in words (the manifest keeps the raw dict)."""
    if not pool:
        return ""
    size = pool.get("max_size")
    size = f"{pool.get('min_size')}-{size}" if pool.get("min_size") != size else f"{size}"
    text = (f"Actor pool: {size} actors x {pool.get('num_cpus')} CPU ({pool.get('threads')} torch thread(s) each"
            + (f", {pool.get('num_gpus')} GPU" if pool.get("num_gpus") else "")
            + f"); read tasks keep {pool.get('read_cpus')} CPU.")
    return text + _timing_text(sc)


def _timing_text(sc: dict) -> str:
    """Start-up vs steady state in words, saying what was measured (never a rate that was not).

    The pipeline's steady rate counts the rows after the first block over the time after it: 0 when
    every row came in the first block, None when the rest came within a second (too short to time).
    """
    first = sc.get("first_block_s")
    if first is None:
        return ""
    text = f" First results after {first:.1f} s (actor start-up: imports, bundle, path build)"
    steady = sc.get("steady_crops_per_s")
    if steady:
        return text + f", then {steady:,.0f} crops/s."
    why = ("every row arrived in that first block" if steady == 0
           else "the remaining rows arrived within a second of it")
    overall = ""
    if sc.get("wall_s") and sc.get("crops_per_s"):
        overall = (f" Measured instead: {sc['rows_scored']:,} crops in {sc['wall_s']:.1f} s overall, "
                   f"{sc['crops_per_s']:,.0f} crops/s including start-up.")
    return text + f"; {why}, so there is no steady-state rate to report." + overall
