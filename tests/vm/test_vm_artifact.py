"""Artifacts: saved, loaded in a fresh process and run with equal results; damaged or foreign files refused
with a shapeflow.Error before any code is loaded."""

import hashlib
import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import vm_models

import shapeflow as sf
from shapeflow.runtime.artifact import FORMAT_VERSION, MAGIC

rng = np.random.default_rng(2)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """The norm-chain model (a constant, planned storage) saved once."""
    exe = sf.compile(vm_models.norm_chain(), dims={"b": (1, 8), "s": (1, 128)})
    path = tmp_path_factory.mktemp("artifact") / "norm.sfa"
    exe.save(path)
    return exe, path


def test_load_in_a_fresh_process_gives_equal_results(saved, tmp_path):
    exe, path = saved
    x = rng.standard_normal((2, 17, 24)).astype("float32")
    inputs = [x, *rng.standard_normal((2, 24)).astype("float32")]
    for i, a in enumerate(inputs):
        np.save(tmp_path / f"in{i}.npy", a)
    script = textwrap.dedent(
        f"""
        import numpy as np, shapeflow as sf
        exe = sf.load({str(path)!r})
        args = [np.load({str(tmp_path)!r} + f"/in{{i}}.npy") for i in range(3)]
        np.save({str(tmp_path)!r} + "/out.npy", exe(*args))
        try:
            exe(args[0][:, :, :5].copy(), args[1], args[2])
        except sf.ShapeError as e:
            print("SHAPEERROR", e.parameter, e.dimension, e.actual)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "SHAPEERROR x 2 5" in done.stdout
    got = np.load(tmp_path / "out.npy")
    np.testing.assert_array_equal(got, exe(*inputs))


def test_load_in_process_tuple_outputs_and_resave(tmp_path):
    exe = sf.compile(vm_models.reshape_concat())
    exe.save(tmp_path / "a.sfa")
    loaded = sf.load(tmp_path / "a.sfa")
    x = rng.standard_normal((7, 6)).astype("float32")
    for got, want in zip(loaded(x), exe(x)):
        np.testing.assert_array_equal(got, want)
    loaded.save(tmp_path / "b.sfa")  # a loaded executable saves its object code as it was
    again = sf.load(tmp_path / "b.sfa")
    np.testing.assert_array_equal(again(x)[0], exe(x)[0])
    assert loaded.signature["main"]["params"][0][0] == "x"


# -- damaged and foreign files ------------------------------------------------------------------


def _split(data: bytes):
    magic, version, digest = struct.unpack_from("<8sI32s", data)
    body = data[44:]
    (hlen,) = struct.unpack_from("<Q", body)
    header = json.loads(body[8 : 8 + hlen])
    return header, body[8 + hlen :]


def _rewrite(data: bytes, change) -> bytes:
    """The artifact with its header changed by `change` and a valid checksum (a well-formed foreign file)."""
    header, payload = _split(data)
    change(header)
    hb = json.dumps(header).encode()
    body = struct.pack("<Q", len(hb)) + hb + payload
    return struct.pack("<8sI32s", MAGIC, FORMAT_VERSION, hashlib.sha256(body).digest()) + body


def _refused(tmp_path, data: bytes, match: str):
    bad = tmp_path / "bad.sfa"
    bad.write_bytes(data)
    with pytest.raises(sf.Error, match=match):
        sf.load(bad)


@pytest.mark.parametrize("cut", [0, 7, 20, 44, 60, 0.5, -1])
def test_truncated_files_are_refused(saved, tmp_path, cut):
    data = saved[1].read_bytes()
    end = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    _refused(tmp_path, data[:end], "not a shapeflow artifact|corrupted")


@pytest.mark.parametrize("where", [8 + 4 + 5, 44 + 3, 200, 0.5, -1])
def test_altered_bytes_are_refused(saved, tmp_path, where):
    data = bytearray(saved[1].read_bytes())
    i = int(len(data) * where) if isinstance(where, float) else (where if where >= 0 else len(data) + where)
    data[i] ^= 0x40
    _refused(tmp_path, bytes(data), "corrupted")


def test_appended_bytes_are_refused(saved, tmp_path):
    _refused(tmp_path, saved[1].read_bytes() + b"\0", "corrupted")


def test_wrong_magic_and_format_version(saved, tmp_path):
    data = saved[1].read_bytes()
    _refused(tmp_path, b"NOTSHAPE" + data[8:], "not a shapeflow artifact")
    _refused(tmp_path, data[:8] + struct.pack("<I", FORMAT_VERSION + 1) + data[12:], "format version")


def test_other_shapeflow_version_is_refused(saved, tmp_path):
    data = _rewrite(saved[1].read_bytes(), lambda h: h.update(shapeflow_version="0.0.1"))
    _refused(tmp_path, data, r"written by shapeflow 0\.0\.1")


def test_other_target_is_refused(saved, tmp_path):
    data = saved[1].read_bytes()

    def other_triple(h):
        h["target"]["triple"] = "aarch64-unknown-linux-gnu"

    def more_features(h):
        h["target"]["features"] += ",+shapeflow-imaginary-feature"

    def cuda(h):
        h["target"]["kind"] = "cuda"

    _refused(tmp_path, _rewrite(data, other_triple), "aarch64")
    _refused(tmp_path, _rewrite(data, more_features), "shapeflow-imaginary-feature")
    _refused(tmp_path, _rewrite(data, cuda), "cuda")


def test_malformed_program_with_valid_checksum_is_an_error(saved, tmp_path):
    data = saved[1].read_bytes()

    def drop_sections(h):
        h["sections"] = [s for s in h["sections"] if s["name"] != "program"]

    def bad_extent(h):
        h["sections"][0]["length"] = 10**12

    _refused(tmp_path, _rewrite(data, drop_sections), "malformed")
    _refused(tmp_path, _rewrite(data, bad_extent), "malformed")


def test_missing_file(tmp_path):
    with pytest.raises(sf.Error, match="cannot read"):
        sf.load(tmp_path / "nope.sfa")
