"""Compilation targets: `Target("cpu")`, `Target.from_str("cpu strict_float=1 num_threads=4")`.

- `cpu` (alias `llvm`): the host CPU through LLVM. `cpu`/`features` empty mean the host's own (LLVM's
  host CPU name and feature list, e.g. AVX-512), so code is tuned for where it runs.
- `cuda`: accepted as a name; building for it raises UnsupportedError until the CUDA backend exists.

Float semantics (`float_mode`, chosen by two flags; NaN and infinities always keep their IEEE meaning, no
nnan/ninf flag is ever used):

- default: IEEE arithmetic in program order, with two licences. (1) The accumulator update of a reduction,
  a store `acc[idx] = acc[idx] op value` (op +, *, min, max) inside a loop over which `idx` is invariant,
  may be reassociated, which is what vectorizes float row sums, maxima and softmax. Only that update is
  reordered, so a result differs from left-to-right evaluation by rounding (and where an intermediate sum
  overflows), while a NaN or infinite term still gives NaN or infinity. (2) A multiply feeding an add or
  subtract may be contracted into an FMA, which skips the product's rounding: finite results change by
  rounding, and a product that would overflow to infinity on its own can stay finite inside the FMA; NaN
  and infinite inputs propagate as before. Nothing else is refolded, so e.g. `(a + c) - (a + c)` is NaN
  for a NaN `a`, as in the interpreter.
- `strict_float=True`: no licences, bit-exact with sequential evaluation (and with the interpreter);
  float reductions do not vectorize.
- `fast_math=True` (explicit opt-in): every float add/sub/mul/div may be reassociated and contracted and
  the sign of zero ignored. Faster in places, but LLVM may then fold expressions like `x - x` to 0 even
  where `x` is NaN or infinite, so results can disagree with the interpreter beyond rounding.

`num_threads` fixes the thread count of parallel loops in the compiled code; None (default) follows
`shapeflow.runtime.set_num_threads` / SHAPEFLOW_NUM_THREADS at every call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from shapeflow.errors import UnsupportedError

_KINDS = {"cpu": "cpu", "llvm": "cpu", "cuda": "cuda"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Target:
    kind: str = "cpu"
    cpu: str = ""
    features: str = ""
    num_threads: int | None = None
    fast_math: bool = False
    opt_level: int = 3
    strict_float: bool = False

    def __post_init__(self):
        kind = _KINDS.get(str(self.kind).strip().lower())
        if kind is None:
            raise UnsupportedError(f"unknown target {self.kind!r} (known: cpu, llvm, cuda)")
        object.__setattr__(self, "kind", kind)
        if self.num_threads is not None and int(self.num_threads) < 1:
            raise UnsupportedError(f"num_threads must be at least 1, got {self.num_threads}")
        if not 0 <= int(self.opt_level) <= 3:
            raise UnsupportedError(f"opt_level must be 0..3, got {self.opt_level}")
        if self.fast_math and self.strict_float:
            raise UnsupportedError("fast_math and strict_float cannot both be set")

    @property
    def float_mode(self) -> str:
        """ "fast", "strict" or "default" (see the module docstring); the code generator's knob."""
        return "fast" if self.fast_math else "strict" if self.strict_float else "default"

    @staticmethod
    def from_str(spec: str | Target) -> Target:
        """Parse "cpu", "cuda" or "cpu key=value ..." (keys: cpu, features, num_threads, fast_math,
        strict_float, opt_level; a boolean key alone means true)."""
        if isinstance(spec, Target):
            return spec
        words = str(spec).split()
        if not words:
            raise UnsupportedError("empty target string")
        options: dict = {}
        for word in words[1:]:
            key, sep, value = word.lstrip("-").partition("=")
            key = key.replace("-", "_")
            if key in ("fast_math", "strict_float"):
                if sep and value.lower() not in _TRUE | _FALSE:
                    raise UnsupportedError(f"{key} takes a boolean, got {value!r}")
                options[key] = (not sep) or value.lower() in _TRUE
            elif key in ("num_threads", "opt_level"):
                options[key] = int(value)
            elif key in ("cpu", "features"):
                options[key] = value
            else:
                raise UnsupportedError(f"unknown target option {key!r} in {spec!r}")
        return Target(words[0], **options)

    @property
    def host_cpu(self) -> str:
        """The CPU code is tuned for (the host's when `cpu` is empty)."""
        if self.cpu:
            return self.cpu
        from shapeflow.codegen.llvm import host_cpu  # noqa: PLC0415

        return host_cpu()[0]

    @property
    def host_features(self) -> str:
        if self.features or self.cpu:
            return self.features
        from shapeflow.codegen.llvm import host_cpu  # noqa: PLC0415

        return host_cpu()[1]

    def with_options(self, **changes) -> Target:
        return replace(self, **changes)

    def __str__(self) -> str:
        parts = [self.kind]
        if self.cpu:
            parts.append(f"cpu={self.cpu}")
        if self.num_threads is not None:
            parts.append(f"num_threads={self.num_threads}")
        if self.fast_math:
            parts.append("fast_math=1")
        if self.strict_float:
            parts.append("strict_float=1")
        if self.opt_level != 3:
            parts.append(f"opt_level={self.opt_level}")
        return " ".join(parts)
