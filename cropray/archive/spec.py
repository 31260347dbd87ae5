"""Which crop encoding a Parquet schema holds, and the crop shape."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cropray.errors import ArchiveError

CROP = "crop"
CROP_ID = "crop_id"
DEFAULT_SHAPE = (64, 64)

# Value types a crop may be stored as. float64 is accepted too (cast on read) since users' own
# tools often write it; the four compact ones are the ones cropray reads natively.
SUPPORTED_DTYPES = {
    pa.float32(): np.dtype(np.float32),
    pa.float16(): np.dtype(np.float16),
    pa.uint8(): np.dtype(np.uint8),
    pa.uint16(): np.dtype(np.uint16),
    pa.float64(): np.dtype(np.float64),
}
WRITE_DTYPES = ("float32", "float16", "uint8", "uint16")

# encodings: how the column stores one crop
FIXED = "fixed_size_list"  # also the storage of arrow.fixed_shape_tensor
FIXED_SHAPE_TENSOR = "fixed_shape_tensor"
RAY_TENSOR = "ray_tensor"  # ray.data.arrow_tensor(_v2): list/large_list storage, one shape per column
VAR_LIST = "list"
RAY_TENSOR_NAMES = ("ray.data.arrow_tensor", "ray.data.arrow_tensor_v2")


@dataclass(frozen=True)
class CropSpec:
    """How crops are stored in one file: (H, W), the numpy dtype of the values, and the encoding."""

    shape: tuple[int, int]
    dtype: np.dtype
    encoding: str

    @property
    def length(self) -> int:
        return self.shape[0] * self.shape[1]

    def describe(self) -> str:
        return f"{self.shape[0]}x{self.shape[1]} {self.dtype.name} ({self.encoding})"


def parse_crop_shape(text: str) -> tuple[int, int]:
    """`--crop-shape 64x64` (or `64,64`) -> (64, 64)."""
    try:
        h, w = (int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise ArchiveError(f"--crop-shape must look like 64x64, got {text!r}") from None
    if h < 1 or w < 1:
        raise ArchiveError(f"--crop-shape must be positive, got {text!r}")
    return h, w


def _shape2d(shape, source: str) -> tuple[int, int]:
    dims = [int(d) for d in shape]
    if len(dims) == 3 and dims[0] == 1:  # (1, H, W): a single channel stored explicitly
        dims = dims[1:]
    if len(dims) != 2 or min(dims) < 1:
        raise ArchiveError(f"{source}: crop shape {list(shape)} is not a 2-D H x W shape")
    return dims[0], dims[1]


def _value_dtype(value_type: pa.DataType, source: str) -> np.dtype:
    if value_type not in SUPPORTED_DTYPES:
        names = ", ".join(str(t) for t in SUPPORTED_DTYPES)
        raise ArchiveError(f"{source}: crop values of type {value_type} are not supported (use one of: {names})")
    return SUPPORTED_DTYPES[value_type]


def crop_spec_from_field(field: pa.Field, crop_shape=None, source: str = "archive") -> CropSpec:
    t = field.type
    given = tuple(crop_shape) if crop_shape else None
    if isinstance(t, pa.BaseExtensionType):
        name = t.extension_name
        if name == "arrow.fixed_shape_tensor":
            if list(t.permutation or range(len(t.shape))) != list(range(len(t.shape))):
                raise ArchiveError(f"{source}: permuted fixed_shape_tensor layouts are not supported")
            return CropSpec(_shape2d(t.shape, source), _value_dtype(t.value_type, source), FIXED_SHAPE_TENSOR)
        if name in RAY_TENSOR_NAMES:
            return CropSpec(_shape2d(t.shape, source), _value_dtype(t.storage_type.value_type, source), RAY_TENSOR)
        raise ArchiveError(f"{source}: crop column has extension type {name!r}, which cropray cannot read")
    meta = field.metadata or {}
    ext_name = meta.get(b"ARROW:extension:name", b"").decode()
    if ext_name in RAY_TENSOR_NAMES and (pa.types.is_list(t) or pa.types.is_large_list(t)):
        # Ray's tensor type read without Ray registered: storage plus the shape in the field metadata.
        shape = json.loads(meta.get(b"ARROW:extension:metadata", b"null"))
        if shape:
            return CropSpec(_shape2d(shape, source), _value_dtype(t.value_type, source), RAY_TENSOR)
    if pa.types.is_fixed_size_list(t):
        n = t.list_size
        if given:
            if given[0] * given[1] != n:
                raise ArchiveError(f"{source}: --crop-shape {given[0]}x{given[1]} does not match crops of {n} values")
            shape = given
        else:
            side = math.isqrt(n)
            if side * side != n:
                raise ArchiveError(
                    f"{source}: crops have {n} values, which is not a square; give the shape with --crop-shape HxW"
                )
            shape = (side, side)
        return CropSpec(shape, _value_dtype(t.value_type, source), FIXED)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        # Variable-length lists carry no shape: the given one, else the product's 64x64.
        # Rows of any other length are quarantined as wrong_length.
        return CropSpec(given or DEFAULT_SHAPE, _value_dtype(t.value_type, source), VAR_LIST)
    raise ArchiveError(
        f"{source}: column 'crop' has type {t}; expected arrow.fixed_shape_tensor, fixed_size_list, or list of numbers"
    )


def crop_spec_from_schema(schema: pa.Schema, crop_shape=None, source: str = "archive") -> CropSpec:
    """The CropSpec of the `crop` column in `schema`; ArchiveError naming `source` if impossible."""
    if CROP not in schema.names:
        cols = ", ".join(schema.names[:12]) or "(none)"
        raise ArchiveError(f"{source}: no 'crop' column (columns: {cols})")
    return crop_spec_from_field(schema.field(CROP), crop_shape, source)
