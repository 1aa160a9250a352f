"""``hmr train`` on 2 "nodes" × 2 processes: two torchrun agents on the loopback (gloo, CPU).

The nodes are two ``torch.distributed.run`` processes on this machine, one per node rank,
meeting as on a cluster: a c10d rendezvous (the Kubernetes / torchrun-elastic form of
docs/scale-out.md) for the uninterrupted run, a static master address and node ranks (the
Slurm form) for the run that is killed and resumed. Each rank has 2 DataLoader workers, so a
shard set of 16 shards × 2 samples is split over 4 ranks × 2 workers; ``train.log_samples``
records which keys each rank trained on at each step.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hmr.training.logs import read_metrics
from hmr.training.sample_log import read_sample_log

RANKS, WORKERS, BATCH = 4, 2, 2
SAMPLES, PER_SHARD = 32, 2
EPOCH = SAMPLES // (RANKS * BATCH)  # steps per epoch: 4
STEPS = 3 * EPOCH


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory) -> Path:
    from loaders import ShardConfig, shard_store
    from tests.fixtures.fitting import synth_store

    tmp = tmp_path_factory.mktemp("multinode")
    store = synth_store(tmp, n=SAMPLES, split="train")
    return shard_store(store, tmp / "shards", ShardConfig(crop_size=64, samples_per_shard=PER_SHARD, workers=1),
                       progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _overrides(set_dir: Path) -> list[str]:
    return ['model.backbone="test_resnet"', "model.hidden=64", "model.dropout=0.0", f"train.total_steps={STEPS}",
            f"train.batch_size={BATCH}", "train.log_every=1", "train.checkpoint_every=3", "train.log_samples=true",
            'data.source="shards"', f'data.shards=["{set_dir}"]', "data.resampled=false",
            f"data.num_workers={WORKERS}", "data.shuffle_buffer=4"]


@pytest.fixture
def launched():
    """The agents a test starts; whatever still runs at its end is killed with its workers."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            _kill_tree(proc)


def _launch(set_dir: Path, out: Path, rendezvous: str, *extra: str, into: list | None = None
            ) -> list[subprocess.Popen]:
    """Two torchrun agents (node ranks 0 and 1), each starting 2 processes."""
    port = _free_port()
    if rendezvous == "c10d":
        meet = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "multinode-test"]
    else:
        meet = ["--master-addr", "127.0.0.1", "--master-port", str(port)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = []
    for node in (0, 1):
        where = [] if rendezvous == "c10d" else ["--node-rank", str(node)]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "2", *where,
               *meet, "-m", "cli.main", "train", "tiny_cpu", *_overrides(set_dir), "--out", str(out),
               "--no-progress", *extra]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    if into is not None:
        into.extend(procs)
    return procs


def _wait(procs: list[subprocess.Popen]) -> str:
    errs = []
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-4000:]
        errs.append(err)
    return "\n".join(errs)


def _wait_for_checkpoint(procs: list[subprocess.Popen], out: Path) -> None:
    deadline = time.time() + 600
    while not list(out.glob("step_*.pt")) and all(p.poll() is None for p in procs):
        assert time.time() < deadline
        time.sleep(0.05)


def _kill_after_checkpoint(procs: list[subprocess.Popen], out: Path) -> bool:
    """SIGKILL both nodes (agents and their processes) once a checkpoint exists; True when they
    were killed before the run could finish."""
    _wait_for_checkpoint(procs, out)
    for proc in procs:
        _kill_tree(proc)
        proc.communicate()
    return not (out / f"step_{STEPS:08d}.pt").exists()


def _kill_tree(proc: subprocess.Popen) -> None:
    for pid in [proc.pid, *_descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun starts its workers in sessions of their own, so
    killing the agent's process group would leave them running)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _all_keys(set_dir: Path) -> list[str]:
    from loaders.shard import load_shard_set
    from loaders.stream import iter_shard

    return sorted(s["__key__"] for url in load_shard_set(set_dir).urls for s in iter_shard(url))


@pytest.mark.slow
def test_two_nodes_see_each_sample_once_per_epoch_and_resume_exactly(shard_set, tmp_path, launched):
    full = _launch(shard_set, tmp_path / "full", "c10d", into=launched)
    _wait(full)
    logs = {rank: read_sample_log(tmp_path / "full", rank) for rank in range(RANKS)}
    assert all([r["step"] for r in logs[rank]] == list(range(1, STEPS + 1)) for rank in range(RANKS))
    keys = _all_keys(shard_set)
    assert len(keys) == SAMPLES
    for epoch in range(STEPS // EPOCH):  # 4 ranks × 4 steps × 2 samples: every key once
        steps = range(epoch * EPOCH, (epoch + 1) * EPOCH)
        seen = sorted(k for rank in range(RANKS) for i in steps for k in logs[rank][i]["keys"])
        assert seen == keys, f"epoch {epoch}"
    first = [set(k for i in range(EPOCH) for k in logs[rank][i]["keys"]) for rank in range(RANKS)]
    second = [set(k for i in range(EPOCH, 2 * EPOCH) for k in logs[rank][i]["keys"]) for rank in range(RANKS)]
    assert first != second  # each epoch deals the shards anew

    for attempt in range(3):  # a fresh folder each time the run outpaced the kill
        killed = tmp_path / f"killed{attempt}"
        if _kill_after_checkpoint(_launch(shard_set, killed, "static", into=launched), killed):
            break
    else:
        pytest.fail("the run finished before it could be killed, 3 times")
    err = _wait(_launch(shard_set, killed, "static", "--resume", into=launched))
    assert "resuming" in err
    for rank in range(RANKS):  # the same keys at every step, on every rank, as without the kill
        assert read_sample_log(killed, rank) == logs[rank], f"rank {rank}"
    a, b = read_metrics(tmp_path / "full"), read_metrics(killed)
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, STEPS + 1))
    np.testing.assert_allclose([r["loss"] for r in b], [r["loss"] for r in a], rtol=1e-6)

    # SIGTERM to one node (its torchrun passes it to its 2 processes; Slurm's preemption
    # reaches nodes at different moments): all 4 ranks stop after the same step and save it
    # (a run of 1,000 steps, so the signal cannot come too late; the schedule is constant)
    termed = tmp_path / "termed"
    procs = _launch(shard_set, termed, "static", "-s", "train.total_steps=1000", into=launched)
    _wait_for_checkpoint(procs, termed)
    procs[1].send_signal(signal.SIGTERM)
    procs[1].communicate(timeout=300)  # its processes checkpointed with the others and left
    deadline = time.time() + 120  # node 0's processes stop too, without a signal of their own
    while _descendants(procs[0].pid):
        assert time.time() < deadline, "node 0 goes on (or hangs) after node 1 stopped"
        time.sleep(0.1)
    # node 0's agent now waits for node 1's at torchrun's exit barrier (5 min), deaf to SIGTERM
    # there; its processes are done, so it is ended here
    procs[0].kill()
    procs[0].communicate(timeout=60)
    from hmr.models.checkpoint import load_checkpoint

    step = load_checkpoint(termed / "last.pt")["step"]
    assert 3 <= step < 1000
    for rank in range(RANKS):
        got = read_sample_log(termed, rank)
        assert [r["step"] for r in got] == list(range(1, step + 1)), f"rank {rank}"
        assert got[:STEPS] == logs[rank][:step], f"rank {rank}"
