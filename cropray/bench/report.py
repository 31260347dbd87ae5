"""Human-readable tables of a `run_bench` result (the JSON has every field; this picks the ones to read)."""

from __future__ import annotations

from cropray.report.table import fmt_table


def _f(v, fmt="{:.0f}"):
    return "-" if v is None else fmt.format(v)


def render(res: dict) -> str:
    m, pk = res["machine"], res["peak"]
    out = [f"machine: {m['cpu']}, {m['usable_cpus']} usable CPUs, torch {m['torch']} on {pk['threads']} threads; "
           f"load avg {m['loadavg_start'][0]:.1f} -> {m.get('loadavg_end', [float('nan')])[0]:.1f} "
           "(shared machine: compare within this run)"
           + (f"; GPUs: {', '.join(m['gpus'])} (CUDA {m.get('cuda')})" if m.get("gpus") else ""),
           "matmul peak GFLOP/s (median / best): " + ", ".join(
               f"{k} {_f(pk[k]['median_gflops'])} / {_f(pk[k]['best_gflops'])}"
               for k in ("fp32", "bf16", "int8") if k in pk), ""]
    acc = {(a["arch"], a["path"]): a for a in res["accuracy"]}
    rows = []
    for r in res["forward"]:
        a = acc.get((r["arch"], r["path"])) if r["batch"] == res["config"]["batch_sizes"][0] else None
        if r.get("status") != "ok":
            rows.append([r["arch"], r["path"], r["batch"], r.get("status"), "", "", "", "", (r.get("reason") or "")[:50], ""])
            continue
        rows.append([r["arch"], r["path"], r["batch"], _f(r["crops_per_s"]), _f(r["gflops"], "{:.1f}"),
                     _f(r["fraction_of_peak"] and 100 * r["fraction_of_peak"], "{:.1f}%") + f" {r['peak_precision'] or ''}",
                     _f(r.get("build_s"), "{:.1f}"),
                     a and f"{a['max_abs_diff']:.1e}", a and f"{a['flips']}/{a['n']}", _auc(a)])
    out += ["in-process forward (median crops/s; of peak: vs the best of the run's and an interleaved GEMM; "
            "flips vs fp32 eager at the model's threshold, information only; ROC-AUC [95% CI] of the path on "
            "held-out labelled crops, * = within fp32's interval: what auto may choose)",
            fmt_table(rows, ["arch", "path", "batch", "crops/s", "GFLOP/s", "of peak", "build s",
                             "max|d score|", "flips", "held-out ROC-AUC"]), ""]
    out.append(f"auto here (device {res['auto'].get('device', 'cpu')}, ISA {res['auto'].get('isa')}), per bench bundle (carrying its graph and quality record):")
    for arch, v in res["auto"]["per_arch"].items():
        fb = "; ".join(f"{f['path']}: {f['reason'][:80]}" for f in v.get("fallbacks") or [])
        out.append(f"  {arch}: auto -> {v['auto_path']} in {_f(v.get('build_s'), '{:.1f}')} s (candidates "
                   f"{', '.join(v.get('candidates') or [])}{'; fell back: ' + fb if fb else ''}); threshold "
                   f"{v.get('threshold_source')}; AUC within fp32's: {v.get('auto_path_auc_within_fp32')}; fastest "
                   f"measured within it: {v.get('fastest_within_fp32_auc_measured')}")
    e, nv = res["end_to_end"], res["naive"]
    out += ["", f"naive baseline (pandas + eager fp32 NCHW batch 32): {nv['crops_per_s']:.0f} crops/s on {nv['n']} "
            f"crops (read {nv['read_s']:.1f}s, model {nv['model_s']:.1f}s)"]
    for r in e["runs"]:
        how = "in-process" if r.get("runner") == "local" else f"Ray Data, {r.get('actors')} actor(s)"
        out.append(f"end to end (cropray score, {how}, precision {e['precision']}, ran "
                   f"{','.join(r.get('paths_used') or [str(e['assumed_path']) + '?'])}): {_f(r['crops_per_s'])} crops/s scoring phase, "
                   f"{r['crops_per_s_wall']:.0f} whole call, on {r['n']} crops; worker peak RSS "
                   f"{_f(r['actor_peak_rss_mb'])} MB, process tree peak {_f(r['tree_peak_rss_mb'])} MB"
                   + (f"; first results after {r['first_block_s']:.1f} s, then {_f(r.get('steady_crops_per_s'))} "
                      "crops/s" if r.get("first_block_s") is not None else "")
                   + (f"; driver commit rate {_f(r['driver_commit_crops_per_cpu_s'])} crops per driver-thread CPU s"
                      if r.get("driver_commit_crops_per_cpu_s") else ""))
    out.append(f"e2e / naive: {_f(res.get('ratios', {}).get('e2e_over_naive'), '{:.2f}')}x on "
               f"{_f(res.get('ratios', {}).get('e2e_crops'), '{:,.0f}')} crops; first scored rows after "
               f"{_f(res.get('ratios', {}).get('e2e_first_block_s'), '{:.1f}')} s (target 5 s)")
    ra = res.get("ratios", {})
    if ra.get("best_accurate_forward"):
        a = ra["best_accurate_forward"]
        out.append(f"fastest runtime with its held-out AUC within fp32's interval: {a['path']} (batch {a['batch']}) "
                   f"{a['crops_per_s']:.0f} crops/s")
    if ra.get("e2e_steady_over_forward_same_path") is not None:
        out.append(f"end to end after start-up / in-process forward of the same path: "
                   f"{ra['e2e_steady_over_forward_same_path']:.2f}")
    lf = res.get("label_free")
    if lf:
        out.append(f"label-free {lf['arch']} ({lf['path']}): {lf['forward_crops_per_s']:.0f} crops/s forward; end to end "
                   f"{_f(lf.get('e2e_crops_per_s'))} crops/s scoring phase, {lf['e2e_crops_per_s_wall']:.0f} whole call "
                   f"({lf.get('e2e_runner')} runner, ran {','.join(lf.get('e2e_paths_used') or ['?'])}); first results after "
                   f"{_f(lf.get('e2e_first_block_s'), '{:.1f}')} s, then {_f(lf.get('e2e_steady_crops_per_s'))} crops/s; "
                   f"e2e / naive {_f(lf.get('e2e_over_naive'), '{:.2f}')}x (whole call "
                   f"{_f(lf.get('e2e_wall_over_naive'), '{:.2f}')}x)")
    out.append("")
    for k, t in res["targets"].items():
        v = t["value"]
        out.append(f"target {k}: {_f(v, '{:.2f}')} (goal {'<=' if k.startswith('memory') else '>='} "
                   f"{t['goal']}) {'met' if t['met'] else 'MISSED' if t['met'] is False else 'n/a'}")
    out.append(f"bench peak RSS {res['peak_rss_mb']:.0f} MB, wall {res['wall_s']:.0f} s")
    return "\n".join(out)


def _auc(a: dict | None) -> str:
    q = a and a.get("quality")
    if not q:
        return ""
    r = q["roc_auc"]
    ci = f" [{r['lo']:.3f}, {r['hi']:.3f}]" if r["lo"] is not None else ""
    return f"{r['value']:.4f}{ci}{' *' if a.get('auc_within_fp32') else ''}"
