"""Shard sets read over the network: a real HTTP server on the loopback (the standard
library's ThreadingHTTPServer) serving a set made by the fixtures, one that drops the
connection mid-shard, ``pipe:`` shards, and an S3-compatible server (moto, when installed)."""

from __future__ import annotations

import functools
import logging
import socket
import sys
import urllib.request
from pathlib import Path

import pytest
import torch

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

import loaders.stream as stream_mod  # noqa: E402
from hmr.core.errors import HmrError  # noqa: E402
from loaders.shard import load_shard_set  # noqa: E402
from loaders.stream import EpochLoader, ShardStream, StreamConfig, iter_shard  # noqa: E402
from tests.fixtures.servers import (  # noqa: E402
    QuietHandler,
    ServerStartError,
    http_server_command,
    moto_s3,
    serve_folder,
    server_process,
)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory) -> Path:
    from tests.fixtures.spin import spin_shards

    return spin_shards(tmp_path_factory.mktemp("remote"), n=24)  # 3 shards of 8


class _Handler(QuietHandler):
    """Serves the folder; the first ``drops[name]`` requests for a file send half its bytes
    (with the full Content-Length) and close the connection."""

    drops: dict[str, int] = {}
    requests: list[str] = []

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        type(self).requests.append(name)
        if self.drops.get(name, 0) > 0:
            self.drops[name] -= 1
            data = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        super().do_GET()


@pytest.fixture
def server(shard_dir):
    """(base URL, handler class) of a server on 127.0.0.1 (a free port) serving the set."""
    handler = type("Handler", (_Handler,), {"drops": {}, "requests": []})
    with serve_folder(shard_dir, handler) as url:
        yield url, handler


@pytest.fixture(autouse=True)
def no_wait(monkeypatch):
    monkeypatch.setattr(stream_mod, "RETRY_WAIT_S", 0.0)


def batches(set_ref, n: int = 3, **kw) -> list[dict]:
    cfg = StreamConfig(out_size=32, batch_size=4, shuffle_buffer=8, seed=7, convention="spin_49", **kw)
    it = iter(EpochLoader(ShardStream([(load_shard_set(set_ref), 1.0)], cfg), n))
    return [next(it) for _ in range(n)]


def assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], torch.Tensor):
                assert torch.equal(x[k], y[k]), k
            else:
                assert x[k] == y[k], k


def test_index_over_http_names_shards_under_the_prefix(shard_dir, server):
    url, _ = server
    remote, local = load_shard_set(url + "/"), load_shard_set(shard_dir)
    assert remote.root == url
    assert remote.urls == [f"{url}/{s['name']}" for s in local.shards]
    assert (remote.name, remote.num_samples, remote.shards) == (local.name, local.num_samples, local.shards)
    assert load_shard_set(url + "/index.json").urls == remote.urls


def test_missing_remote_index_is_a_clear_error(server):
    url, _ = server
    with pytest.raises(HmrError, match="index.json"):
        load_shard_set(url + "/nothing-here")


@pytest.mark.parametrize("kw", [{"resampled": False}, {"resampled": True}, {"resampled": True, "cache_mb": 16}])
def test_batches_over_http_equal_batches_from_disk(shard_dir, server, kw):
    url, handler = server
    assert_same(batches(url, **kw), batches(shard_dir, **kw))
    assert any(r.endswith(".tar") for r in handler.requests)  # really read over HTTP


def test_connection_dropped_mid_shard_is_retried_and_recovered(shard_dir, server, caplog):
    url, handler = server
    first = load_shard_set(shard_dir).shards[0]["name"]
    handler.drops[first] = 1
    bad = stream_mod.STATS.bad_shards
    with caplog.at_level(logging.WARNING, "hmr.loaders"):
        got = list(iter_shard(f"{url}/{first}", 8))
    want = list(iter_shard(str(shard_dir / first), 8))
    assert len(want) == 8
    assert [{k: v for k, v in s.items() if k != "__url__"} for s in got] == \
        [{k: v for k, v in s.items() if k != "__url__"} for s in want]
    assert stream_mod.STATS.bad_shards == bad
    assert f"{url}/{first}" in caplog.text and "retry 1 of 3" in caplog.text
    assert handler.requests.count(first) == 2


def test_training_batches_survive_a_dropped_connection(shard_dir, server):
    url, handler = server
    for s in load_shard_set(shard_dir).shards:
        handler.drops[s["name"]] = 1
    assert_same(batches(url, resampled=False), batches(shard_dir, resampled=False))


def test_shard_that_stays_unreadable_counts_as_bad(shard_dir, server, caplog):
    url, handler = server
    first = load_shard_set(shard_dir).shards[0]["name"]
    handler.drops[first] = 99
    bad = stream_mod.STATS.bad_shards
    with caplog.at_level(logging.WARNING, "hmr.loaders"):
        got = list(iter_shard(f"{url}/{first}", 8))
    assert len(got) < 8
    assert stream_mod.STATS.bad_shards == bad + 1
    assert "retry 3 of 3" in caplog.text and "truncated or unreadable" in caplog.text
    assert handler.requests.count(first) == 4  # the first try and 3 retries


