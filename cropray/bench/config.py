"""`BenchConfig`: what one `cropray bench` run measures (torch-free, JSON-able, validated)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from cropray.errors import ConfigError
from cropray.fastpath.specs import PATHS
from cropray.models.policy import arch_names, known, reference_arch
from cropray.validate import boolean, choice, integer, number, validate

# Every registered architecture, the reference (seed) design first; every runtime of fastpath per device.
ALL_ARCHS = tuple(sorted(arch_names(), key=lambda a: a != reference_arch()))
DEVICES = ("cpu", "cuda")
PATHS_ON = {d: tuple(n for n, p in PATHS.items() if d in p.devices) for d in DEVICES}
ALL_PATHS = PATHS_ON["cpu"]
QUICK_PATHS = {"cpu": ("eager", "fold_cl", "onnx_fp32", "onnx_int8"), "cuda": ("eager", "fold_cl", "cuda_amp")}
# `cropray score --precision` values each device can run (int8 is CPU-only, bf16 CUDA-only)
E2E_PRECISIONS = {"cpu": ("auto", "fp32", "int8"), "cuda": ("auto", "fp32", "bf16")}


@dataclass(frozen=True)
class BenchConfig:
    n: int = integer(100_000, 1)  # crops in the synthetic archive scored end to end (and by the naive
    #   baseline): --e2e-rows
    n_accuracy: int = integer(10_000, 1)  # crops each path is compared with fp32 eager on (flips, max |d
    #   score|)
    archs: tuple[str, ...] = ALL_ARCHS  # architectures measured in-process (registered ones)
    device: str = choice("cpu", DEVICES)  # where the forward rows, the label-free row and the e2e actors run
    #   (cuda: one actor per GPU)
    paths: tuple[str, ...] = ()  # runtimes measured in-process (fastpath.PATHS names; empty: every runtime
    #   of `device`; one that cannot run an architecture, e.g. numpy on a CNN, is reported as unavailable)
    batch_sizes: tuple[int, ...] = (32, 128, 512)  # in-process forward batch sizes
    repeats: int = integer(5, 1)  # timing repeats; medians are reported
    forward_crops: int = integer(1024, 1)  # crops per timing repeat (at least one batch)
    train_seconds: float = number(30.0, 0.0)  # brief training per architecture (random weights exaggerate
    #   int8 error)
    train_crops: int = integer(2048, 1)  # synthetic labelled crops the brief training draws from
    e2e_precision: str = choice("auto", ("auto", "fp32", "int8", "bf16"))  # `cropray score --precision` of
    #   the end-to-end run (int8: cpu only; bf16: cuda only)
    memory_scale: int = integer(4, 1)  # also score an archive this many times larger to check peak memory (1
    #   = off)
    threads: int | None = integer(None, 1, nullable=True)  # torch threads (None: torch's default, = the CPUs
    #   this process may use)
    quick: bool = boolean(False)  # the quick preset (recorded in the report)
    seed: int = integer(0, 0)  # synthetic data and brief training
    label_free: bool = boolean(True)  # the label-free dedoppler row: forward crops/s and end to end
    runner: str = choice("auto", ("auto", "ray", "local"))  # `cropray score --runner` of the end-to-end runs

    def __post_init__(self):
        validate(self, "bench config")  # each field's rule (cropray.validate); the lists below
        bad = [a for a in self.archs if not known(a)]
        if bad or not self.archs:
            raise ConfigError(f"bench config archs {','.join(bad) or '(empty)'}: valid are {','.join(arch_names())}",
                              field="archs")
        valid = PATHS_ON[self.device]
        if not self.paths:  # frozen: the default is filled in once, here
            object.__setattr__(self, "paths", valid)
        bad = [p for p in self.paths if p not in valid]
        if bad:
            raise ConfigError(f"bench config paths {','.join(bad)}: valid on {self.device} are {','.join(valid)}",
                              field="paths")
        if self.e2e_precision not in E2E_PRECISIONS[self.device]:
            raise ConfigError(f"bench config e2e_precision {self.e2e_precision!r} cannot run on {self.device}: "
                              f"valid there are {','.join(E2E_PRECISIONS[self.device])}", field="e2e_precision")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise ConfigError(f"bench config batch_sizes must be integers >= 1, got {self.batch_sizes}",
                              field="batch_sizes")

    @classmethod
    def quick_preset(cls, **over) -> BenchConfig:
        """~1 minute on 2 shared cores: one architecture, the device's main runtimes, small counts."""
        device = over.get("device", "cpu")
        base = dict(n=2048, n_accuracy=1024, archs=(reference_arch(),), device=device,
                    paths=QUICK_PATHS.get(device, ()), batch_sizes=(64,), repeats=3,
                    forward_crops=256, train_seconds=3.0, train_crops=512, memory_scale=1, quick=True)
        return replace(cls(**base), **over)

    def to_dict(self) -> dict:
        return asdict(self)
