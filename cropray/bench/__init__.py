"""`cropray bench` as a library: `run_bench(BenchConfig(...), workdir) -> dict`, `render(result) -> str`.

Files: config.py (what to measure), trained.py (a briefly trained model), peak.py (matmul ceiling,
FLOPs per crop), forward.py (in-process paths: speed and accuracy), peers.py (ONNX Runtime, OpenVINO),
e2e.py (cropray score through Ray Data, the naive baseline), run.py (orchestration, ratios, targets),
report.py (tables).
"""

from cropray.bench.config import ALL_ARCHS, ALL_PATHS, BenchConfig
from cropray.bench.report import render
from cropray.bench.run import run_bench

__all__ = ["ALL_ARCHS", "ALL_PATHS", "BenchConfig", "render", "run_bench"]
