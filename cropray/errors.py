"""Errors the user can act on. The CLI prints their message (no traceback) and exits with `exit_code`."""

from __future__ import annotations


class CroprayError(Exception):
    """Bad usage or bad input: exit status 2, message printed as is."""

    exit_code = 2


class ArchiveError(CroprayError):
    """An archive path or file cannot be used (missing, not Parquet, no `crop` column, bad shape)."""


class BundleError(CroprayError):
    """A model bundle is missing, tampered with, or of an unknown format/architecture."""


class ConfigError(CroprayError):
    """A config value is unknown or out of range.

    Raised by the library, it names the config *field* (`field`; None when no single field is at
    fault) and, for a value outside its rule, the `value` and the `reason` ("is out of range; valid:
    int in [1, 4,096]"); the CLI turns the field into the flag that sets it
    (cropray.cli._common.flag_error), so no library message has to know the command line.
    """

    def __init__(self, message: str, *, field: str | None = None, value: object = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.field, self.value, self.reason = field, value, reason
