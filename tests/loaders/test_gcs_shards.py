"""``gs://`` shard sets against a Google-Cloud-Storage-compatible server on the loopback
(``gcp-storage-emulator``, in memory), read through fsspec + gcsfs exactly as a user's
bucket is: the emulator's address and anonymous credentials come from the environment
(``STORAGE_EMULATOR_HOST``, fsspec's ``FSSPEC_GS_TOKEN``), nothing from the project's files.
Batches equal those from disk; mixes resolve and sets are listed under a ``gs://`` root;
``hmr verify`` of a set by ``gs://`` URL finds what it finds on disk."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

# gcsfs >= 2025 probes a bucket's layout over gRPC before using it; the emulator speaks only
# the JSON API, and the probe would wait out its 60 s timeout. Read before gcsfs is imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

gcsfs = pytest.importorskip("gcsfs")
pytest.importorskip("gcp_storage_emulator")

from loaders.shard import ShardConfig, load_shard_set, shard_store  # noqa: E402
from loaders.stream import EpochLoader, ShardStream, StreamConfig  # noqa: E402
from tests.fixtures.loaders import check_mix2_listing_and_verify  # noqa: E402
from tests.fixtures.servers import HOST, server_process  # noqa: E402


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory) -> Path:
    from tests.fixtures.spin import spin_shards

    return spin_shards(tmp_path_factory.mktemp("gcs"), n=24)  # 3 shards of 8


def emulator_command(port: int) -> list[str]:
    """The GCS emulator, in memory, with the bucket ``hmr``, on ``port``."""
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    return [str(exe), "start", "--host", HOST, "--port", str(port), "--in-memory", "--default-bucket", "hmr",
            "--quiet"]


@pytest.fixture
def gcs(monkeypatch):
    """A GCS emulator on the loopback with a bucket ``hmr``; yields a gcsfs filesystem on it."""
    with server_process(emulator_command, "the GCS emulator") as endpoint:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        monkeypatch.setenv("FSSPEC_GS_TOKEN", "anon")
        monkeypatch.setenv("FSSPEC_GS_PROJECT", "hmr-test")
        import fsspec.config

        monkeypatch.setattr(fsspec.config, "conf", {})
        fsspec.config.set_conf_env(fsspec.config.conf)  # FSSPEC_GS_* as a user's shell would give them
        yield gcsfs.GCSFileSystem(token="anon", project="hmr-test", skip_instance_cache=True)


def upload(fs, folder: Path, prefix: str) -> None:
    for f in sorted(folder.rglob("*")):
        if f.is_file():
            fs.pipe_file(f"{prefix}/{f.relative_to(folder).as_posix()}", f.read_bytes())


@pytest.fixture
def bucket(shard_dir, gcs):
    """The shard set uploaded to ``gs://hmr/sets/<name>``; yields that URL."""
    upload(gcs, shard_dir, f"hmr/sets/{shard_dir.name}")
    return f"gs://hmr/sets/{shard_dir.name}"


def batches(set_ref, n: int = 3) -> list[dict]:
    cfg = StreamConfig(out_size=32, batch_size=4, shuffle_buffer=8, seed=7, convention="spin_49", resampled=False)
    it = iter(EpochLoader(ShardStream([(load_shard_set(set_ref), 1.0)], cfg), n))
    return [next(it) for _ in range(n)]


@pytest.mark.slow
def test_batches_over_gcs_equal_batches_from_disk(shard_dir, bucket):
    remote = load_shard_set(bucket)
    assert [Path(u).name for u in remote.urls] == [Path(u).name for u in load_shard_set(shard_dir).urls]
    assert all(u.startswith(bucket + "/") for u in remote.urls)
    got, want = batches(bucket), batches(shard_dir)
    assert len(got) == len(want) == 3
    for x, y in zip(got, want):
        assert x.keys() == y.keys()
        for k in x:
            assert torch.equal(x[k], y[k]) if isinstance(x[k], torch.Tensor) else x[k] == y[k], k


@pytest.mark.slow
def test_missing_gcs_set_is_a_clear_error(bucket):
    from hmr.core.errors import HmrError

    with pytest.raises(HmrError, match="index.json"):
        load_shard_set(bucket + "-missing")


@pytest.mark.slow
def test_mix_listing_and_verify_over_gcs(gcs, tmp_path):
    from tests.fixtures.loaders import pinhole_store

    for dataset, split, seed in (("h36m", "train", 1), ("humandata", "mpi_inf_3dhp_train", 2),
                                 ("eft_coco", "train", 3)):
        store = pinhole_store(tmp_path, n=8, seed=seed, dataset=dataset, split=split)
        shard_store(store, tmp_path / "shards", ShardConfig(samples_per_shard=4, crop_size=64), progress=False)
    upload(gcs, tmp_path / "shards", "hmr/sets")
    check_mix2_listing_and_verify("gs://hmr/sets", lambda key, data: gcs.pipe_file(f"hmr/sets/{key}", data))
