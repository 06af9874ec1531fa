import numpy as np
import pytest

from shapeflow.errors import UnsupportedError
from shapeflow.ir import DataType
from shapeflow.ir.dtype import from_numpy_dtype


@pytest.mark.parametrize(
    "spec,kind,bits,lanes",
    [
        ("int8", "int", 8, 1),
        ("uint64", "uint", 64, 1),
        ("float16", "float", 16, 1),
        ("bfloat16", "bfloat", 16, 1),
        ("float32x8", "float", 32, 8),
        ("bool", "bool", 1, 1),
        ("boolx4", "bool", 1, 4),
        ("handle", "handle", 64, 1),
    ],
)
def test_parse_and_print(spec, kind, bits, lanes):
    dt = DataType(spec)
    assert (dt.kind, dt.bits, dt.lanes) == (kind, bits, lanes)
    assert str(dt) == spec
    assert DataType(str(dt)) is dt


@pytest.mark.parametrize("spec", ["int7", "float8", "floaty", "int32x0", "", "bfloat32", "uint"])
def test_bad_dtypes_raise_unsupported(spec):
    with pytest.raises(UnsupportedError):
        DataType(spec)


def test_ranges_and_lanes():
    assert DataType("int8").min_value() == -128 and DataType("int8").max_value() == 127
    assert DataType("uint16").max_value() == 65535
    assert DataType("float32x4").element_of() == "float32"
    assert DataType("int32").with_lanes(16) == "int32x16"
    assert DataType("bool").bytes == 1 and DataType("float64").bytes == 8


def test_numpy_mapping():
    for spec in [
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint32",
        "float16",
        "float32",
        "float64",
        "bool",
    ]:
        assert from_numpy_dtype(DataType(spec).to_numpy()) == spec
    assert DataType("bfloat16").to_numpy().itemsize == 2
    with pytest.raises(UnsupportedError):
        from_numpy_dtype(np.dtype("complex64"))
