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
    """A `--config` JSON or flag value is unknown or out of range."""
