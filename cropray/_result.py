"""The base of the typed results the jobs return (TrainResult, EvalResult, ScoreResult, TuneResult).

Each result is a dataclass; `to_dict()` (= `dataclasses.asdict`, nested results included) is the
`--json` document, with the keys the summary dicts had. `r["key"]` and `r.get("key")` read the
attribute of that name, so code written against the summary dicts keeps working while it moves to
attributes; there is no `__setitem__`: a result is not edited after it is made.
"""

from __future__ import annotations

import dataclasses
from typing import Any


class JobResult:
    """Mixin for result dataclasses: asdict as the JSON document, read-only item access by field name."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self._names()

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self._names() else default

    def keys(self) -> tuple[str, ...]:
        return self._names()
