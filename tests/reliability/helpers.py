"""Shared by the reliability tests: a dead PID, a child process killed at a chosen call, and
a small real COCO-format dataset converted through the real driver."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Prepended to every child: ``kill_when(obj, name, predicate)`` replaces ``obj.name`` by a
# wrapper that SIGKILLs the process (no cleanup, no finally: what a power cut or OOM kill
# does) on the first call whose arguments satisfy ``predicate``.
CHILD_PRELUDE = '''
import os, signal, sys
from pathlib import Path

def kill_when(obj, name, predicate=lambda *a, **k: True, before=None):
    original = getattr(obj, name)
    def wrapper(*args, **kwargs):
        if predicate(*args, **kwargs):
            if before is not None:
                before(*args, **kwargs)
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    setattr(obj, name, wrapper)
'''


def dead_pid() -> int:
    """The PID of a process that has exited (what a killed run's leftovers carry)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def run_child(code: str, timeout: float = 120, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess:
    """Run ``code`` (after :data:`CHILD_PRELUDE`) in a fresh interpreter at the repository."""
    return subprocess.run([sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code)], cwd=REPO,
                          env={**child_env(), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def start_child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code)], cwd=REPO,
                            env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen | None = None, timeout: float = 120) -> None:
    """Wait until ``path`` exists (a child's signal that it reached the moment under test)."""
    end = time.monotonic() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"child exited ({proc.returncode}) before {path.name}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {path}")
        time.sleep(0.05)


def coco_raw(root: Path) -> Path:
    """A COCO 2017 val tree in the real layout (annotation JSON + JPEG images)."""
    from tests.fixtures.converters_2d import write_coco

    write_coco(root)
    return root


def convert_args(root: Path, out: Path, *extra: str) -> list[str]:
    return ["convert", "coco2017", "--root", str(root), "--out", str(out), "--split", "val", *extra]
