"""Each runtime's held-out ROC-AUC as the bench bundle's quality record.

The bench's models are trained briefly, once (trained.py), so each path's quality is measured on a
held-out labelled set (the accuracy crops, never trained on) rather than by k-fold; `cropray train`
does the k-fold version (cropray/train/path_cv.py). The record built here from the forward table's
accuracy rows is what the bench's e2e bundle carries, so `auto` (in-process and in the `cropray
score` actors) runs onnx_int8 only when its held-out AUC is within fp32's interval, and applies the chosen
runtime's own threshold -- exactly as with a trained bundle. The bundle carries its exported graph.
"""

from __future__ import annotations

from cropray.bundle_quality import REFERENCE, ExecutionPaths, PathQuality, admissible_paths

HOW = "held-out labelled set (bench: synthetic crops never trained on, SNR 3-40)"


def record_from_accuracy(rows: list[dict]) -> ExecutionPaths | None:
    """ExecutionPaths from one arch's accuracy rows (each with a `quality`); None without eager's."""
    q = {r["path"]: r for r in rows if r.get("quality")}
    if REFERENCE not in q or q[REFERENCE]["quality"]["roc_auc"]["lo"] is None:
        return None
    paths = {name: PathQuality("ok", roc_auc=r["quality"]["roc_auc"], recall_at_1pct_fpr=r["quality"]["recall_at_1pct_fpr"],
                               threshold=float(r["quality"]["threshold"]), flips_vs_fp32=int(r["flips"]),
                               max_abs_diff=float(r["max_abs_diff"]), n=int(r["n"]), measured=HOW)
             for name, r in q.items()}
    ref = paths[REFERENCE].roc_auc
    interval = (float(ref["lo"]), float(ref["hi"]))
    return ExecutionPaths(interval=interval, paths=paths, admissible=admissible_paths(interval, paths),
                          notes=(HOW,))


def bundle_with_record(tm, record: ExecutionPaths | None, out):
    """The briefly trained model saved (and loaded back, verified) as a bundle carrying `record`."""
    from cropray.bundle import load_bundle, save_bundle
    from cropray.fastpath.export import make_pack

    graph = make_pack(tm.model, tm.calibration_crops, tm.calibration_crops.shape[-2:])
    path = save_bundle(tm.model, out, threshold=tm.threshold, overwrite=True, metrics={},
                       train_summary={"bench": "train_briefly", "steps": tm.steps},
                       calibration_crops=tm.calibration_crops, execution_paths=record, graph=graph)
    return load_bundle(path)
