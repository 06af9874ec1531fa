"""The thread runtime's defaults: libgomp's wait policy (set unless the user chose one) and the parallel
work threshold (SHAPEFLOW_PARALLEL_MIN_WORK). Fresh interpreters, because both are read at load time."""

import json
import os
import re
import subprocess
import sys

import pytest

from shapeflow.runtime import threadpool

PROBE = """
import ctypes, json, os, sys
from shapeflow.runtime import threadpool
loaded = threadpool.load_thread_runtime()
print(json.dumps({"loaded": loaded is not None, "policy": os.environ.get("OMP_WAIT_POLICY"),
                  "spin": os.environ.get("GOMP_SPINCOUNT"), "min_work": threadpool.get_parallel_min_work(),
                  "applied": threadpool.WAIT_POLICY_APPLIED}), flush=True)
if loaded:
    ctypes.CDLL(loaded).omp_display_env(1)  # libgomp's own settings, on stderr
"""


def probe(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    clean.pop("SHAPEFLOW_PARALLEL_MIN_WORK", None)
    clean.update(env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    settings = re.findall(r"^\s*(OMP_WAIT_POLICY|GOMP_SPINCOUNT) = '([^']*)'", done.stderr, re.MULTILINE)
    found["libgomp"] = dict(settings)
    return found


def test_default_wait_policy_reaches_libgomp_and_leaves_the_environment():
    found = probe()
    if not found["loaded"]:
        pytest.skip("no libgomp")
    assert found["applied"] == threadpool.DEFAULT_WAIT_POLICY
    assert found["libgomp"]["OMP_WAIT_POLICY"] == threadpool.DEFAULT_WAIT_POLICY["OMP_WAIT_POLICY"].upper()
    assert found["libgomp"]["GOMP_SPINCOUNT"] == "0"  # passive: no spinning before sleeping
    assert found["policy"] is None and found["spin"] is None  # later OpenMP runtimes see the user's env
    assert found["min_work"] == threadpool.DEFAULT_PARALLEL_MIN_WORK


@pytest.mark.parametrize(
    ("env", "libgomp_policy"),
    [({"OMP_WAIT_POLICY": "active"}, "ACTIVE"), ({"GOMP_SPINCOUNT": "10000"}, None)],
)
def test_user_wait_policy_is_respected(env, libgomp_policy):
    found = probe(**env)
    if not found["loaded"]:
        pytest.skip("no libgomp")
    assert found["applied"] == {}
    assert found["policy"] == env.get("OMP_WAIT_POLICY")
    assert found["spin"] == env.get("GOMP_SPINCOUNT")
    if libgomp_policy:
        assert found["libgomp"]["OMP_WAIT_POLICY"] == libgomp_policy
    else:
        assert found["libgomp"]["GOMP_SPINCOUNT"] == env["GOMP_SPINCOUNT"]


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("12345", 12345.0), ("inf", float("inf"))])
def test_min_work_environment_variable(value, expected):
    assert probe(SHAPEFLOW_PARALLEL_MIN_WORK=value)["min_work"] == expected


@pytest.mark.parametrize("value", ["-3", "lots", "nan"])
def test_invalid_min_work_falls_back_to_the_default(value):
    assert probe(SHAPEFLOW_PARALLEL_MIN_WORK=value)["min_work"] == threadpool.DEFAULT_PARALLEL_MIN_WORK


def test_apply_default_wait_policy_on_a_mapping():
    env = {}
    assert threadpool.apply_default_wait_policy(env) == threadpool.DEFAULT_WAIT_POLICY
    assert env == threadpool.DEFAULT_WAIT_POLICY
    user = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert threadpool.apply_default_wait_policy(user) == {}
    assert user == {"OMP_WAIT_POLICY": "ACTIVE"}
