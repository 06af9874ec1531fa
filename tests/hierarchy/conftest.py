"""Fixtures of the hierarchy tests: a deterministic micro-kernel table (no measuring in tests) and kernel
families built once per session with a small register block, so the whole area compiles quickly."""

import pytest

from shapeflow.passes.hierarchy import GemmKernel, MicroKernelResult, enumerate_candidates, host_cpu_model


def fake_table(hw, best=(6, 2)):
    """Every candidate of `hw`, rated so that MR x (vectors * lanes) = `best` wins."""
    lanes = hw.lanes(4)
    out = []
    for s in enumerate_candidates(hw):
        rate = 100.0 if (s.mr, s.vectors) == best else 20.0 + s.mr + s.vectors
        out.append(MicroKernelResult(s.mr, s.nr, rate))
    assert any(r.nr == best[1] * lanes for r in out)
    return tuple(out)


@pytest.fixture(scope="session")
def host():
    return host_cpu_model()


@pytest.fixture(scope="session")
def sym_gemm(host):
    """C = A @ B with M, N, K all symbolic; register block 6 x (2 vectors)."""
    return GemmKernel(None, None, hardware=host, table=fake_table(host))
