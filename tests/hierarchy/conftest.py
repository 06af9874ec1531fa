"""Fixtures of the hierarchy tests: kernel families built once per session with a small register block
and a deterministic micro-kernel table (no measuring), so the whole area compiles quickly."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hierarchy_helpers import fake_table  # noqa: E402

from shapeflow.passes.hierarchy import GemmKernel, host_cpu_model  # noqa: E402


@pytest.fixture(scope="session")
def host():
    return host_cpu_model()


@pytest.fixture(scope="session")
def sym_gemm(host):
    """C = A @ B with M, N, K all symbolic; register block 6 x (2 vectors)."""
    return GemmKernel(None, None, hardware=host, table=fake_table(host))
