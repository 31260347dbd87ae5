"""`--kinds`: choose which signal morphologies, time profiles, frequency profiles and negatives to generate.

Every name belongs to one group of `SynthConfig` weights. A group named in the list is restricted to the
names given (the others get weight 0; the given ones keep their configured weight, or 1 where it was
unset or 0); a group not named keeps its configuration. "all" selects every track morphology at equal weight.
"""

from __future__ import annotations

from cropray.errors import ConfigError
from cropray.synth.config import ENVELOPES, NEGATIVE_KINDS, PROFILES, TRACKS, SynthConfig

# group -> (SynthConfig field, names)
GROUPS = {
    "track": ("track_weights", TRACKS),
    "envelope": ("envelope_weights", ENVELOPES),
    "profile": ("profile_weights", PROFILES),
    "negative": ("negative_weights", NEGATIVE_KINDS),
}
ALL_TRACKS = {k: 1.0 for k in TRACKS}  # every morphology at equal weight


def all_kind_names() -> list[str]:
    return ["all", *(n for _, names in GROUPS.values() for n in names)]


def parse_kinds(text: str) -> list[str]:
    """'straight,curved,pulsed' -> ['straight', 'curved', 'pulsed']; ConfigError naming an unknown name."""
    names = [s.strip() for s in str(text).split(",") if s.strip()]
    valid = all_kind_names()
    bad = [n for n in names if n not in valid]
    if bad or not names:
        raise ConfigError(f"unknown kind(s) {', '.join(bad) or '(none given)'}; valid: {', '.join(valid)}")
    return names


def apply_kinds(cfg: SynthConfig, names: list[str]) -> SynthConfig:
    """The config with each named group restricted to the given names (module docstring)."""
    over = {}
    for field, group in GROUPS.values():
        picked = [n for n in group if n in names]
        if field == "track_weights" and "all" in names:
            over[field] = dict(ALL_TRACKS)  # "all" wins over single track names
        elif picked:
            current = getattr(cfg, field) or {}
            over[field] = {n: float(current.get(n, 0.0)) or 1.0 for n in picked}
    return cfg.replace(**over) if over else cfg
