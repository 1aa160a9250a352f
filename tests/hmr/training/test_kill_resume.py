"""A run killed with SIGKILL and resumed follows the uninterrupted loss curve; DDP on gloo."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from hmr.training.logs import read_metrics

OVERRIDES = ['model.backbone="test_resnet"', "model.hidden=64", "model.dropout=0.3", "train.total_steps=16",
             "train.checkpoint_every=4", "train.log_every=2", "data.random_batches=3"]


def _train(out, *extra):
    cmd = [sys.executable, "-m", "cli.main", "train", "tiny_cpu", *OVERRIDES, "--out", str(out), "--no-progress",
           *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _run_and_kill_midway(out) -> bool:
    """Start a run, SIGKILL it once a checkpoint at step >= 8 exists; True if it was killed
    before finishing (False: it finished first, which a loaded machine can make happen)."""
    victim = _train(out)
    deadline = time.time() + 300
    while not any(int(p.stem.split("_")[1]) >= 8 for p in out.glob("step_*.pt")):
        if victim.poll() is not None:
            break
        assert time.time() < deadline
        time.sleep(0.05)
    if victim.poll() is None:
        os.kill(victim.pid, signal.SIGKILL)
    _, err = victim.communicate()
    assert victim.returncode in (0, -signal.SIGKILL), err
    return victim.returncode == -signal.SIGKILL and not (out / "step_00000016.pt").exists()


@pytest.mark.slow
def test_sigkill_then_resume_matches_the_uninterrupted_run(tmp_path):
    full = _train(tmp_path / "full")
    for attempt in range(5):  # a fresh folder each time the run outpaced the kill
        killed = tmp_path / f"killed{attempt}"
        if _run_and_kill_midway(killed):
            break
    else:
        pytest.fail("the run finished before it could be killed, 5 times")
    resumed = _train(killed, "--resume")
    for proc in (full, resumed):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert "resuming" in err
    a, b = read_metrics(tmp_path / "full"), read_metrics(killed)
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(2, 17, 2))
    np.testing.assert_allclose([r["loss"] for r in b], [r["loss"] for r in a], rtol=1e-6)
    assert not list(killed.glob("*.partial-*"))


def _ddp_worker(rank, world, port, out, result_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank), OMP_NUM_THREADS="1")
    import torch.distributed as dist

    from hmr.training.data import build_batches
    from hmr.training.config import load_config
    from hmr.training.trainer import Trainer

    cfg = load_config("tiny_cpu", [*OVERRIDES[:3], "train.total_steps=4", "train.batch_size=4"])
    trainer = Trainer(cfg, out)
    trainer.fit(build_batches(cfg, rank=rank, world_size=world, body_model=trainer.body_model), progress=False)
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    torch.save(flat, os.path.join(result_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_with_gloo_keeps_ranks_in_sync(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert torch.equal(a, b)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2 and ckpt["step"] == 4
    assert read_metrics(tmp_path / "run")[-1]["images_per_s"] > 0


@pytest.mark.slow
def test_train_command_under_torchrun_with_two_cpu_processes(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
           "-m", "cli.main", "train", "tiny_cpu", *OVERRIDES[:3], "train.total_steps=4", "train.batch_size=4",
           "train.log_every=2", "data.random_batches=2", "--out", str(tmp_path / "run"), "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("loss=") == 1  # only rank 0 reports
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == [2, 4]
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["world_size"] == 2


@pytest.mark.slow
def test_sigterm_checkpoints_the_current_step_and_exits_cleanly(tmp_path):
    from hmr.models.checkpoint import load_checkpoint

    proc = _train(tmp_path / "run", "-s", "train.total_steps=400", "-s", "train.checkpoint_every=200")
    deadline = time.time() + 300
    while not (tmp_path / "run" / "metrics.jsonl").exists() or not read_metrics(tmp_path / "run"):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    step = load_checkpoint(tmp_path / "run" / "last.pt")["step"]
    assert 2 <= step < 200  # saved where it stopped, not at a periodic checkpoint
