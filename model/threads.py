"""The math libraries under NumPy (OpenBLAS, MKL, OpenMP, BLIS): which kernels, and how many threads.

Threads: a server runs one process per core with several request threads each,
and every request thread may call into BLAS; a BLAS that also spreads each call
over all cores makes workers × threads × cores threads fight over the cores
(issue 12: the LSTM answered 90 requests/s at 10 connections, 478 with one BLAS
thread). `threadpoolctl` finds every such library loaded in the process and sets
its pool's size.

Kernels: NumPy 1.26's OpenBLAS (0.3.23) does not recognise recent CPUs (this
project's Sapphire Rapids Xeon) and falls back to its generic "Prescott" kernels:
a (64, 64) x (64, 256) matmul took 111 µs instead of 29 µs with its SkylakeX
kernels. OpenBLAS reads its choice from OPENBLAS_CORETYPE once, when it loads,
so the entry points name it from the CPU's own instruction-set flags first.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path

from threadpoolctl import threadpool_info, threadpool_limits

CORETYPE = "OPENBLAS_CORETYPE"
# OpenBLAS kernel sets by the instruction-set flags they need, best first.
KERNELS = (("SkylakeX", {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}),
           ("Haswell", {"avx2", "fma"}))


def choose_openblas_kernels(environ: MutableMapping[str, str] = os.environ,
                            cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """Name OpenBLAS's kernels for this CPU in `environ`'s OPENBLAS_CORETYPE, unless it is set or
    NumPy is already loaded (too late then); returns the name set, or None."""
    if CORETYPE in environ or "numpy" in sys.modules:
        return None
    try:
        flags = set(re.search(r"^flags\s*:(.*)$", cpuinfo.read_text(), re.MULTILINE).group(1).split())
    except (OSError, AttributeError):  # no /proc, or no flags line: leave it to OpenBLAS
        return None
    chosen = next((name for name, needed in KERNELS if needed <= flags), None)
    if chosen is not None:
        environ[CORETYPE] = chosen  # read by OpenBLAS itself (getenv) when NumPy loads it
    return chosen


def limit_math_threads(threads: int) -> list[str]:
    """Let every math library loaded in this process use at most `threads` threads (from now on);
    returns what was set, one "openblas 0.3.23 (pthreads, SkylakeX kernels): 1 thread" line each."""
    import numpy  # noqa: F401 (loads its BLAS, so that a call before any model is loaded finds it too)

    threadpool_limits(limits=max(1, threads))
    return [f"{pool['internal_api']} {pool.get('version') or ''} ({pool.get('threading_layer', 'unknown')}, "
            f"{pool.get('architecture', 'unknown')} kernels): "
            f"{pool['num_threads']} thread{'s' if pool['num_threads'] != 1 else ''}"
            for pool in threadpool_info()]


def math_threads() -> int:
    """The most threads a math library loaded in this process may use now (1 when none is loaded)."""
    return max((pool["num_threads"] for pool in threadpool_info()), default=1)
