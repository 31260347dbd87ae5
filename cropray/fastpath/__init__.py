"""Fast scoring path: `build_scorer(bundle_or_model, ...)` -> a callable scorer (np (B,1,H,W) -> np (B,)).

Files: capabilities.py (what this machine can run), fold.py (BN folding), paths.py (execution paths and
the padded fixed-batch runner), quantize.py (int8 PT2E), policy.py (how `auto` chooses), scorer.py.
"""

from __future__ import annotations

from cropray.fastpath.capabilities import Capabilities, detect
from cropray.fastpath.paths import PATHS, TOLERANCE, PathSpec
from cropray.fastpath.scorer import Scorer, build_scorer

__all__ = ["PATHS", "TOLERANCE", "Capabilities", "PathSpec", "Scorer", "build_scorer", "detect"]
