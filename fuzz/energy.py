"""Coverage feedback steering the campaign: which corpus entry to mutate next (an AFL-style power
schedule) and which kind of mutation to use (an operator schedule).

A uniform pick spends most tests on entries that stopped paying off long ago (the seeds, mostly), and a
pick biased only to recent entries forgets productive old ones. Here each entry keeps what coverage told
the campaign about it: the arcs it added when it joined (`gain`), how often it was mutated (`picks`) and
how many of its mutants joined the corpus in turn (`finds`). An entry's chance of producing a new-arc
mutant is estimated with a Beta(1 + finds, 1 + picks - finds) posterior and sampled (Thompson sampling),
weighted by log2(1 + gain): new entries are explored, entries whose mutants keep finding arcs are mutated
more, exhausted ones less, and nothing is starved for ever. As in AFL, an entry whose own test ran fast
gets more energy and a slow one less (by its CPU time against the corpus median, within 4x): in a campaign
of fixed length, productive but expensive entries (long schedules, big stacked mutants) would otherwise
take over and cut the number of tests.

Once a campaign has run a while, most of what its tests reach, every test reaches; what is left is the
frontier, code that few tests touch. As in FairFuzz, the campaign counts how many tests hit each arc, and
an entry that hits a rare arc (hit by no more tests than the rarest arc of any entry, rounded up to a power
of two) gets RARE_BOOST times the energy: its mutants are the tests most likely to step past that frontier.
Mutating it makes its rare arcs common in turn, so the boost moves on by itself. Entries loaded by a
`--resume` have no recorded arcs and no boost.

Without coverage feedback (the `--no-coverage` ablation) none of these counts exist; `pick` then falls
back to the coverage-blind choice (recent entries half of the time, else uniform).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np


@dataclass
class EntryStats:
    gain: int = 1  # arcs the entry added when it joined the corpus
    picks: int = 0  # times it was the parent of a test
    finds: int = 0  # its mutants that joined the corpus
    cost: float = 0.0  # CPU seconds its own test took (0: unknown)
    arcs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # dense ids of the arcs it hit


class ArcCounts:
    """How many tests hit each arc: arc ids (coverage.arc_id) mapped to dense indices into a count array."""

    def __init__(self):
        self.index: dict[int, int] = {}
        self.counts = np.zeros(4096, np.int64)

    def observe(self, hit_ids) -> np.ndarray:
        """Count one test's arcs; their dense indices."""
        index = self.index
        for a in hit_ids:
            if a not in index:
                index[a] = len(index)
        if len(index) > len(self.counts):
            self.counts = np.concatenate([self.counts, np.zeros(len(index), np.int64)])
        dense = np.fromiter((index[a] for a in hit_ids), np.int64, len(hit_ids))
        self.counts[dense] += 1
        return dense


