"""Crop archives (SPEC 2): resolve paths, detect encodings, validate and decode rows, write."""

from cropray.archive.decode import (
    MISSING_CROP_ID,
    NON_FINITE,
    NULL_CROP,
    REASONS,
    UNSUPPORTED_DTYPE,
    WRONG_LENGTH,
    BatchCheck,
    decode_crops,
    validate_batch,
    validate_decode,
)
from cropray.archive.files import ArchiveFiles, resolve_archive
from cropray.archive.read import LabeledSet, file_spec, iter_tables, open_parquet, read_labeled
from cropray.archive.spec import (
    CROP,
    CROP_ID,
    WRITE_DTYPES,
    CropSpec,
    crop_spec_from_field,
    crop_spec_from_schema,
    parse_crop_shape,
)
from cropray.archive.write import (
    ArchiveWriter,
    crops_table,
    crops_to_arrow,
    to_storage_dtype,
    write_archive,
    write_table_atomic,
)

__all__ = [
    "ArchiveFiles",
    "ArchiveWriter", "ArchiveWriter", "BatchCheck", "CROP", "CROP_ID", "CropSpec", "LabeledSet", "MISSING_CROP_ID",
    "NON_FINITE", "NULL_CROP", "REASONS", "UNSUPPORTED_DTYPE", "WRITE_DTYPES", "WRONG_LENGTH",
    "crop_spec_from_field", "crop_spec_from_schema", "crops_table", "crops_to_arrow", "decode_crops",
    "file_spec", "iter_tables", "open_parquet", "parse_crop_shape", "read_labeled", "resolve_archive",
    "to_storage_dtype", "validate_batch", "validate_decode", "write_archive", "write_table_atomic",
]
