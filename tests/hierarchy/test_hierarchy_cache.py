"""The micro-kernel table on disk: reused when valid, measured again when corrupt, stale or implausible,
relocatable by SHAPEFLOW_CACHE_DIR; and one real measurement of two small candidates."""

import json

import pytest

from shapeflow.passes.hierarchy import (
    MicroKernelResult,
    MicroKernelShape,
    enumerate_candidates,
    load_or_measure,
)
from shapeflow.passes.hierarchy import measure as measure_mod


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SHAPEFLOW_CACHE_DIR", str(tmp_path))
    return tmp_path


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self, hw, shapes):
        self.calls += 1
        return [MicroKernelResult(s.mr, s.nr, 10.0 + s.mr) for s in shapes]


def _shapes(hw):
    return enumerate_candidates(hw)[:3]


def test_cache_written_then_reused(cache_dir, host):
    measure = Counter()
    first = load_or_measure(host, _shapes(host), measure=measure)
    files = list(cache_dir.glob("microkernels-*.json"))
    assert len(files) == 1 and measure.calls == 1
    assert load_or_measure(host, _shapes(host), measure=measure) == first
    assert measure.calls == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: "{not json",
        lambda d: json.dumps({**d, "key": {**d["key"], "version": "0.0.0-other"}}),
        lambda d: json.dumps({**d, "results": d["results"][:-1]}),
        lambda d: json.dumps({**d, "results": [{**r, "gflops": -1.0} for r in d["results"]]}),
        lambda d: json.dumps({**d, "results": [{**r, "gflops": "NaN"} for r in d["results"]]}),
        lambda d: json.dumps([1, 2, 3]),
        lambda d: "\udcff",
    ],
    ids=["corrupt", "stale-version", "missing-entry", "negative", "nan", "wrong-type", "bad-encoding"],
)
def test_damaged_cache_is_measured_again(cache_dir, host, damage):
    measure = Counter()
    good = load_or_measure(host, _shapes(host), measure=measure)
    (path,) = cache_dir.glob("microkernels-*.json")
    text = damage(json.loads(path.read_text()))
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert load_or_measure(host, _shapes(host), measure=measure) == good
    assert measure.calls == 2
    json.loads(path.read_text())  # rewritten whole
    load_or_measure(host, _shapes(host), measure=measure)
    assert measure.calls == 2


def test_unwritable_cache_dir_still_works(tmp_path, monkeypatch, host):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("SHAPEFLOW_CACHE_DIR", str(blocker / "sub"))
    measure = Counter()
    assert len(load_or_measure(host, _shapes(host), measure=measure)) == 3


def test_hardware_change_uses_another_file(cache_dir, host):
    import dataclasses

    measure = Counter()
    load_or_measure(host, _shapes(host), measure=measure)
    other = dataclasses.replace(host, name="other-cpu")
    load_or_measure(other, _shapes(host), measure=measure)
    assert measure.calls == 2 and len(list(cache_dir.glob("microkernels-*.json"))) == 2


def test_real_measurement_small(cache_dir, host):
    lanes = host.lanes(4)
    shapes = [MicroKernelShape(1, lanes, lanes), MicroKernelShape(4, 2 * lanes, lanes)]
    results = measure_mod.measure_candidates(host, shapes, budget_s=0.0005, rounds=20)
    assert [(r.mr, r.nr) for r in results] == [(1, lanes), (4, 2 * lanes)]
    assert all(r.gflops > 0.1 for r in results)
    # A 4 x 2-vector block loads 6 vectors per 8 FMAs, a 1 x 1 block 2 per FMA: it must be clearly faster.
    assert results[1].gflops > 1.3 * results[0].gflops
