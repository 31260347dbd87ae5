"""`cropray tune --archive`: the archive's injected training crops, built once per sweep, and the part
of the sweep state (OUT/data.json "archive") that a resumed sweep must match.

The driver builds the crops once (cropray.train.archive_data.archive_extra, as `cropray train` does);
every trial receives them through Ray's object store with the labels (tune.with_parameters) and adds
them to each fold's training part only; the retrain of the winner trains with the same crops. Trials
compared on one archive draw are compared on equal terms, so a resumed sweep refuses another archive,
other injection settings, or an archive whose files changed (its fingerprint).
"""

from __future__ import annotations

from collections.abc import Callable

from cropray.errors import CroprayError

STATE_KEYS = ("path", "fingerprint", "inject")


def resolve(archive, inject, saved: dict | None, seed: int):
    """(archive, InjectConfig) the sweep uses, (None, None) without an archive.

    saved: data.json of a resumed sweep (None for a fresh one). A resumed sweep reuses its archive and
    settings when none are given, and refuses different ones (CroprayError naming what differs)."""
    from cropray.inject import InjectConfig

    if saved is None:
        return (None, None) if archive is None else (str(archive), inject or InjectConfig(seed=seed))
    state = saved.get("archive")
    if state is None:
        if archive is not None:
            raise CroprayError(f"--archive {archive}: this sweep started without an archive; its trials would not "
                               "compare with ones trained on it - start a new sweep (another --out)")
        return None, None
    saved_inject = InjectConfig.from_dict(state["inject"])
    if archive is None:
        return state["path"], saved_inject
    if str(archive) != state["path"]:
        raise CroprayError(f"--archive {archive}: this sweep started on the archive {state['path']}; resume with "
                           "that one (or without --archive) or start a new sweep")
    if inject is not None and inject != saved_inject:
        mine, theirs = inject.to_dict(), saved_inject.to_dict()
        diff = ", ".join(f"{k} {mine[k]!r} (sweep: {theirs[k]!r})" for k in mine if mine[k] != theirs[k])
        raise CroprayError(f"--archive-crops/--inject-config/--seed: injection settings differ from the ones this "
                           f"sweep started with: {diff}; resume without them or start a new sweep")
    return state["path"], saved_inject


def build(archive, x, y, inject, *, crop_shape=None, say: Callable[[str], None]):
    """(ExtraCrops, summary) of the archive for labels (x, y), or (None, None) without one."""
    if archive is None:
        return None, None
    from cropray.train.archive_data import archive_extra

    crops, info = archive_extra(archive, x, y, inject, crop_shape=crop_shape, say=say)
    say(f"archive {archive}: {info['drawn']:,} backgrounds drawn, {info['excluded']:,} excluded, "
        f"{info['injected']:,} injected + {info['plain']:,} plain, in every trial's training folds")
    return crops, info


def state(archive, inject, info: dict | None) -> dict | None:
    """data.json's "archive" entry."""
    if archive is None:
        return None
    return {"path": str(archive), "fingerprint": info["archive_fingerprint"], "inject": inject.to_dict()}


def check_same(saved: dict, info: dict | None) -> None:
    """A resumed sweep's archive must still hold the files it started on."""
    st = saved.get("archive")
    if st is not None and info is not None and info["archive_fingerprint"] != st["fingerprint"]:
        raise CroprayError(f"{st['path']}: the archive changed since this sweep started (its files' fingerprint "
                           "differs); its trials would not compare - start a new sweep")


def valid_state(st) -> bool:
    """Is data.json's "archive" entry well-formed (absent/None, or path, fingerprint, inject dict)?"""
    return st is None or (isinstance(st, dict) and set(st) == set(STATE_KEYS) and isinstance(st["path"], str)
                          and isinstance(st["fingerprint"], str) and isinstance(st["inject"], dict))
