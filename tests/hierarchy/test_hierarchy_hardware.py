"""Hardware detection: the host is read, overrides win, and failures fall back with a warning."""

import warnings

import pytest

from shapeflow.passes.hierarchy import CPUModel, GPUModel, detect_cpu
from shapeflow.passes.hierarchy.hardware import FALLBACK, parse_size, read_caches, simd_from_features


def _fake_sysfs(root, entries):
    for i, (level, kind, size) in enumerate(entries):
        d = root / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    return root


def test_host_detection_has_sane_values():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # this machine reports everything
        hw = detect_cpu()
    assert hw.cores >= 1 and hw.simd_bits in (128, 256, 512)
    assert hw.l1_bytes < hw.l2_bytes <= hw.l3_bytes
    assert [lv.name for lv in hw.levels] == ["threads", "L3", "L2", "L1", "registers"]
    if "avx512f" in hw.features:
        assert (hw.simd_bits, hw.vector_registers, hw.lanes(4)) == (512, 32, 16)


def test_sysfs_parsing(tmp_path):
    root = _fake_sysfs(
        tmp_path,
        [(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "1024K"), (3, "Unified", "32M")],
    )
    assert read_caches(root) == {"l1_bytes": 48 * 1024, "l2_bytes": 1 << 20, "l3_bytes": 32 << 20}
    assert parse_size("512") == 512
    with pytest.raises(ValueError):
        parse_size("0K")


def test_failed_probe_falls_back_with_warning(tmp_path):
    def broken():
        raise RuntimeError("no features here")

    with pytest.warns(RuntimeWarning, match="features"):
        hw = detect_cpu(features_probe=broken, cache_root=tmp_path / "missing")
    assert hw.simd_bits == FALLBACK["simd_bits"] and hw.l2_bytes == FALLBACK["l2_bytes"]
    assert hw.provenance["l2_bytes"] == "fallback"


def test_garbage_sysfs_falls_back(tmp_path):
    root = _fake_sysfs(tmp_path, [(1, "Data", "lots")])
    with pytest.warns(RuntimeWarning, match="caches"):
        hw = detect_cpu(features_probe=lambda: ("x", {"avx2", "fma"}), cache_root=root)
    assert (hw.simd_bits, hw.vector_registers) == (256, 16)
    assert hw.l1_bytes == FALLBACK["l1_bytes"]


def test_overrides_win_and_silence_the_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hw = detect_cpu(
            features_probe=lambda: ("y", {"neon"}),
            cache_root=_fake_sysfs(
                tmp_path, [(1, "Data", "64K"), (2, "Unified", "2M"), (3, "Unified", "8M")]
            ),
            cores=3,
            l2_bytes=4 << 20,
        )
    assert (hw.cores, hw.l2_bytes, hw.l1_bytes, hw.simd_bits) == (3, 4 << 20, 64 << 10, 128)
    assert hw.provenance["l2_bytes"] == "override"
    with pytest.raises(TypeError):
        detect_cpu(no_such_field=1)


def test_feature_table():
    assert simd_from_features(frozenset({"avx512f"})) == (512, 32)
    assert simd_from_features(frozenset({"sse2"})) == (128, 16)
    assert simd_from_features(frozenset()) is None


def test_gpu_model_uses_the_same_level_structure():
    gpu = GPUModel("H100", sms=132)
    kinds = [lv.kind for lv in gpu.levels]
    assert kinds[0] == "parallel" and "memory" in kinds and kinds[-1] == "register"
    assert isinstance(CPUModel().levels[0].units, int) and gpu.key() != CPUModel().key()
