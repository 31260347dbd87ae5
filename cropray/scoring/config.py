"""`ScoreConfig`: every knob of an archive-scoring run, validated on construction (no torch, no Ray)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cropray.errors import ConfigError
from cropray.validate import boolean, choice, integer, mapping, number, validate

PRECISIONS = ("auto", "fp32", "bf16", "int8")
RUNNERS = ("auto", "ray", "local")
# `--runner auto` scores in this process (scoring/local.py) up to this many rows when no cluster is named.
# Measured on a 2-vCPU AMD EPYC (docs/performance.md): in-process wins at 2,000, 20,000 and 100,000 crops,
# Ray's start and stop (~8-11 s) being most of a small job; above this a job is long enough that Ray's
# restartable actors and several machines' worth of workers matter more than its start.
LOCAL_MAX_ROWS = 100_000
# Output column names the pipeline writes itself; `--keep` may not shadow them.
RESERVED = ("crop", "crop_id", "score", "is_signal", "model_id")
# Upper bounds of the size fields (inclusive), so a typo cannot ask an actor for terabytes: a batch
# of B 64x64 float32 crops is B x 16 KiB, and a model call's activations are ~30x its input.
LIMITS = {
    "batch_size": 65_536,  # 1 GiB of 64x64 float32 crops per batch
    "model_batch": 4_096,  # fast paths peak at 32-128 rows per call
    "unit_rows": 1 << 24,  # rows per commit unit
    "read_rows": 65_536,  # rows per Arrow batch of a read task
}
MAX_ACTORS = 4_096
MAX_GPUS_PER_ACTOR = 16


def parse_actors(text: str | int | None) -> tuple[int, int] | None:
    """`--actors 4` -> (4, 4) (fixed pool); `--actors 1,4` -> (1, 4) (autoscaling); None -> automatic."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        text = str(text)
    parts = str(text).replace(" ", "").split(",")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--actors must be N or MIN,MAX (e.g. 4 or 1,4), got {text!r}") from None
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2 or nums[0] < 1 or nums[1] < nums[0] or nums[1] > MAX_ACTORS:
        raise ConfigError(f"--actors must be N or MIN,MAX with 1 <= MIN <= MAX <= {MAX_ACTORS}, got {text!r}")
    return nums[0], nums[1]


def parse_keep(text: str | list | tuple | None) -> tuple[str, ...]:
    """`--keep a,b` -> ('a', 'b'): metadata columns copied from the input rows into the scores."""
    if not text:
        return ()
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    out: list[str] = []
    for n in names:
        if not n:
            continue
        if n == "crop_id":
            continue  # always written
        if n in RESERVED or n.startswith("_"):
            raise ConfigError(f"--keep {n}: cannot keep this column (reserved: {', '.join(RESERVED)}, and names starting with '_')")
        if n not in out:
            out.append(n)
    return tuple(out)


@dataclass
class ScoreConfig:
    """One `cropray score` run. Dumped into the output manifest."""

    bundle: str  # model bundle directory (cropray train --out)
    input: str  # archive: Parquet file, directory, glob or URI
    output: str  # local output directory (scores; `_quarantine/`, `_manifest.json` inside)
    address: str | None = None  # None: embedded local Ray; "auto" or "ray://host:10001": join a cluster
    actors: tuple[int, int] | None = None  # (min, max) actor pool size; None: one per GPU, else 1..CPUs-1
    batch_size: int = integer(1024, 1, LIMITS["batch_size"])  # rows per batch sent to an actor
    model_batch: int = integer(128, 1, LIMITS["model_batch"])  # rows per model call inside an actor (fast
    #   runtimes peak at 32-128)
    cpus_per_actor: float | None = number(None, 0.0, 1024.0, lo_open=True, nullable=True)  # None: 1 (torch
    #   threads = max(1, round(cpus)))
    num_gpus: float | None = number(None, 0.0, MAX_GPUS_PER_ACTOR, nullable=True)  # per actor; None: 1 when
    #   the cluster has GPUs, else 0
    keep: tuple[str, ...] = ()  # input columns copied to the scores
    precision: str = choice("auto", PRECISIONS)  # auto: ONNX Runtime fp32 (int8 where the bundle's CV admits
    #   it) on CPU, bf16 autocast on CUDA; fp32: no reduced precision; bf16: CUDA only; int8: CPU only
    unit_rows: int = integer(262_144, 1, LIMITS["unit_rows"])  # a commit unit holds whole row groups, at most
    #   ~this many rows
    overwrite: bool = boolean(False)  # discard an existing output directory's results first
    read_rows: int = integer(1024, 1, LIMITS["read_rows"])  # rows per Arrow batch a read task yields (memory
    #   of one read step)
    extra: dict = mapping(default_factory=dict)  # free-form notes recorded in the manifest
    runner: str = choice("auto", RUNNERS)  # ray: Ray Data actors (embedded or --address); local: this process,
    #   no Ray; auto: local for a job of at most LOCAL_MAX_ROWS rows when no cluster or pool is asked for

    def __post_init__(self) -> None:
        if self.actors is not None and not isinstance(self.actors, tuple):
            self.actors = parse_actors(self.actors if not isinstance(self.actors, list) else ",".join(map(str, self.actors)))
        self.keep = parse_keep(self.keep)
        validate(self, "score config")  # each field's rule (cropray.validate)
        if self.runner == "local":
            pool = [flag for flag, v in (("--address", self.address), ("--actors", self.actors),
                                         ("--cpus-per-actor", self.cpus_per_actor), ("--num-gpus", self.num_gpus))
                    if v is not None]
            if pool:
                raise ConfigError(f"--runner local scores in this process without Ray; {', '.join(pool)} "
                                  "size(s) a Ray job: drop it, or use --runner ray (or auto)")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["actors"] = list(self.actors) if self.actors else None
        d["keep"] = list(self.keep)
        return d


def choose_runner(cfg: ScoreConfig, rows: int, environ=None) -> tuple[str, str]:
    """(runner, why) for `rows` rows to score: cfg.runner unless it is "auto"; see LOCAL_MAX_ROWS."""
    import os

    env = os.environ if environ is None else environ
    if cfg.runner != "auto":
        return cfg.runner, f"--runner {cfg.runner}"
    asked = [flag for flag, v in (("--address", cfg.address), ("RAY_ADDRESS", env.get("RAY_ADDRESS") or None),
                                  ("--actors", cfg.actors), ("--cpus-per-actor", cfg.cpus_per_actor),
                                  ("--num-gpus", cfg.num_gpus)) if v is not None]
    if asked:
        return "ray", f"{asked[0]} names a Ray cluster or actor pool"
    if gpu_visible(env):
        return "ray", "a GPU is visible: Ray actors, one per GPU"
    if rows > LOCAL_MAX_ROWS:
        return "ray", f"{rows:,} rows > {LOCAL_MAX_ROWS:,}: Ray Data actors"
    return "local", f"{rows:,} rows <= {LOCAL_MAX_ROWS:,} and no cluster named: in this process, without Ray's start"


def gpu_visible(environ) -> bool:
    """An NVIDIA device node exists and CUDA_VISIBLE_DEVICES does not hide it (no torch import, no CUDA init)."""
    import os

    if environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")
