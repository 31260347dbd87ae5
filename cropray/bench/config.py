"""`BenchConfig`: what one `cropray bench` run measures (torch-free, JSON-able, validated)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from cropray.errors import ConfigError
from cropray.fastpath.specs import PATHS
from cropray.models.policy import arch_names, known, reference_arch
from cropray.validate import boolean, choice, integer, number, validate

# Every registered architecture, the reference (seed) design first; every CPU runtime of fastpath.
ALL_ARCHS = tuple(sorted(arch_names(), key=lambda a: a != reference_arch()))
ALL_PATHS = tuple(n for n, p in PATHS.items() if "cpu" in p.devices)


@dataclass(frozen=True)
class BenchConfig:
    n: int = integer(100_000, 1)  # crops in the synthetic archive scored end to end (and by the naive
    #   baseline): --e2e-rows
    n_accuracy: int = integer(10_000, 1)  # crops each path is compared with fp32 eager on (flips, max |d
    #   score|)
    archs: tuple[str, ...] = ALL_ARCHS  # architectures measured in-process (registered ones)
    paths: tuple[str, ...] = ALL_PATHS  # runtimes measured in-process (fastpath.PATHS names; one that cannot
    #   run an architecture, e.g. numpy on a CNN, is reported as unavailable)
    batch_sizes: tuple[int, ...] = (32, 128, 512)  # in-process forward batch sizes
    repeats: int = integer(5, 1)  # timing repeats; medians are reported
    forward_crops: int = integer(1024, 1)  # crops per timing repeat (at least one batch)
    train_seconds: float = number(30.0, 0.0)  # brief training per architecture (random weights exaggerate
    #   int8 error)
    train_crops: int = integer(2048, 1)  # synthetic labelled crops the brief training draws from
    e2e_precision: str = choice("auto", ("auto", "fp32", "int8"))  # `cropray score --precision` of the
    #   end-to-end run
    memory_scale: int = integer(4, 1)  # also score an archive this many times larger to check peak memory (1
    #   = off)
    peers: bool = boolean(True)  # ONNX Runtime / OpenVINO, when installed
    threads: int | None = integer(None, 1, nullable=True)  # torch threads (None: torch's default, = the CPUs
    #   this process may use)
    quick: bool = boolean(False)  # the quick preset (recorded in the report)
    seed: int = integer(0, 0)  # synthetic data and brief training
    label_free: bool = boolean(True)  # the label-free dedoppler row: forward crops/s and end to end

    def __post_init__(self):
        validate(self, "bench config")  # each field's rule (cropray.validate); the lists below
        bad = [a for a in self.archs if not known(a)]
        if bad or not self.archs:
            raise ConfigError(f"bench config archs {','.join(bad) or '(empty)'}: valid are {','.join(arch_names())}",
                              field="archs")
        bad = [p for p in self.paths if p not in ALL_PATHS]
        if bad or not self.paths:
            raise ConfigError(f"bench config paths {','.join(bad) or '(empty)'}: valid are {','.join(ALL_PATHS)}",
                              field="paths")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ConfigError(f"bench config batch_sizes must be integers >= 1, got {self.batch_sizes}",
                              field="batch_sizes")

    @classmethod
    def quick_preset(cls, **over) -> BenchConfig:
        """~1 minute on 2 shared cores: one architecture, the CPU runtimes, small counts."""
        base = dict(n=2048, n_accuracy=1024, archs=(reference_arch(),),
                    paths=("eager", "fold_cl", "onnx_fp32", "onnx_int8"), batch_sizes=(64,), repeats=3,
                    forward_crops=256, train_seconds=3.0, train_crops=512, memory_scale=1, quick=True)
        return replace(cls(**base), **over)

    def to_dict(self) -> dict:
        return asdict(self)
