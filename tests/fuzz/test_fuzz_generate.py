"""The fuzzer's generator and IR mutators: generated programs verify and run; mutants stay well-typed."""

import random

import pytest

from shapeflow.errors import Error
from shapeflow.fuzz.generate import generate_prim_func
from shapeflow.fuzz.inputs import choose_dims, iteration_cost, make_arguments
from shapeflow.fuzz.mutate_ir import MUTATORS, mutate
from shapeflow.fuzz.sites import replace_site, sites_of
from shapeflow.ir import structural_equal
from shapeflow.ir.expr import IntImm
from shapeflow.ir.tir import verify
from shapeflow.ir.tir.interpreter import run


@pytest.mark.parametrize("seed", range(40))
def test_generated_programs_verify_and_run(seed):
    func = generate_prim_func(random.Random(seed))
    verify(func)
    args = make_arguments(func, seed)
    run(func, *args)  # in bounds, no division by zero: must not raise


def test_generation_is_deterministic_per_seed():
    a = generate_prim_func(random.Random(7))
    b = generate_prim_func(random.Random(7))
    assert structural_equal(a, b)
    assert not structural_equal(a, generate_prim_func(random.Random(8)))


def test_replace_site_replaces_exactly_one_node():
    func = generate_prim_func(random.Random(3))
    sites = sites_of(func)
    target = next(s for s in sites if isinstance(s.node, IntImm))
    out = replace_site(func, target.index, lambda s: IntImm(s.node.dtype, 5 if s.node.value != 5 else 6))
    assert not structural_equal(out, func)
    assert len(sites_of(out)) == len(sites)


@pytest.mark.parametrize("name", sorted(MUTATORS))
def test_each_mutator_changes_programs_and_mostly_keeps_them_valid(name):
    valid = changed = 0
    for seed in range(12):
        func = generate_prim_func(random.Random(seed))
        found = MUTATORS[name](func, random.Random(seed))
        if found is None:
            continue
        changed += not structural_equal(found.func, func)
        try:
            verify(found.func)
        except Error:
            continue
        valid += 1
        dims = choose_dims(found.func, random.Random(seed))
        if iteration_cost(found.func, dims) < 100_000:
            try:
                run(found.func, *make_arguments(found.func, seed, dims))
            except Error:
                pass  # user-level faults (an assert, an out-of-bounds index) are allowed in mutants
    assert changed >= 3, f"{name} changed only {changed} programs"
    assert valid >= changed // 2, f"{name}: only {valid} of {changed} mutants verify"


def test_mutate_draws_from_the_registry():
    func = generate_prim_func(random.Random(1))
    names = {mutate(func, random.Random(s)).name for s in range(40)}
    assert len(names) >= 8
