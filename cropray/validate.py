"""One validation mechanism for every config dataclass: a rule in each field's metadata, checked by
`validate(self, what)` from `__post_init__`.

    epochs: int | None = integer(None, 0, 1000, nullable=True)  # max passes over the training split

`integer`, `number`, `choice`, `boolean`, `mapping` and `pair` return a `dataclasses.field` whose
metadata holds a `Rule`; `validate` checks every field that has one, coerces the value to a plain
Python value (numpy scalars and integral floats from sweep samplers become int/float, lists become
tuples for pairs) and raises `ConfigError(field=..., value=..., reason=...)` naming the field, the
value and the valid range. Checks that tie fields together stay as plain code after `validate`.

Why not pydantic (2.x is installed as a Ray dependency)? cropray does not depend on it directly (it
would have to be declared and pinned against Ray's own pin); `import pydantic.dataclasses` costs
~0.35 s, against the front door's 0.26 s `--help`; its lax mode turns "3" into 3 where a config file
should say what it means, and its ValidationError text would have to be rewritten anyway to name the
flag at the CLI. This module (under 200 lines) keeps the frozen dataclasses, the messages and the
`to_dict()` JSON as they are, and imports nothing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from cropray.errors import ConfigError

RULE = "cropray.rule"  # the metadata key
REQUIRED = MISSING  # the default of a field that has none: integer(REQUIRED, 1)


@dataclass(frozen=True)
class Rule:
    """What one field accepts. `kind`: int | float | choice | bool | dict | pair."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False  # lo itself is not allowed (a strictly positive number)
    hi_open: bool = False  # hi itself is not allowed
    choices: tuple | Callable[[], tuple] = ()
    accept: Callable[[Any], bool] | None = None  # choice: also admits a value this says yes to (plugins)
    nullable: bool = False

    def text(self) -> str:
        """The valid values in words: 'int in [1, 4,096]', 'auto | fp32', 'true | false'."""
        if self.kind == "choice":
            return " | ".join(map(str, self.values()))
        if self.kind in ("bool", "dict"):
            return {"bool": "true | false", "dict": "JSON object"}[self.kind]
        if self.kind == "pair":
            return f"a pair (low, high), {fmt(self.lo)} <= low <= high, both finite"
        if self.hi is None:
            return f"{self.kind} {'>' if self.lo_open else '>='} {fmt(self.lo)}"
        return (f"{self.kind} in {'(' if self.lo_open else '['}{fmt(self.lo)}, {fmt(self.hi)}"
                f"{')' if self.hi_open else ']'}")

    def values(self) -> tuple:
        return self.choices() if callable(self.choices) else self.choices

    def check(self, v: Any) -> Any:
        """`v` as a plain Python value; raises _Invalid(reason) when the rule refuses it."""
        if v is None:
            if self.nullable:
                return None
            raise _Invalid(f"must not be null; valid: {self.text()}")
        if self.kind == "choice":
            if (self.accept is not None and self.accept(v)) or v in self.values():
                return v
            raise _Invalid(f"is not valid; valid: {self.text()}")
        if self.kind == "bool":
            if type(v).__name__ not in ("bool", "bool_"):  # Python or numpy bool, never 0/1
                raise _Invalid("must be true or false")
            return bool(v)
        if self.kind == "dict":
            if not isinstance(v, dict):
                raise _Invalid(f"must be a JSON object, got {type(v).__name__}")
            return dict(v)
        if self.kind == "pair":
            return self._pair(v)
        return self._number(v)

    def _number(self, v: Any) -> int | float:
        ok = isinstance(v, numbers.Real) and type(v).__name__ not in ("bool", "bool_")
        if ok and self.kind == "int":
            ok = math.isfinite(v) and float(v).is_integer()
        ok = ok and (v > self.lo if self.lo_open else v >= self.lo)
        ok = ok and (self.hi is None or (v < self.hi if self.hi_open else v <= self.hi))
        if not ok:  # NaN fails every comparison, so it lands here too
            raise _Invalid(f"is out of range; valid: {self.text()}")
        return int(v) if self.kind == "int" else float(v)

    def _pair(self, v: Any) -> tuple[float, float]:
        try:
            lo, hi = (float(x) for x in v)
        except (TypeError, ValueError):
            raise _Invalid(f"must be {self.text()}") from None
        if not (math.isfinite(hi) and self.lo <= lo <= hi):
            raise _Invalid(f"must be {self.text()}")
        return lo, hi


class _Invalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def fmt(x: float | None) -> str:
    """Bounds as people read them: 4,096 and 2,592,000 with separators, 1e-06 and 0.95 as %g."""
    if x is not None and float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:g}"


def _field(rule: Rule, default: Any, default_factory: Any) -> Any:
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata={RULE: rule})
    return field(default=default, metadata={RULE: rule})


def integer(default: Any, lo: int, hi: int | None = None, *, nullable: bool = False) -> Any:
    """An int field in [lo, hi] (hi None: no upper bound)."""
    return _field(Rule("int", lo, hi, nullable=nullable), default, MISSING)


def number(default: Any, lo: float, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False,
           nullable: bool = False) -> Any:
    """A float field in [lo, hi] (an open end with lo_open / hi_open)."""
    return _field(Rule("float", lo, hi, lo_open=lo_open, hi_open=hi_open, nullable=nullable), default, MISSING)


def choice(default: Any, choices: tuple | Callable[[], tuple], *, accept: Callable[[Any], bool] | None = None,
           nullable: bool = False) -> Any:
    """One of `choices` (a tuple, or a function returning it when checked: registries can grow)."""
    return _field(Rule("choice", choices=choices, accept=accept, nullable=nullable), default, MISSING)


def boolean(default: bool) -> Any:
    return _field(Rule("bool"), default, MISSING)


def mapping(*, default: Any = MISSING, default_factory: Any = MISSING, nullable: bool = False) -> Any:
    """A JSON object (dict) field; its keys are the config's own business."""
    return _field(Rule("dict", nullable=nullable), default, default_factory)


def pair(default: tuple[float, float], lo: float) -> Any:
    """A (low, high) range with lo <= low <= high, both finite."""
    return _field(Rule("pair", lo), default, MISSING)


def describe(cls: Any) -> str:
    """One 'field: valid values' entry per ruled field, for --help and error messages."""
    return "; ".join(f"{f.name}: {f.metadata[RULE].text()}" for f in fields(cls) if RULE in f.metadata)


def validate(obj: Any, what: str) -> None:
    """Check every ruled field of the dataclass instance `obj` and store its coerced value (frozen
    dataclasses too). ConfigError: "{what} 'field' = value {reason}", with field/value/reason set."""
    for f in fields(obj):
        rule = f.metadata.get(RULE)
        if rule is None:
            continue
        v = getattr(obj, f.name)
        try:
            new = rule.check(v)
        except _Invalid as e:
            raise ConfigError(f"{what} {f.name!r} = {v!r} {e.reason}", field=f.name, value=v,
                              reason=e.reason) from None
        if new is not v:
            object.__setattr__(obj, f.name, new)


def from_json_dict(cls: Any, d: dict, what: str) -> Any:
    """Build the dataclass `cls` from a JSON-like dict: JSON lists become tuples; an unknown key is a
    ConfigError listing the valid ones (a typo in a config file must fail loudly, not be ignored)."""
    valid = [f.name for f in fields(cls)]
    unknown = sorted(set(d) - set(valid))
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}",
                          field=unknown[0])
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
