"""Every benchmark script runs: ``--smoke`` does the whole measurement at toy sizes.

A benchmark broke unnoticed once (a batch-contract change left its hand-built items behind);
running each one end to end in the test suite, in seconds, is what keeps them alive. The
figures of a smoke run mean nothing; only that the script gets through and prints them.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "benchmarks").glob("*.py"))


def _run(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)


def test_the_benchmarks_are_found():
    assert len(SCRIPTS) >= 14
    assert all(s.name != "__init__.py" for s in SCRIPTS)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_smoke_run(script):
    out = _run(script, "--smoke")
    assert out.returncode == 0, f"{script.name} --smoke failed:\n{out.stderr[-3000:]}"
    # It measured something: at least one figure, and the machine line beside the figures.
    assert re.search(r"\d", out.stdout), out.stdout[-1000:]
    assert re.search(r"\d+ threads? of \d+ cores", out.stdout), (
        f"{script.name} prints no threads/load line (hmr.core.utils.machine.machine_line):\n{out.stdout[-1000:]}")


def test_a_benchmark_documents_smoke_in_help():
    out = _run(REPO / "benchmarks" / "verify.py", "--help")
    assert out.returncode == 0 and "--smoke" in out.stdout
