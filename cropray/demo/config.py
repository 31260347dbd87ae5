"""`DemoConfig`: the sizes of the demo's steps (torch- and Ray-free)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cropray.errors import ConfigError
from cropray.validate import boolean, integer, number, validate


@dataclass
class DemoConfig:
    """One `cropray demo` run: synth -> tune (small) -> bundle, and its twin trained with the archive ->
    score -> eval -> HTML report."""

    workdir: str = "cropray-demo"  # everything the demo writes goes here
    labels: int = integer(200, 25)  # labelled crops to train on (200 = the "mid" regime: shallow/deep CNN, siamese)
    eval_n: int = integer(2000, 20)  # fresh labelled crops (another seed) to evaluate the final model on
    archive_n: int = integer(100_000, 1)  # unlabelled crops to score
    archive_files: int = integer(8, 1)  # files of the unlabelled archive
    samples: int = integer(6, 1)  # sweep trials (the first is the regime's default configuration)
    epochs: int = integer(8, 1)  # max epochs per trial (ASHA stops poor trials earlier)
    seed: int = integer(0, 0)  # base seed: labels use seed, eval seed+1, archive seed+2
    archive_crops: int = integer(4000, 0, 2_000_000)  # backgrounds drawn from the archive for injection into
    #   the retrain of the sweep's best config (0: labels only, no with-archive twin)
    archive_per_epoch: int = integer(256, 1)  # archive crops per training epoch (as many real ones beside them)
    target_fpr: float | None = number(None, 0.0, 0.5, lo_open=True, hi_open=True, nullable=True)  # the shipped
    #   threshold from the archive: the score this fraction of held-back screened archive backgrounds exceed
    #   (the archive-trained bundle and dedoppler; the labels-only bundle has no archive: Youden's J). None: Youden
    top: int = integer(24, 1)  # top-scoring crops shown in the report
    overwrite: bool = boolean(False)  # replace a non-empty workdir

    def __post_init__(self) -> None:
        validate(self, "demo config")  # each field's rule (cropray.validate)
        if self.archive_files > self.archive_n:
            raise ConfigError(f"demo config archive_files {self.archive_files} is more than archive_n "
                              f"{self.archive_n}", field="archive_files")
        if self.target_fpr is not None and not self.archive_crops:
            raise ConfigError("demo config target_fpr needs archive_crops > 0: the threshold is set on the archive's "
                              "own screened backgrounds", field="target_fpr")

    @classmethod
    def quick(cls, **kw) -> DemoConfig:
        """A small run for tests and a first look (about a minute on 2 CPUs)."""
        base = dict(labels=80, eval_n=400, archive_n=4000, archive_files=4, samples=2, epochs=2, top=8,
                    archive_crops=1000)
        base.update(kw)
        return cls(**base)

    def to_dict(self) -> dict:
        return asdict(self)
