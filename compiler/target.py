"""Compilation targets: `Target("cpu")`, `Target.from_str("cpu fast_math=0 num_threads=4")`.

- `cpu` (alias `llvm`): the host CPU through LLVM. `cpu`/`features` empty mean the host's own (LLVM's
  host CPU name and feature list, e.g. AVX-512), so code is tuned for where it runs.
- `cuda`: accepted as a name; building for it raises UnsupportedError until the CUDA backend exists.

`fast_math` (default on) lets LLVM reassociate float additions and multiplications, contract them into
FMAs and ignore the sign of zero. Reassociation is what vectorizes float reductions (row sums), and the
results differ from strict left-to-right evaluation only by rounding; NaN and infinities keep their IEEE
meaning (no nnan/ninf). Turn it off for bit-exact sequential float semantics.

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
    fast_math: bool = True
    opt_level: int = 3

    def __post_init__(self):
        kind = _KINDS.get(str(self.kind).strip().lower())
        if kind is None:
            raise UnsupportedError(f"unknown target {self.kind!r} (known: cpu, llvm, cuda)")
        object.__setattr__(self, "kind", kind)
        if self.num_threads is not None and int(self.num_threads) < 1:
            raise UnsupportedError(f"num_threads must be at least 1, got {self.num_threads}")
        if not 0 <= int(self.opt_level) <= 3:
            raise UnsupportedError(f"opt_level must be 0..3, got {self.opt_level}")

    @staticmethod
    def from_str(spec: str | Target) -> Target:
        """Parse "cpu", "cuda" or "cpu key=value ..." (keys: cpu, features, num_threads, fast_math,
        opt_level)."""
        if isinstance(spec, Target):
            return spec
        words = str(spec).split()
        if not words:
            raise UnsupportedError("empty target string")
        options: dict = {}
        for word in words[1:]:
            key, sep, value = word.lstrip("-").partition("=")
            key = key.replace("-", "_")
            if key == "fast_math":
                if sep and value.lower() not in _TRUE | _FALSE:
                    raise UnsupportedError(f"fast_math takes a boolean, got {value!r}")
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
        if not self.fast_math:
            parts.append("fast_math=0")
        if self.opt_level != 3:
            parts.append(f"opt_level={self.opt_level}")
        return " ".join(parts)
