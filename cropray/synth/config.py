"""`SynthConfig`: every knob of the synthetic spectrogram generator, torch- and Ray-free.

Crops are (T, F) = (time rows, frequency channels) raw power. One doc line per field; values are
checked on construction (ConfigError naming the field), and `to_dict()` is what gets dumped as JSON.
"""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass

from cropray.errors import ConfigError
from cropray.validate import from_json_dict, integer, mapping, number, pair, validate

PROFILES = ("gaussian", "sinc2", "boxcar")
ENVELOPES = ("constant", "scintillating", "pulsed")
TRACKS = ("none", "straight", "curved", "wobble", "wander")  # signal track morphologies (components.track_offsets)
NEGATIVE_KINDS = ("noise", "impulse", "blob", "bump", "bandpass")
# Size bounds of one synthetic archive (inclusive): 10^8 64x64 float32 crops are ~1.6 TB already.
MAX_CROPS = 100_000_000
MAX_FILES = 100_000
MAX_SIDE = 4096  # time_bins, freq_channels


def check_counts(n, files: int | None) -> None:
    """`n` crops in `files` Parquet files (None: one per chunk) must be integers within the bounds;
    ConfigError naming the field and the bound."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= MAX_CROPS:
        raise ConfigError(f"n must be an integer in [1, {MAX_CROPS:,}], got {n!r}", field="n")
    if files is not None and (isinstance(files, bool) or not isinstance(files, numbers.Integral)
                              or not 1 <= files <= min(n, MAX_FILES)):
        raise ConfigError(f"files must be an integer in [1, min(n, {MAX_FILES:,})] = [1, {min(n, MAX_FILES):,}], "
                          f"got {files!r}", field="files")


@dataclass(frozen=True)
class SynthConfig:
    # --- crop and labels ---
    time_bins: int = integer(64, 8, MAX_SIDE)  # T: rows (time) per crop
    freq_channels: int = integer(64, 8, MAX_SIDE)  # F: channels (frequency) per crop
    positive_fraction: float = number(0.5, 0.0, 1.0)  # probability that a crop holds a narrowband signal
    #   (label 1)
    # --- noise (both classes) ---
    noise_level_range: tuple[float, float] = pair((1e-2, 1e4), 1e-30)  # mean noise power per crop,
    #   log-uniform (>= 5 decades)
    dof_range: tuple[float, float] = pair((1.0, 64.0), 0.5)  # radiometer dof nu, log-uniform: power ~ chi2(2
    #   nu)/(2 nu), std = mean/sqrt(nu)
    bandpass_slope_std: float = number(0.3, 0.0, 3.0)  # std of the log-gain slope across the crop on every
    #   crop (0.3 ~ +-35 %)
    ripple_max: float = number(0.04, 0.0, 3.0)  # max fractional amplitude of the slow bandpass ripple (period
    #   16..128 channels)
    bandpass_feature_prob: float = number(0.15, 0.0, 1.0)  # prob. of a strong slope, a gain step or an edge
    #   roll-off, on any crop
    gain_drift_prob: float = number(0.3, 0.0, 1.0)  # prob. of a slow gain drift over time (ramp + slow wave,
    #   up to ~+-20 %)
    # --- positives: one narrowband signal ---
    snr_range: tuple[float, float] = pair((5.0, 100.0), 1e-6)  # SNR of the de-drifted time-integrated
    #   spectrum, log-uniform
    drifting_fraction: float = number(0.5, 0.0, 1.0)  # fraction of signals with a linear drift (others stay
    #   in one channel)
    track_weights: dict | None = mapping(default=None, nullable=True)  # weights over TRACKS; None: straight
    #   w.p. drifting_fraction, else none
    drift_range: tuple[float, float] = pair((0.05, 0.9), 0.0)  # |drift| in channels per row for drifting
    #   signals, uniform
    min_track_fraction: float = number(0.85, 0.0, 1.0)  # a drifting track stays inside the crop for at least
    #   this fraction of rows
    width_range: tuple[float, float] = pair((1.0, 4.0), 0.5)  # signal width in channels (FWHM / main lobe /
    #   boxcar), log-uniform
    profile_weights: dict = mapping(default_factory=lambda: {"gaussian": 0.5, "sinc2": 0.25, "boxcar": 0.25})
    envelope_weights: dict = mapping(default_factory=lambda: {"constant": 0.4, "scintillating": 0.3, "pulsed": 0.3})
    rfi_on_positive: float = number(0.1, 0.0, 1.0)  # prob. that a positive also carries an impulse or blob
    #   (labels mean "has a signal")
    # --- negatives ---
    negative_weights: dict = mapping(
        default_factory=lambda: {"noise": 0.2, "impulse": 0.2, "blob": 0.2, "bump": 0.2, "bandpass": 0.2}
    )
    # --- metadata a detector would emit (Breakthrough-Listen-like high-resolution products) ---
    channel_width_hz: float = number(2.7939677238464355, 0.0, 1e300, lo_open=True)  # frequency step between
    #   channels
    row_seconds: float = number(18.253611008, 0.0, 1e300, lo_open=True)  # time step between rows

    def __post_init__(self):
        validate(self, "synth config")  # each field's rule (cropray.validate)

        def bad(name, why):
            raise ConfigError(f"synth config: {name} {why} (got {getattr(self, name)!r})", field=name)

        if self.drift_range[1] * (self.time_bins - 1) > 2 * self.freq_channels:
            bad("drift_range", "lets a track cross more than twice the crop width")
        for name, valid in (
            ("profile_weights", PROFILES), ("envelope_weights", ENVELOPES), ("negative_weights", NEGATIVE_KINDS),
            ("track_weights", TRACKS),
        ):
            w = getattr(self, name)
            if name == "track_weights" and w is None:
                continue
            if set(w) - set(valid):
                bad(name, f"must be a dict with keys among {', '.join(valid)}")
            if any(not isinstance(v, int | float) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
                bad(name, "must have non-negative weights with a positive sum")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> SynthConfig:
        """Build from a JSON-like dict; unknown keys are a ConfigError listing the valid ones."""
        return from_json_dict(cls, d, "synth config")

    def replace(self, **kw) -> SynthConfig:
        return SynthConfig.from_dict({**self.to_dict(), **kw})
