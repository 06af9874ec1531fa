"""Coverage feedback steering the campaign: the power schedule mutates productive and cheap corpus entries
more, the operator schedule shifts tests to the kinds of mutation that keep finding arcs, both fall back
to the blind mix without feedback, and a kept seed loses only the passes after its last new-arc pass."""

import collections
import random

from shapeflow.fuzz.energy import BLIND_MIX, OperatorSchedule, PowerSchedule
from shapeflow.fuzz.mutate_passes import drop_useless


def _picks(schedule, n=2000):
    return collections.Counter(schedule.pick() for _ in range(n))


def test_productive_entries_are_mutated_more_than_exhausted_ones():
    power = PowerSchedule(random.Random(0))
    for _ in range(3):
        power.add(gain=20)
    for _ in range(40):
        power.credit(0, kept=True)  # entry 0 keeps paying off
        power.credit(1, kept=False)  # entry 1 is exhausted
    counts = _picks(power)
    assert counts[0] > 3 * counts[1]
    assert counts[2] > counts[1]  # a fresh entry is explored before an exhausted one


def test_cheap_entries_get_more_energy_than_slow_ones():
    power = PowerSchedule(random.Random(1))
    power.add(gain=10, cost=0.1)
    power.add(gain=10, cost=2.0)
    power.add(gain=10, cost=0.5)
    counts = _picks(power)
    assert counts[0] > 2 * counts[1]


def test_without_feedback_the_choice_ignores_coverage():
    power = PowerSchedule(random.Random(2), feedback=False)
    for _ in range(20):
        power.add(gain=1)
    for _ in range(100):
        power.credit(0, kept=True)
    counts = _picks(power, 4000)
    assert counts[0] < 0.1 * 4000  # entry 0's finds do not matter
    assert counts[19] > counts[5]  # recent entries are favoured half of the time


def test_operator_schedule_follows_the_yield():
    ops = OperatorSchedule(random.Random(3), "full")
    for _ in range(200):
        ops.credit("schedule", 30, 0.2)
        for op in ("fresh", "ir", "passes", "both"):
            ops.credit(op, 0, 0.2)
    counts = _picks(ops)
    assert counts["schedule"] > 0.7 * 2000
    assert all(counts[op] > 0 for op in BLIND_MIX["full"])  # every kind is still tried


def test_operator_yield_is_per_cpu_second():
    ops = OperatorSchedule(random.Random(8), "full")
    for _ in range(200):
        ops.credit("schedule", 20, 1.0)  # 20 arcs per CPU second
        ops.credit("fresh", 10, 0.1)  # 100 arcs per CPU second: half the arcs, a tenth of the cost
    assert ops.yields["fresh"] > 3 * ops.yields["schedule"]


def test_blind_operator_mix_and_ablation_modes():
    ops = OperatorSchedule(random.Random(4), "full", feedback=False)
    for _ in range(200):
        ops.credit("schedule", 30)
    counts = _picks(ops, 4000)
    assert abs(counts["fresh"] / 4000 - BLIND_MIX["full"]["fresh"]) < 0.05
    assert set(_picks(OperatorSchedule(random.Random(5), "passes-only"), 50)) == {"passes"}
    assert set(_picks(OperatorSchedule(random.Random(6), "ir-only"), 200)) == {"ir", "schedule"}
    assert set(_picks(OperatorSchedule(random.Random(7), "generate-only"), 50)) == {"fresh"}


def test_only_trailing_passes_without_new_arcs_are_dropped():
    seq = [["a", {}], ["b", {}], ["c", {}], ["d", {}]]
    assert drop_useless(seq, [0, 5, 0, 0]) == seq[:2]  # "a" may enable "b": it stays
    assert drop_useless(seq, [0, 5, 0, 0], later_new=3) == seq  # the run saw the whole sequence's output
    assert drop_useless(seq, [0, 0, 0, 0]) == seq  # nothing learned about the passes
    assert drop_useless(seq, [1, 2]) == seq  # counts that do not match: untouched


def test_entries_reaching_rare_arcs_get_more_energy():
    power = PowerSchedule(random.Random(11))
    common = [1, 2, 3, 4]
    for _ in range(30):  # the arcs every test hits
        power.observe(common)
    power.add(gain=5, arcs=power.observe(common))
    power.add(gain=5, arcs=power.observe([*common, 99]))  # the only test that reached arc 99
    power.add(gain=5, arcs=power.observe(common))
    assert power.rare() == [False, True, False]
    counts = _picks(power)
    assert counts[1] > 2 * counts[0] and counts[1] > 2 * counts[2]
    for _ in range(40):  # its mutants hit arc 99 too, and a new entry reaches arc 7: the boost moves on
        power.observe([*common, 99])
    power.add(gain=1, arcs=power.observe([*common, 7]))
    assert power.rare() == [False, False, False, True]


def test_arc_counts_grow_past_their_first_capacity():
    power = PowerSchedule(random.Random(12))
    dense = power.observe(list(range(10_000)))
    assert len(dense) == 10_000 and power.hits.counts[dense].tolist() == [1] * 10_000
    again = power.observe([5, 9_999, 123_456])
    assert power.hits.counts[again].tolist() == [2, 2, 1]


def test_without_feedback_no_arcs_are_counted():
    power = PowerSchedule(random.Random(13), feedback=False)
    assert len(power.observe([1, 2, 3])) == 0 and not power.hits.index