class PowerSchedule:
    """Entry statistics parallel to the campaign's corpus list, and the parent choice they drive."""

    RARE_BOOST = 4.0

    def __init__(self, rng: random.Random, feedback: bool = True):
        self.rng = rng
        self.feedback = feedback
        self.entries: list[EntryStats] = []
        self._costs: list[float] = []
        self.hits = ArcCounts()

    def observe(self, hit_ids) -> np.ndarray:
        """Count the arcs a finished test hit (nothing without feedback); their dense indices, what
        `add` and `set_arcs` take."""
        if not self.feedback or not len(hit_ids):
            return np.zeros(0, np.int64)
        return self.hits.observe(hit_ids)

    def add(self, gain: int, cost: float = 0.0, arcs: np.ndarray | None = None) -> None:
        entry = EntryStats(gain=max(1, gain), cost=cost)
        if arcs is not None:
            entry.arcs = arcs
        self.entries.append(entry)
        if cost > 0:
            self._costs.append(cost)

    def set_arcs(self, index: int | None, arcs: np.ndarray) -> None:
        """The arcs an entry's own test hit, once known (the seeds run after they joined)."""
        if index is not None and 0 <= index < len(self.entries):
            self.entries[index].arcs = arcs

    def rare(self) -> list[bool]:
        """Per entry: does it hit a rare arc (see the module docstring)?"""
        counts = self.hits.counts
        rarest = [int(counts[e.arcs].min()) if len(e.arcs) else 0 for e in self.entries]
        known = [r for r in rarest if r > 0]
        if not known:
            return [False] * len(rarest)
        cutoff = 1 << (min(known) - 1).bit_length()  # the rarest entry's count, up to a power of two
        return [0 < r <= cutoff for r in rarest]

    def set_cost(self, index: int | None, cost: float) -> None:
        """The CPU time of an entry's own test, once known (the seeds run after they joined)."""
        if index is not None and 0 <= index < len(self.entries) and cost > 0:
            self.entries[index].cost = cost
            self._costs.append(cost)

    def credit(self, parent: int | None, kept: bool) -> None:
        """Count a finished test of `parent` (and whether its mutant joined the corpus)."""
        if parent is None or not 0 <= parent < len(self.entries):
            return
        entry = self.entries[parent]
        entry.picks += 1
        entry.finds += int(kept)

    def pick(self) -> int:
        n = len(self.entries)
        if not self.feedback:
            if self.rng.random() < 0.5:
                return self.rng.randrange(n)
            return n - 1 - min(int(self.rng.expovariate(1 / 8)), n - 1)
        typical = sorted(self._costs)[len(self._costs) // 2] if self._costs else 0.0
        rare = self.rare()
        best, best_score = 0, -1.0
        for k, e in enumerate(self.entries):
            fails = max(0, e.picks - e.finds)
            score = self.rng.betavariate(1 + e.finds, 1 + fails) * (1 + math.log2(1 + e.gain))
            if rare[k]:
                score *= self.RARE_BOOST
            if typical > 0 and e.cost > 0:  # in equal time, a test twice as fast is worth twice as much
                score *= min(4.0, max(0.25, typical / e.cost))
            if score > best_score:
                best, best_score = k, score
        return best


# What a test of each mode may do, and how often when coverage says nothing (the blind mix, which is
# also what the `--no-coverage` ablation uses): a fresh program, IR mutators, schedule steps, pass-sequence
# mutation, or IR and passes together.
BLIND_MIX: dict[str, dict[str, float]] = {
    "full": {"fresh": 0.35, "ir": 0.25, "schedule": 0.15, "passes": 0.12, "both": 0.13},
    "ir-only": {"ir": 0.6, "schedule": 0.4},
    "passes-only": {"passes": 1.0},
    "generate-only": {"fresh": 1.0},
}


class OperatorSchedule:
    """Which kind of mutation the next test uses, adapted to what has been paying off (after MOpt).

    Each kind keeps an exponentially weighted average of the new arcs its tests reached per CPU second
    (a campaign has a fixed time, so a kind whose tests cost twice as much must find twice as much).
    Kinds are drawn with probability proportional to that yield, mixed with the blind mix (a fifth of the
    draws) so that a kind that went quiet is still tried and can come back. Early on, generation and
    schedule steps open whole new parts of the compiler; later the mutators that still find arcs get the
    tests.
    """

    EXPLORE = 0.2
    DECAY = 0.05

    def __init__(self, rng: random.Random, mode: str, feedback: bool = True):
        self.rng = rng
        self.mix = BLIND_MIX.get(mode, {"ir": 1.0})
        self.feedback = feedback
        self.yields = {op: 100.0 for op in self.mix}  # arcs per CPU second; optimistic: all are tried
        self.uses = {op: 0 for op in self.mix}

    def pick(self) -> str:
        ops = list(self.mix)
        if not self.feedback or self.rng.random() < self.EXPLORE:
            return self.rng.choices(ops, [self.mix[o] for o in ops])[0]
        return self.rng.choices(ops, [self.yields[o] + 0.5 for o in ops])[0]

    def credit(self, op: str | None, new_arcs: int, cpu_s: float = 0.1) -> None:
        if op not in self.yields:
            return
        self.uses[op] += 1
        rate = new_arcs / max(cpu_s, 0.01)
        self.yields[op] += self.DECAY * (rate - self.yields[op])


__all__ = ["ArcCounts", "BLIND_MIX", "EntryStats", "OperatorSchedule", "PowerSchedule"]
