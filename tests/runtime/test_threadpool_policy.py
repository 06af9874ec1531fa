"""The thread runtime's defaults: libgomp's wait policy (set unless the user chose one) and the parallel
work threshold (SHAPEFLOW_PARALLEL_MIN_WORK). Fresh interpreters, because both are read at load time."""

import json
import os
import subprocess
import sys

import pytest

from shapeflow.runtime import threadpool

PROBE = """
import json, os
from shapeflow.runtime import threadpool
loaded = threadpool.load_thread_runtime()
print(json.dumps({"loaded": loaded is not None, "policy": os.environ.get("OMP_WAIT_POLICY"),
                  "spin": os.environ.get("GOMP_SPINCOUNT"), "min_work": threadpool.get_parallel_min_work()}))
"""


def probe(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    clean.pop("SHAPEFLOW_PARALLEL_MIN_WORK", None)
    clean.update(env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_default_wait_policy_is_set_when_the_user_set_none():
    found = probe()
    if not found["loaded"]:
        pytest.skip("no libgomp")
    assert found["policy"] == threadpool.DEFAULT_WAIT_POLICY["OMP_WAIT_POLICY"]
    assert found["spin"] is None
    assert found["min_work"] == threadpool.DEFAULT_PARALLEL_MIN_WORK


@pytest.mark.parametrize("env", [{"OMP_WAIT_POLICY": "active"}, {"GOMP_SPINCOUNT": "10000"}])
def test_user_wait_policy_is_respected(env):
    found = probe(**env)
    assert found["policy"] == env.get("OMP_WAIT_POLICY")
    assert found["spin"] == env.get("GOMP_SPINCOUNT")


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
