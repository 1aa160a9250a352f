"""Every benchmark script starts: it imports what it uses and answers --help."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "benchmarks").glob("*.py"))


def test_the_benchmarks_are_found():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_answers_help(script):
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, f"{script.name} --help failed:\n{out.stderr[-2000:]}"
    assert "usage" in out.stdout.lower(), f"{script.name} --help printed no usage:\n{out.stdout[-500:]}"
