"""`BenchConfig`: what one `cropray bench` run measures (torch-free, JSON-able, validated)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from cropray.errors import ConfigError
from cropray.fastpath.specs import PATHS
from cropray.models.policy import arch_names, known, reference_arch

# Every registered architecture, the reference (seed) design first; every execution path of fastpath.
ALL_ARCHS = tuple(sorted(arch_names(), key=lambda a: a != reference_arch()))
ALL_PATHS = tuple(PATHS)


@dataclass(frozen=True)
class BenchConfig:
    n: int = 20_000  # crops in the synthetic archive scored end to end (and by the naive baseline)
    n_accuracy: int = 10_000  # crops each path is compared with fp32 eager on (flips, max |d score|)
    archs: tuple[str, ...] = ALL_ARCHS  # architectures measured in-process (registered ones)
    paths: tuple[str, ...] = ALL_PATHS  # execution paths measured in-process (fastpath.PATHS names)
    batch_sizes: tuple[int, ...] = (32, 128, 512)  # in-process forward batch sizes
    repeats: int = 5  # timing repeats; medians are reported
    forward_crops: int = 1024  # crops per timing repeat (at least one batch)
    train_seconds: float = 30.0  # brief training per architecture (random weights exaggerate bf16/int8 error)
    train_crops: int = 2048  # synthetic labelled crops the brief training draws from
    e2e_path: str = "auto"  # precision/path of the end-to-end run: "auto" or a fastpath path name
    memory_scale: int = 4  # also score an archive this many times larger to check peak memory (1 = off)
    peers: bool = True  # ONNX Runtime / OpenVINO, when installed
    threads: int | None = None  # torch threads (None: torch's default, = the CPUs this process may use)
    quick: bool = False
    seed: int = 0

    def __post_init__(self):
        for name in ("n", "n_accuracy", "repeats", "forward_crops", "memory_scale", "train_crops"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        bad = [a for a in self.archs if not known(a)]
        if bad or not self.archs:
            raise ConfigError(f"--archs {','.join(bad) or '(empty)'}: valid are {','.join(arch_names())}")
        bad = [p for p in self.paths if p not in ALL_PATHS]
        if bad or not self.paths:
            raise ConfigError(f"--paths {','.join(bad) or '(empty)'}: valid are {','.join(ALL_PATHS)}")
        if self.e2e_path != "auto" and self.e2e_path not in ALL_PATHS:
            raise ConfigError(f"--e2e-path {self.e2e_path}: valid are auto,{','.join(ALL_PATHS)}")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ConfigError(f"--batch-sizes must be integers >= 1, got {self.batch_sizes}")

    @classmethod
    def quick_preset(cls, **over) -> BenchConfig:
        """< 1 minute on 2 shared cores: one architecture, the eager paths, small counts, no compile."""
        base = dict(n=2048, n_accuracy=1024, archs=(reference_arch(),), paths=("eager", "fold_cl", "bf16"),
                    batch_sizes=(64,), repeats=3, forward_crops=256, train_seconds=3.0, train_crops=512,
                    memory_scale=1,
                    e2e_path="fold_cl", quick=True)
        return replace(cls(**base), **over)

    def to_dict(self) -> dict:
        return asdict(self)
