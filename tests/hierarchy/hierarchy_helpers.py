"""Helpers of the hierarchy tests (a uniquely named module: tests/ folders are not packages)."""

from shapeflow.passes.hierarchy import MicroKernelResult, enumerate_candidates


def fake_table(hw, best=(6, 2)):
    """Every micro-kernel candidate of `hw`, rated so that MR x (vectors * lanes) = `best` wins: a
    deterministic table, so tests never measure."""
    lanes = hw.lanes(4)
    out = []
    for s in enumerate_candidates(hw):
        rate = 100.0 if (s.mr, s.vectors) == best else 20.0 + s.mr + s.vectors
        out.append(MicroKernelResult(s.mr, s.nr, rate))
    assert any(r.nr == best[1] * lanes for r in out)
    return tuple(out)
