"""shapeflow.runtime: running compiled code.

`library.py` holds `Library`/`Kernel` (what `shapeflow.build` returns and how a call is checked and made),
`args.py` the argument checkers, `threadpool.py` the libgomp thread team behind parallel loops
(`set_num_threads`, `get_num_threads`), `pyabi.py` the numpy object layout the fast call path reads.
"""

from shapeflow.runtime.threadpool import get_num_threads, set_num_threads

__all__ = ["get_num_threads", "set_num_threads"]
