"""How many threads the math libraries under NumPy (OpenBLAS, MKL, OpenMP, BLIS) may use.

A server runs one process per core with several request threads each, and every
request thread may call into BLAS: a BLAS that also spreads each call over all
cores makes workers × threads × cores threads fight over the cores (measured in
issue 12: the LSTM answered 90 requests/s at 10 connections, 478 with one BLAS
thread). `threadpoolctl` finds every such library loaded in the process and sets
its pool's size, without ctypes lookups of our own.
"""

from __future__ import annotations

import numpy  # noqa: F401 (loads its BLAS, so that a call before any model is loaded finds it too)
from threadpoolctl import threadpool_info, threadpool_limits


def limit_math_threads(threads: int) -> list[str]:
    """Let every math library loaded in this process use at most `threads` threads (from now on);
    returns what was set, one "openblas 0.3.27 (pthreads): 1 thread" line per library."""
    threadpool_limits(limits=max(1, threads))
    return [f"{pool['internal_api']} {pool.get('version') or ''} ({pool.get('threading_layer', 'unknown')}): "
            f"{pool['num_threads']} thread{'s' if pool['num_threads'] != 1 else ''}"
            for pool in threadpool_info()]
