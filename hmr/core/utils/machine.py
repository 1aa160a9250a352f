"""One line that says what a measurement ran on: threads, cores and how busy the machine was.

Benchmarks print it next to every figure. On a shared two-core machine a second process
makes per-thread throughput collapse several-fold, so a figure without the load beside it
cannot be compared with another.
"""

from __future__ import annotations

import os
import platform


def machine_line(threads: int | None = None) -> str:
    """``"1 thread of 2 cores (x86_64), load 0.42 / 0.30 / 0.25"``.

    ``threads`` is the number of compute threads the measurement uses (torch's intra-op
    threads when not given). The load figures are the 1, 5 and 15 minute load averages.
    """
    if threads is None:
        try:
            import torch

            threads = torch.get_num_threads()
        except ImportError:  # pragma: no cover - torch is a dependency
            threads = 1
    cores = os.cpu_count() or 1
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not available on every platform
        load = "unknown"
    plural = "thread" if threads == 1 else "threads"
    return f"{threads} {plural} of {cores} cores ({platform.machine()}), load {load}"
