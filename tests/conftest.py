"""Lets tests in any tests/<area>/ folder import the shared hypothesis strategies:
`from strategies_tir import prim_funcs` (tests/ folders are not packages)."""

import os
import sys

_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
