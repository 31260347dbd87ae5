"""`cropray bench` as a library: `run_bench(BenchConfig(...), workdir) -> dict`, `render(result) -> str`.

Files: config.py (what to measure), trained.py (a briefly trained model), peak.py (matmul ceiling,
FLOPs per crop), forward.py (in-process runtimes: speed and accuracy), quality.py (their quality
record), e2e.py (cropray score through Ray Data, the naive baseline), naive.py (that baseline as a
command), run.py (orchestration, ratios, targets), report.py (tables).
"""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "ALL_ARCHS": "cropray.bench.config",
    "ALL_PATHS": "cropray.bench.config",
    "BenchConfig": "cropray.bench.config",
    "render": "cropray.bench.report",
    "run_bench": "cropray.bench.run",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
