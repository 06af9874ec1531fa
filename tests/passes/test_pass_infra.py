"""The pass infrastructure: registry, options, sequences, the context and its instruments."""

from __future__ import annotations

import dataclasses
import io

import pytest
from tir_pass_helpers import module, rowsum, tail_scale

from shapeflow.errors import UnsupportedError, VerifyError
from shapeflow.ir import IRModule, Var, structural_equal
from shapeflow.ir.tir import BufferStore, PrimFunc
from shapeflow.passes import (
    PASSES,
    DumpIR,
    Pass,
    PassContext,
    PrimFuncPass,
    PrintAfter,
    Sequential,
    TimePasses,
    VerifyAfter,
    get_pass,
    pass_options,
    register_pass,
)
from shapeflow.passes.tir import ConvertBlocksToLoops, FlattenBuffer, LoopPartition, UnrollLoop


@pytest.mark.parametrize("name", sorted(PASSES))
def test_every_pass_builds_from_defaults_and_exposes_its_options(name):
    p = get_pass(name)
    assert p.name == name and isinstance(p, Pass)
    assert dataclasses.is_dataclass(p)
    for field in dataclasses.fields(p):
        assert getattr(p, field.name) == field.default
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.max_extent = 1  # options are fixed once a pass is built
    assert set(pass_options(name)) == {f.name for f in dataclasses.fields(p)}


def test_options_by_name():
    p = get_pass("unroll-loop", max_extent=4, explicit_only=False)
    assert p == UnrollLoop(max_extent=4, explicit_only=False)
    assert p.options() == {"max_extent": 4, "explicit_only": False}
    assert p.spec() == "unroll-loop(max_extent=4, explicit_only=False)"
    assert pass_options("loop-partition")["partition_const_loops"][1] is False


def test_unknown_pass_or_option_is_a_user_error():
    with pytest.raises(UnsupportedError, match="unknown pass 'no-such-pass'"):
        get_pass("no-such-pass")
    with pytest.raises(UnsupportedError, match="has no option 'bogus'"):
        get_pass("simplify", bogus=1)


def test_registering_a_duplicate_name_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Impostor(PrimFuncPass):
        name = "simplify"

    with pytest.raises(TypeError, match="two passes named"):
        register_pass(Impostor)


def test_pass_that_does_not_apply_returns_the_same_module():
    mod = module(tail_scale())
    assert FlattenBuffer()(mod) is mod  # blocks still there: flattening does not apply
    lowered = ConvertBlocksToLoops()(mod)
    assert lowered is not mod
    assert ConvertBlocksToLoops()(lowered) is lowered


def test_primfunc_in_primfunc_out():
    func = rowsum()
    out = ConvertBlocksToLoops()(func)
    assert isinstance(out, PrimFunc) and out is not func


def test_sequential_runs_in_order_and_context_skips_by_opt_level():
    mod = module(tail_scale())
    seq = Sequential([ConvertBlocksToLoops(), FlattenBuffer()], name="demo")
    out = seq(mod)
    assert structural_equal(out, FlattenBuffer()(ConvertBlocksToLoops()(mod)))
    assert seq.spec() == "demo[convert-blocks-to-loops, flatten-buffer]"
    lowered = ConvertBlocksToLoops()(mod)
    with PassContext(opt_level=1):
        assert LoopPartition()(lowered) is lowered  # needs opt_level 2
    with PassContext(opt_level=2, disabled_passes=["convert-blocks-to-loops"]):
        assert PassContext.current().opt_level == 2
        assert seq(mod) is mod
    assert PassContext.current().opt_level == 2 and not PassContext.current().instruments


def test_print_after_names_each_pass():
    stream = io.StringIO()
    with PassContext(instruments=[PrintAfter(["flatten-buffer"], stream)]):
        Sequential([ConvertBlocksToLoops(), FlattenBuffer()])(module(rowsum()))
    text = stream.getvalue()
    assert text.startswith("# after flatten-buffer\n")
    assert "convert-blocks-to-loops" not in text and "T.decl_buffer" in text


def test_time_passes_records_every_inner_pass():
    timer = TimePasses()
    with PassContext(instruments=[timer]):
        Sequential([ConvertBlocksToLoops(), FlattenBuffer()])(module(rowsum()))
    assert [name for name, _ in timer.records] == ["convert-blocks-to-loops", "flatten-buffer"]
    assert all(seconds >= 0 for _, seconds in timer.records)
    assert "convert-blocks-to-loops" in timer.summary() and "total" in timer.summary()


def test_dump_ir_writes_numbered_files(tmp_path):
    with PassContext(instruments=[DumpIR(tmp_path / "dump")]):
        Sequential([ConvertBlocksToLoops(), FlattenBuffer()])(module(rowsum()))
    names = sorted(p.name for p in (tmp_path / "dump").iterdir())
    assert names == ["000_input.txt", "001_convert-blocks-to-loops.txt", "002_flatten-buffer.txt"]
    assert "T.block" in (tmp_path / "dump" / "000_input.txt").read_text()
    assert "T.block" not in (tmp_path / "dump" / "001_convert-blocks-to-loops.txt").read_text()


@dataclasses.dataclass(frozen=True)
class _BreaksScoping(PrimFuncPass):
    """Stores to an undefined variable's index: ill-formed on purpose (not registered)."""

    name = "breaks-scoping"

    def transform_function(self, func, ctx):
        buf = func.buffer_params[-1]
        return func.with_body(BufferStore(buf, buf[0], (Var("undefined"),)))


def test_verify_after_blames_the_pass_that_broke_the_ir():
    seq = Sequential([ConvertBlocksToLoops(), _BreaksScoping(), FlattenBuffer()])
    with PassContext(instruments=[VerifyAfter()]):
        with pytest.raises(VerifyError, match="pass 'breaks-scoping' produced ill-formed IR"):
            seq(module(tail_scale()))
    # Without the instrument the broken IR goes through unnoticed.
    assert isinstance(seq(module(tail_scale())), IRModule)


def test_verify_after_blames_bad_input():
    bad = _BreaksScoping()(module(tail_scale()))
    with PassContext(instruments=[VerifyAfter()]):
        with pytest.raises(VerifyError, match="the input of pass 'simplify' is ill-formed"):
            get_pass("simplify")(bad)
