"""The math libraries' kernels and threads: chosen from the CPU's flags before NumPy loads, and limited."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from model.threads import limit_math_threads, math_threads

AVX512 = "fpu sse2 avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl avx512_fp16"


def _choose(tmp_path: Path, flags: str | None, environ: dict[str, str] | None = None) -> tuple[str | None, dict]:
    """choose_openblas_kernels in a fresh interpreter (no NumPy loaded yet) on a cpuinfo with `flags`."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: a CPU\n" + (f"flags\t\t: {flags}\n" if flags else ""))
    code = ("import json, sys; from pathlib import Path; from model.threads import choose_openblas_kernels; "
            f"env = {environ or {}!r}; chosen = choose_openblas_kernels(env, Path({str(cpuinfo)!r})); "
            "print(json.dumps([chosen, env, 'numpy' in sys.modules]))")
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    chosen, env, numpy_loaded = json.loads(output)
    assert not numpy_loaded  # choosing must not load what it chooses for
    return chosen, env


@pytest.mark.parametrize("flags, expected", [
    (AVX512, "SkylakeX"),
    ("fpu sse2 avx avx2 fma", "Haswell"),
    ("fpu sse2 avx", None),
    (None, None),
])
def test_openblas_kernels_follow_the_cpus_flags(tmp_path, flags, expected):
    chosen, env = _choose(tmp_path, flags)
    assert chosen == expected
    assert env == ({"OPENBLAS_CORETYPE": expected} if expected else {})


def test_a_coretype_already_set_is_kept(tmp_path):
    assert _choose(tmp_path, AVX512, {"OPENBLAS_CORETYPE": "Haswell"}) == (None, {"OPENBLAS_CORETYPE": "Haswell"})


def test_limit_math_threads_sets_and_reports_numpys_blas():
    before = math_threads()
    try:
        assert any(line.startswith("openblas") and line.endswith(": 1 thread") for line in limit_math_threads(1))
        assert any(line.endswith(": 2 threads") for line in limit_math_threads(2))
    finally:
        limit_math_threads(before)  # this process's own setting, for the tests that follow
