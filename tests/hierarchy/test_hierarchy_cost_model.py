"""The cost model's choices, deterministic given a hardware description and a micro-kernel table; the
choice is visible through explain() and the debug log."""

import logging

import numpy as np

from shapeflow.passes.hierarchy import CostModel, CPUModel, MicroKernelResult, pick_family

HW = CPUModel(
    name="test",
    features=frozenset({"avx512f"}),
    cores=4,
    simd_bits=512,
    vector_registers=32,
    l1_bytes=48 << 10,
    l2_bytes=1 << 20,
    l3_bytes=32 << 20,
)
TABLE = tuple(
    MicroKernelResult(mr, 32, rate)
    for mr, rate in [(1, 20.0), (2, 40.0), (4, 70.0), (6, 90.0), (8, 100.0), (12, 110.0)]
)


def _model(mrs=(12,)):
    return CostModel(HW, TABLE, mrs, 32)


def test_gemv_splits_over_n():
    d = _model().choose(1, 4096, 4096)
    assert (d.pm, d.pn) == (1, HW.cores)
    assert d.kc == 4096  # no reuse of B across register blocks: no K blocking


def test_single_panel_splits_over_m():
    d = _model().choose(2000, 32, 512)
    assert (d.pm, d.pn) == (HW.cores, 1)


def test_follows_the_thread_count():
    import dataclasses

    one = dataclasses.replace(_model(), threads=1)
    assert (one.choose(1, 4096, 4096).pm, one.choose(1, 4096, 4096).pn) == (1, 1)
    assert one.choose(2000, 32, 512).pm == 1


def test_tiny_problem_stays_on_one_thread():
    d = _model().choose(1, 32, 8)
    assert (d.pm, d.pn) == (1, 1)


def test_large_problem_blocks_k_for_l1_and_m_for_l2():
    d = _model().choose(2048, 4096, 4096)
    assert d.kc * 32 * 4 <= HW.l1_bytes  # the B micro-panel fits L1
    assert d.mc * d.kc * 4 <= HW.l2_bytes // 2 and d.mc % d.mr == 0
    assert d.pm * d.pn >= HW.cores


def test_picks_the_register_block_that_fits_the_rows():
    model = _model(mrs=(12, 8))
    assert model.choose(16, 1024, 1024).mr == 8  # 8 + 8 rows beat 12 + a 4-row tail block
    assert model.choose(2400, 1024, 1024).mr == 12


def test_packs_a_when_its_rows_would_share_cache_sets():
    model = _model()
    big_pow2 = model.choose(1024, 4096, 4096)  # rows 16 KiB apart: a block of A evicts itself from L2
    assert big_pow2.pack_a
    assert not model.choose(1, 4096, 4096).pack_a  # one row: nothing to reuse, nothing to pack
    assert not model.choose(1024, 768, 770).pack_a  # rows spread over the sets: packing only costs


def test_choice_is_deterministic_and_fast():
    model = _model(mrs=(12, 8))
    shapes = [(m, n, k) for m in (1, 7, 100, 1949) for n, k in ((768, 768), (11008, 4096))]
    first = [model.choose(*s) for s in shapes]
    assert first == [model.choose(*s) for s in shapes]
    assert len({(d.pm, d.pn, d.kc) for d in first}) > 1  # it does depend on the shape


def test_pick_family_prefers_the_fewest_loads_among_the_fastest():
    assert pick_family(TABLE, HW) == (32, (12,))
    assert pick_family(TABLE, HW, count=2, tolerance=0.15) == (32, (12, 8))
    near = TABLE + (MicroKernelResult(14, 32, 108.0), MicroKernelResult(3, 64, 111.0))
    assert pick_family(near, HW) == (32, (14,))  # within 3% of the best, and the fewest loads per FMA
    assert pick_family(near, HW, tolerance=0.0) == (64, (3,))


def test_explain_and_debug_log(sym_gemm, caplog):
    with caplog.at_level(logging.DEBUG, logger="shapeflow.hierarchy"):
        text = sym_gemm.explain(100, 300, 200)
        a, b = np.ones((3, 5), np.float32), np.ones((5, 2), np.float32)
        sym_gemm(a, b)
    d = sym_gemm.choose(100, 300, 200)
    assert d.summary() in text
    for word in ("parallel", "temporal-spatial", "temporal-reduction", "registers", "L2"):
        assert word in text
    assert any("M=3 N=2 K=5" in r.getMessage() for r in caplog.records)
