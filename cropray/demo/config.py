"""`DemoConfig`: the sizes of the demo's steps (torch- and Ray-free)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cropray.errors import ConfigError


@dataclass
class DemoConfig:
    """One `cropray demo` run: synth -> tune (small) -> bundle -> score -> eval -> HTML report."""

    workdir: str = "cropray-demo"  # everything the demo writes goes here
    labels: int = 200  # labelled crops to train on (200 = the "mid" regime: shallow/deep CNN, siamese)
    eval_n: int = 2000  # fresh labelled crops (another seed) to evaluate the final model on
    archive_n: int = 100_000  # unlabelled crops to score
    archive_files: int = 8  # files of the unlabelled archive
    samples: int = 6  # sweep trials (the first is the regime's default configuration)
    epochs: int = 8  # max epochs per trial (ASHA stops poor trials earlier)
    seed: int = 0  # base seed: labels use seed, eval seed+1, archive seed+2
    top: int = 24  # top-scoring crops shown in the report
    overwrite: bool = False  # replace a non-empty workdir

    def __post_init__(self) -> None:
        for name, lo in (("labels", 25), ("eval_n", 20), ("archive_n", 1), ("archive_files", 1),
                         ("samples", 1), ("epochs", 1), ("top", 1), ("seed", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or v < lo:
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= {lo}, got {v!r}")
        if self.archive_files > self.archive_n:
            raise ConfigError(f"--archive-files {self.archive_files} is more than --archive-n {self.archive_n}")

    @classmethod
    def quick(cls, **kw) -> DemoConfig:
        """A small run for tests and a first look (about a minute on 2 CPUs)."""
        base = dict(labels=80, eval_n=400, archive_n=4000, archive_files=4, samples=2, epochs=2, top=8)
        base.update(kw)
        return cls(**base)

    def to_dict(self) -> dict:
        return asdict(self)
