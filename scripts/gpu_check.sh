#!/usr/bin/env bash
# One prepared check for a machine with an NVIDIA GPU: the CUDA tests, then `cropray bench` on the GPU.
#
#   bash scripts/gpu_check.sh [OUTDIR]        # OUTDIR default: $OUT, else ./gpu-check
#
# Writes to OUTDIR: gpu_check.log (everything, in order), nvidia-smi.txt, env.txt, tests.log,
# bench.json (every figure: `cropray bench --device cuda --json`), bench.txt (the same as tables),
# bench.log (the bench's progress) and summary.txt (the figures to read first). Exit status 0 when every
# step passed; the first failing step stops the script and names itself.
#
# What the bench measures on the GPU: the shallow CNN (with its track prior) through eager, fold_cl and
# cuda_amp (bf16 autocast, fp16 where the GPU has no bf16) in-process; `cropray score` end to end with
# one actor per GPU (score's default where the cluster has GPUs) and the naive loop (pandas + eager fp32
# batch 32, on the CPU as a user's script runs) on the same archive; the label-free dedoppler (the
# physics path: its Taylor-tree search on CUDA through torch); and the driver's commit rate (crops per
# second of the driver's own CPU time spent fetching and committing results: the next bound once GPUs
# score faster than one driver commits).
#
# Python environment, first that applies:
#   1. $VENV (default .venv) when its torch sees CUDA;
#   2. a python on PATH ($PYTHON, default python3) whose torch sees CUDA: a venv at .venv-gpu that
#      inherits its site-packages, cropray installed into it without dependencies (no network needed
#      when ray, onnxruntime and pyarrow are installed there too);
#   3. otherwise scripts/setup_venv.sh .venv-gpu, which installs a CUDA torch (`torch>=2.3`) when
#      nvidia-smi sees a GPU (needs network).
# Knobs (environment): GPU_CHECK_ROWS (crops scored end to end, default 100000), GPU_CHECK_TRAIN_S
# (brief training of the bench model, default 30), GPU_CHECK_STEP_TIMEOUT (seconds per step, default 1500).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="${1:-${OUT:-./gpu-check}}"
mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
ROWS="${GPU_CHECK_ROWS:-100000}"
TRAIN_S="${GPU_CHECK_TRAIN_S:-30}"
STEP_TIMEOUT="${GPU_CHECK_STEP_TIMEOUT:-1500}"
LOG="$OUTDIR/gpu_check.log"
: >"$LOG"
cd "$ROOT"

say() { echo "gpu_check: $*" | tee -a "$LOG" >&2; }
fail() { say "FAILED at step: $*"; say "see $LOG"; exit 1; }
step() { say "step: $*"; }

# --- 0. a GPU at all? ------------------------------------------------------------------------------
step "nvidia-smi"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >"$OUTDIR/nvidia-smi.txt" 2>&1; then
    fail "nvidia-smi sees no GPU (this script is for a machine with an NVIDIA GPU; on a CPU run 'cropray bench')"
fi
nvidia-smi >>"$OUTDIR/nvidia-smi.txt" 2>&1 || true
cat "$OUTDIR/nvidia-smi.txt" >>"$LOG"

# --- 1. a python whose torch sees CUDA --------------------------------------------------------------
has_cuda() { "$1" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; }
VENV="${VENV:-.venv}"
PY=""
if [ -x "$VENV/bin/python" ] && has_cuda "$VENV/bin/python"; then
    PY="$VENV/bin/python"
    say "using $VENV (its torch sees CUDA)"
else
    BASE="${PYTHON:-python3}"
    VENV=".venv-gpu"
    if [ -x "$VENV/bin/python" ] && has_cuda "$VENV/bin/python"; then
        say "using $VENV (made by an earlier run)"
    elif command -v "$BASE" >/dev/null 2>&1 && has_cuda "$BASE"; then
        step "venv $VENV over $BASE's site-packages (its torch sees CUDA)"
        "$BASE" -m venv --system-site-packages "$VENV" >>"$LOG" 2>&1 || fail "python -m venv $VENV"
        "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e . >>"$LOG" 2>&1 \
            || fail "pip install -e . into $VENV"
        if ! "$VENV/bin/python" -c "import ray.data, onnxruntime, onnx, pyarrow, pandas, sklearn, scipy" \
            >>"$LOG" 2>&1; then
            say "some of cropray's dependencies are missing under $BASE: installing them (needs network)"
            "$VENV/bin/python" -m pip install -q -e ".[dev]" >>"$LOG" 2>&1 || fail "pip install cropray's dependencies"
        fi
    else
        step "scripts/setup_venv.sh $VENV (installs a CUDA torch; needs network)"
        # its optional browser-test tools (chromium via apt) may fail here without failing this check
        bash scripts/setup_venv.sh "$VENV" >>"$LOG" 2>&1 || say "setup_venv.sh exited non-zero (see log); checking torch"
    fi
    PY="$VENV/bin/python"
    has_cuda "$PY" || fail "torch in $VENV does not see CUDA ($("$PY" -c 'import torch; print(torch.__version__, "CUDA build:", torch.version.cuda)' 2>&1 | tail -1))"
