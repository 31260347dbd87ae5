"""Crop archives: resolve paths, detect encodings, validate and decode rows, write."""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "MISSING_CROP_ID": "cropray.archive.decode",
    "NON_FINITE": "cropray.archive.decode",
    "NULL_CROP": "cropray.archive.decode",
    "REASONS": "cropray.archive.decode",
    "UNSUPPORTED_DTYPE": "cropray.archive.decode",
    "WRONG_LENGTH": "cropray.archive.decode",
    "BatchCheck": "cropray.archive.decode",
    "validate_decode": "cropray.archive.decode",
    "ArchiveFiles": "cropray.archive.files",
    "resolve_archive": "cropray.archive.files",
    "LabeledSet": "cropray.archive.read",
    "file_spec": "cropray.archive.read",
    "iter_tables": "cropray.archive.read",
    "open_parquet": "cropray.archive.read",
    "read_labeled": "cropray.archive.read",
    "CROP": "cropray.archive.spec",
    "CROP_ID": "cropray.archive.spec",
    "WRITE_DTYPES": "cropray.archive.spec",
    "CropSpec": "cropray.archive.spec",
    "crop_spec_from_field": "cropray.archive.spec",
    "crop_spec_from_schema": "cropray.archive.spec",
    "parse_crop_shape": "cropray.archive.spec",
    "ArchiveWriter": "cropray.archive.write",
    "crops_table": "cropray.archive.write",
    "crops_to_arrow": "cropray.archive.write",
    "to_storage_dtype": "cropray.archive.write",
    "write_archive": "cropray.archive.write",
    "write_table_atomic": "cropray.archive.write",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
