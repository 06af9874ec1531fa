"""Arc (branch) coverage of the shapeflow package, per test, with coverage.py.

A test is measured in labelled segments (`switch("pass:0")`, ...) so that the campaign can tell which pass
of a sequence reached new arcs. Arcs are strings `"relpath:from:to"`; the fuzzer's own files are omitted.
A `CoverageMap` is the campaign's set of arcs; `seen` in the tracker keeps each worker from resending arcs.
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import shapeflow


def package_dirs() -> list[str]:
    """The folders of the shapeflow subpackages (the repository maps one folder per subpackage)."""
    import shapeflow.ir  # noqa: PLC0415
    import shapeflow.passes  # noqa: PLC0415

    dirs = {os.path.dirname(shapeflow.__file__)}
    for mod in (shapeflow.ir, shapeflow.passes):
        dirs.add(os.path.dirname(mod.__file__))
    for name in ("codegen", "runtime"):
        try:
            mod = __import__(f"shapeflow.{name}", fromlist=["_"])
            dirs.add(os.path.dirname(mod.__file__))
        except Exception:
            pass
    return sorted(dirs)


_FUZZ_DIR = os.path.dirname(os.path.abspath(__file__))


class _NoFingerprint:
    def update(self, value) -> None:
        pass


def _skip_fingerprint(cov) -> None:
    """coverage.py (7.x) fingerprints every flushed arc with a pure-Python SHA-3 hasher, to name parallel
    data files; ours live in memory and are never written. With a flush at each of a test's ~15 labels that
    hashing was a third of the test's CPU time. Where the data object has no such hasher (another coverage
    version), this does nothing."""
    data = getattr(cov, "_data", None)
    if data is not None and hasattr(data, "_hasher"):
        data._hasher = _NoFingerprint()


class ArcTracker:
    """Measures arcs per test; `measure()` returns {label: set of arcs not seen before by this tracker}."""

    def __init__(self):
        import coverage  # noqa: PLC0415

        self._dirs = package_dirs()
        self._root = os.path.commonpath(self._dirs + [_FUZZ_DIR])
        self._cov = coverage.Coverage(
            branch=True,
            data_file=None,
            # include=, not source=: with source=, every get_data() walks the package for files never
            # run (a tenth of a test's time); the campaign has no use for those.
            include=[os.path.join(d, "*") for d in self._dirs],
            omit=[os.path.join(_FUZZ_DIR, "*")],
        )
        self._cov._warn_no_data = False
        self.seen: set[str] = set()
        self.labels: list[str] = []
        self.hit_ids: list[int] = []  # after stop(): ids of all arcs the test hit (see arc_id)
        self._paused = False

    def start(self) -> None:
        self._cov.erase()
        self.labels = []
        self._cov.start()
        _skip_fingerprint(self._cov)
        self._paused = False
        self.switch("setup")

    def switch(self, label: str, traced: bool = True) -> None:
        """Measure what runs from here on under `label`; with traced=False, measure nothing until the
        next switch (the reference interpreter running a test program: the oracle, not the system under
        test, and under the tracer the slowest part of a test)."""
        self.labels.append(label)
        if not traced:
            if not self._paused:
                self._cov.stop()
                self._paused = True
            return
        if self._paused:
            self._cov.start()
            self._paused = False
        self._cov.switch_context(label)

    def stop(self) -> dict[str, set[str]]:
        """{label: arcs first seen under it}; also sets `hit_ids`."""
        if not self._paused:
            self._cov.stop()
        self._paused = False
        data = self._cov.get_data()
        rel = {f: os.path.relpath(f, self._root) for f in data.measured_files()}
        # One query per file over all labels first: most tests reach no new arc, or new arcs in a file or
        # two, and only those files need the per-label queries (a query per label and file, ~1,500 of
        # them, cost a fifth of a test's time).
        fresh_files, hit = [], []
        for f in rel:
            keys = [f"{rel[f]}:{a}:{b}" for a, b in data.arcs(f) or ()]
            hit += keys
            if any(key not in self.seen for key in keys):
                fresh_files.append(f)
        # Every arc the test hit, as 32-bit ids (CRC-32 of the arc), for the campaign's arc hit counts
        # (energy.py: entries that reach rarely hit arcs are mutated more).
        self.hit_ids = sorted({arc_id(key) for key in hit})
        out: dict[str, set[str]] = {}
        for label in dict.fromkeys(self.labels):
            found = set()
            if fresh_files:
                data.set_query_contexts([f"^{re.escape(label)}$"])
                for f in fresh_files:
                    for a, b in data.arcs(f) or ():
                        key = f"{rel[f]}:{a}:{b}"
                        if key not in self.seen:
                            found.add(key)
            out[label] = found
        data.set_query_contexts(None)
        for found in out.values():
            self.seen |= found
        return out


def arc_id(arc: str) -> int:
    """The id of an arc in `ArcTracker.hit_ids`."""
    return zlib.crc32(arc.encode())


class CoverageMap:
    """The campaign's merged arcs, persisted as an append-only log (one arc per line)."""

    def __init__(self, path: Path | None = None):
        self.arcs: set[str] = set()
        self.path = path
        self._fh = None
        if path is not None and path.exists():
            self.arcs = set(path.read_text().split())

    def merge(self, arcs) -> int:
        new = [a for a in arcs if a not in self.arcs]
        self.arcs.update(new)
        if new and self.path is not None:
            if self._fh is None:
                self._fh = open(self.path, "a")  # noqa: SIM115
            self._fh.write("\n".join(new) + "\n")
            self._fh.flush()
        return len(new)

    def count_new(self, arcs) -> int:
        return sum(1 for a in arcs if a not in self.arcs)

    def __len__(self) -> int:
        return len(self.arcs)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


__all__ = ["ArcTracker", "CoverageMap", "arc_id", "package_dirs", "shapeflow"]