fi
"$PY" - >"$OUTDIR/env.txt" 2>&1 <<'EOF' || fail "environment report ($OUTDIR/env.txt)"
import platform, torch, onnxruntime, ray
print("python", platform.python_version(), "| torch", torch.__version__, "CUDA", torch.version.cuda,
      "| onnxruntime", onnxruntime.__version__, "| ray", ray.__version__)
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}, "
          f"bf16 {torch.cuda.is_bf16_supported()}")
EOF
tee -a "$LOG" <"$OUTDIR/env.txt" >&2

# --- 2. the CUDA tests ------------------------------------------------------------------------------
# Tests that need a GPU are marked skipif(not torch.cuda.is_available()); -k cuda also runs the CPU
# tests about CUDA requests. On this machine a "needs a CUDA GPU" skip is a failure.
step "CUDA tests (pytest -k cuda)"
set +e
timeout "$STEP_TIMEOUT" "$PY" -m pytest -q -rs -p no:cacheprovider -k cuda \
    tests/fastpath/test_runtimes.py tests/fastpath/test_path_cv.py tests/scoring/test_score_warm.py \
    tests/bench/test_bench_cli.py >"$OUTDIR/tests.log" 2>&1
rc=$?
set -e
cat "$OUTDIR/tests.log" >>"$LOG"
tail -3 "$OUTDIR/tests.log" >&2
[ $rc -eq 0 ] || fail "CUDA tests (exit $rc; $OUTDIR/tests.log)"
if grep -q "needs a CUDA GPU" "$OUTDIR/tests.log"; then
    fail "a CUDA test was skipped although nvidia-smi sees a GPU ($OUTDIR/tests.log)"
fi

# --- 3. cropray bench on the GPU --------------------------------------------------------------------
# flags as in `cropray bench --help`; the bench's own workdir is kept for the scores' manifests. Batches
# stay <= 1,024: the in-process timing scores the bench's 1,024 forward crops per repeat.
step "cropray bench --device cuda on $ROWS crops"
set +e
timeout "$STEP_TIMEOUT" "$PY" -m cropray bench --device cuda --archs shallow_cnn --e2e-rows "$ROWS" \
    --batch-sizes 128,512,1024 --repeats 3 --n-accuracy 2000 --memory-scale 1 --train-seconds "$TRAIN_S" \
    --workdir "$OUTDIR/bench-work" --json >"$OUTDIR/bench.json" 2>"$OUTDIR/bench.log"
rc=$?
set -e
cat "$OUTDIR/bench.log" >>"$LOG"
[ $rc -eq 0 ] || fail "cropray bench --device cuda (exit $rc; $OUTDIR/bench.log)"
"$PY" - "$OUTDIR" <<'EOF' || fail "reading bench.json"
import json, sys
from pathlib import Path
from cropray.bench import render

out = Path(sys.argv[1])
res = json.loads((out / "bench.json").read_text())
(out / "bench.txt").write_text(render(res) + "\n")
e, lf, r = res["end_to_end"], res.get("label_free") or {}, res["ratios"]
fwd = {(f["path"], f["batch"]): f["crops_per_s"] for f in res["forward"] if f["status"] == "ok"}
lines = [f"GPUs: {', '.join(res['machine'].get('gpus') or ['none seen'])}; CPU: {res['machine']['cpu']}",
         "forward crops/s (shallow_cnn): " + ", ".join(f"{p} b{b} {v:,.0f}" for (p, b), v in sorted(fwd.items())),
         f"end to end: {e['n']:,} crops, {e['actors']} actor(s) ran {','.join(e['paths_used'])}: "
         f"{e['crops_per_s'] or 0:,.0f} crops/s scoring phase, {e['crops_per_s_wall']:,.0f} incl. Ray start, "
         f"first block {e['first_block_s']} s, steady {e['steady_crops_per_s']} crops/s",
         f"naive loop: {res['naive']['crops_per_s']:,.0f} crops/s; e2e / naive {r['e2e_over_naive']:.2f}x",
         f"driver commit rate: {e.get('driver_commit_crops_per_cpu_s')} crops per driver-thread CPU second",
         f"label-free dedoppler ({lf.get('path')}): forward {lf.get('forward_crops_per_s') or 0:,.0f} crops/s, "
         f"e2e {lf.get('e2e_crops_per_s') or 0:,.0f} crops/s (actors ran {lf.get('e2e_paths_used')}), "
         f"naive {((lf.get('naive') or {}).get('crops_per_s') or 0):,.0f}"]
(out / "summary.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
cat "$OUTDIR/summary.txt" >>"$LOG"
say "done: $OUTDIR (summary.txt, bench.txt, bench.json, tests.log)"
