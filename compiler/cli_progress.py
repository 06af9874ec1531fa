"""The progress line `shapeflow compile` shows on stderr while a model compiles.

It is a pass instrument (shapeflow.passes.infra): every graph pass and every lowering pass announces itself,
so the line says which stage of the pipeline is running and for how long. A ticker thread keeps the elapsed
time moving through the long silent steps (LLVM code generation). Nothing is written when stderr is not a
terminal or with --quiet, so logs and pipes stay clean.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from shapeflow.passes.infra import PassInstrument

# Pass-name prefix -> the pipeline stage it belongs to (the first matching prefix wins; "" is the rest).
STAGES: list[tuple[str, str]] = [
    ("graph.", "graph passes"),
    ("", "lowering kernels"),
]
_TICK_S = 0.2


def stage_of(pass_name: str) -> str:
    return next(stage for prefix, stage in STAGES if pass_name.startswith(prefix))


class Progress(PassInstrument):
    """A one-line, self-overwriting status: `[  3.2s] graph passes: graph.fuse_ops`.

    Use as a context manager around the compile; `step(text)` marks stages outside the pass pipeline
    (importing the model, code generation). `enabled=False` makes every method a no-op."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self.status = "starting"
        self.passes_run = 0
        self._width = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- pass instrument ------------------------------------------------------------------------------
    def before_pass(self, pass_, mod) -> None:
        name = getattr(pass_, "name", type(pass_).__name__)
        if type(pass_).__name__ == "Sequential":
            return
        self.passes_run += 1
        self.step(f"{stage_of(name)}: {name}")

    def after_pass(self, pass_, before, after, seconds) -> None:
        name = getattr(pass_, "name", type(pass_).__name__)
        if not name.startswith("graph.") and type(pass_).__name__ != "Sequential":
            # Lowering passes run on all kernels at once; what follows the last of them is LLVM.
            self.step(f"code generation (LLVM), after {name}")

    # -- display --------------------------------------------------------------------------------------
    def step(self, status: str) -> None:
        self.status = status
        self._draw()

    def _draw(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            text = f"[{time.perf_counter() - self.start:6.1f}s] {self.status}"
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
            self._width = len(text)

    def _tick(self) -> None:
        while not self._stop.wait(_TICK_S):
            self._draw()

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread = threading.Thread(target=self._tick, name="shapeflow-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.enabled and self._width:
            with self._lock:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()