def test_missing_remote_shard_counts_as_bad(server, caplog):
    url, _ = server
    bad = stream_mod.STATS.bad_shards
    with caplog.at_level(logging.WARNING, "hmr.loaders"):
        assert list(iter_shard(f"{url}/shard-999999.tar", 8)) == []
    assert stream_mod.STATS.bad_shards == bad + 1
    assert f"{url}/shard-999999.tar" in caplog.text


def test_pipe_shard_reads_the_command_output_when_allowed(shard_dir, monkeypatch):
    first = shard_dir / load_shard_set(shard_dir).shards[0]["name"]
    with pytest.raises(HmrError, match=stream_mod.PIPE_SHARDS_ENV):
        list(iter_shard(f"pipe:cat {first}", 8))
    monkeypatch.setenv(stream_mod.PIPE_SHARDS_ENV, "1")
    got = list(iter_shard(f"pipe:cat {first}", 8))
    assert len(got) == 8
    assert [s["__key__"] for s in got] == [s["__key__"] for s in iter_shard(str(first), 8)]


def test_pipe_prefix_is_refused_for_a_set(shard_dir):
    with pytest.raises(HmrError, match="pipe:"):
        load_shard_set(f"pipe:cat {shard_dir}")


def test_server_process_answers_and_is_stopped_after_the_block(shard_dir):
    with (server_process(functools.partial(http_server_command, shard_dir), "http.server") as url,
          urllib.request.urlopen(url + "/index.json", timeout=30) as r):
        assert r.read() == (shard_dir / "index.json").read_bytes()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/index.json", timeout=5)


def test_server_process_that_dies_or_stays_silent_is_a_clear_error():
    def dies(port: int) -> list[str]:
        return [sys.executable, "-u", "-c", "print('bucket hmr: no such thing'); raise SystemExit(3)"]

    def silent(port: int) -> list[str]:
        return [sys.executable, "-u", "-c", "import time; print('still starting'); time.sleep(60)"]

    with (pytest.raises(ServerStartError, match=r"(?s)^dies exited with code 3 .*bucket hmr: no such thing"),
          server_process(dies, "dies")):
        pass
    with (pytest.raises(ServerStartError, match=r"(?s)^silent did not accept .* within 1 s.*still starting"),
          server_process(silent, "silent", timeout_s=1)):
        pass


@pytest.mark.slow
def test_batches_over_s3_equal_batches_from_disk(shard_dir, monkeypatch):
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    pytest.importorskip("boto3")
    with moto_s3(monkeypatch) as s3:
        s3.create_bucket(Bucket="hmr")
        for f in sorted(shard_dir.iterdir()):
            if f.is_file():
                s3.upload_file(str(f), "hmr", f"sets/{shard_dir.name}/{f.name}")
        url = f"s3://hmr/sets/{shard_dir.name}"
        assert_same(batches(url, resampled=False), batches(shard_dir, resampled=False))


def test_training_config_takes_a_url_set(shard_dir, server):
    """``data.shards = ["http://…"]`` reaches the trainer's batches unchanged (same as disk)."""
    from hmr.training.config import load_config
    from hmr.training.data import build_batches, shard_sources

    url, handler = server

    def first_batches(ref, start_step: int = 0) -> tuple[list, list[dict]]:
        cfg = load_config("tiny_cpu", ['data.source="shards"', f'data.shards=["{ref}"]', "data.num_workers=0",
                                       "data.shuffle_buffer=4", "train.batch_size=4"])
        it = build_batches(cfg)(start_step)
        return shard_sources(cfg), [next(it) for _ in range(2)]

    sources, got = first_batches(url)
    remote = sources[0][0]
    assert remote.root == url and all(u.startswith(url + "/") for u in remote.urls)
    assert_same(got, first_batches(shard_dir)[1])
    # exact resume: starting at step 7 over HTTP gives the disk run's steps 7 and 8
    resumed = first_batches(url, 7)[1]
    assert_same(resumed, first_batches(shard_dir, 7)[1])
    assert not torch.equal(resumed[0]["img"], got[0]["img"])
    assert any(r.endswith(".tar") for r in handler.requests)


@pytest.mark.slow
def test_dataloader_workers_read_over_http(shard_dir, server):
    """Forked DataLoader workers open their own connections (fsspec's per-process state)."""
    from loaders.build import build_loader

    url, handler = server

    def keys(ref) -> list[str]:
        cfg = StreamConfig(out_size=32, batch_size=4, shuffle_buffer=4, seed=3, resampled=False,
                           convention="spin_49", drop_last=False)
        loader = build_loader([(load_shard_set(ref), 1.0)], cfg, num_workers=2, epoch_batches=None)
        return sorted(k for batch in loader for k in batch["key"])

    got = keys(url)
    assert len(got) == 24 and got == keys(shard_dir)
    assert sum(r.endswith(".tar") for r in handler.requests) == 3


def test_build_loader_takes_a_url_set_beside_a_local_one(shard_dir, server):
    """loaders.build: a URL entry is read as a URL (not turned into a Path), next to a local set."""
    from loaders.build import resolve_sources

    url, _ = server
    (remote, r1), (local, r2) = resolve_sources([url, str(shard_dir)], shard_root="/nonexistent")
    assert isinstance(remote.root, str) and remote.root.startswith("http://127.0.0.1")
    assert remote.num_samples == local.num_samples and remote.shards == local.shards
    assert r1 == r2 == 0.5
