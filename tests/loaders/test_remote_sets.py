"""Shard sets under a URL root, as under a folder: mixes resolved by name (``<root>/<set>/index.json``),
sets listed, and ``hmr verify`` of a set given by URL — over a real HTTP server on the loopback
(the standard library's, as in test_remote_shards.py) and an S3-compatible one (moto)."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from http import HTTPStatus
from pathlib import Path

import pytest

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")

from cli.main import main  # noqa: E402
from hmr.core.errors import HmrError  # noqa: E402
from loaders.build import resolve_sources  # noqa: E402
from loaders.mixes import MIXES, find_shard_sets, resolve_mix  # noqa: E402
from loaders.shard import ShardConfig, load_shard_set, shard_store  # noqa: E402
from loaders.shard_check import verify_shard_set  # noqa: E402
from tests.fixtures.loaders import MIX2_SETS, check_mix2_listing_and_verify, pinhole_store  # noqa: E402
from tests.fixtures.servers import QuietHandler, moto_s3, serve_folder  # noqa: E402


@pytest.fixture(scope="module")
def shard_root(tmp_path_factory) -> Path:
    """The three sets of mix2 (one under the name of the benchmark's HumanData file)."""
    out = tmp_path_factory.mktemp("remote_sets")
    for dataset, split, seed in (("h36m", "train", 1), ("humandata", "mpi_inf_3dhp_train", 2),
                                 ("eft_coco", "train", 3)):
        store = pinhole_store(out, n=8, seed=seed, dataset=dataset, split=split)
        shard_store(store, out / "shards", ShardConfig(samples_per_shard=4, crop_size=64), progress=False)
    return out / "shards"


class _NoListing(QuietHandler):
    """A static server without directory pages (most object-store gateways, a CDN)."""

    def list_directory(self, path):
        self.send_error(HTTPStatus.NOT_FOUND, "no listing")
        return None


@pytest.fixture
def served():
    """``serve(folder, listing=True) -> base URL``; servers stop at the end of the test."""
    with ExitStack() as running:
        yield lambda folder, listing=True: running.enter_context(
            serve_folder(folder, QuietHandler if listing else _NoListing))


@pytest.mark.parametrize("listing", [True, False])
def test_mix_preset_resolves_under_an_http_root(shard_root, served, listing):
    url = served(shard_root, listing)
    local = resolve_mix(MIXES["mix2"], shard_root)
    remote = resolve_mix(MIXES["mix2"], url)
    assert [s.name for s, _ in remote] == [s.name for s, _ in local] == list(MIX2_SETS)
    assert [r for _, r in remote] == [r for _, r in local]
    for (r, _), (sset, _) in zip(remote, local):
        assert r.root == f"{url}/{sset.root.name}"
        assert r.urls == [f"{r.root}/{s['name']}" for s in sset.shards] and r.shards == sset.shards
    # the loaders' and the training config's entry points take the URL root too
    assert [s.root for s, _ in resolve_sources("mix2", shard_root=url)] == [s.root for s, _ in remote]
    assert [s.root for s, _ in resolve_sources(["eft_coco-train"], shard_root=url)] == [f"{url}/eft_coco-train"]
    from hmr.training.config import load_config
    from hmr.training.data import shard_sources

    cfg = load_config("tiny_cpu", ['data.source="shards"', 'data.mix="mix2"', f'data.root="{url}/"'])
    assert [s.root for s, _ in shard_sources(cfg)] == [s.root for s, _ in remote]


def test_mix_missing_under_an_http_root_names_the_sets(shard_root, served, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(shard_root / "h36m-train", partial / "h36m-train")
    url = served(partial, listing=False)
    with pytest.raises(HmrError) as err:
        resolve_mix(MIXES["mix2"], url)
    text = str(err.value)
    assert url in text and "mpi_inf_3dhp-train or humandata-mpi_inf_3dhp_train" in text
    assert "eft_coco-train" in text and "h36m-train or" not in text
    with pytest.raises(HmrError, match="cannot be reached"):  # nothing listens there
        resolve_mix(MIXES["mix2"], url.rsplit(":", 1)[0] + ":1")


def test_find_shard_sets_lists_an_http_root(shard_root, served):
    found = find_shard_sets(served(shard_root))
    assert sorted(found) == sorted(find_shard_sets(shard_root)) == sorted(MIX2_SETS)
    assert all(s.root.startswith("http://127.0.0.1") for s in found.values())
    assert find_shard_sets(served(shard_root, listing=False)) == {}  # no pages, nothing listed


def _localised(problems: list[str], url: str, folder: Path) -> list[str]:
    return [p.replace(url, str(folder)) for p in problems]


def test_verify_a_set_by_url_as_on_disk(shard_root, served, tmp_path, capsys):
    url = served(shard_root)
    assert verify_shard_set(f"{url}/h36m-train") == [] == verify_shard_set(shard_root / "h36m-train")
    assert main(["verify", f"{url}/h36m-train"]) == 0
    assert "OK" in capsys.readouterr().out

    broken = tmp_path / "broken"
    shutil.copytree(shard_root / "h36m-train", broken / "h36m-train")
    root = broken / "h36m-train"
    names = [s["name"] for s in load_shard_set(root).shards]
    assert len(names) == 2
    data = bytearray((root / names[0]).read_bytes())
    data[700] ^= 0xFF  # the same size, another digest
    (root / names[0]).write_bytes(bytes(data))
    (root / names[1]).write_bytes((root / names[1]).read_bytes()[:1500])  # truncated
    shutil.copyfile(root / names[1], root / "shard-000099.tar")  # a shard the index does not list
    url = served(broken)
    remote = verify_shard_set(f"{url}/h36m-train")
    assert _localised(remote, url, broken) == verify_shard_set(root)
    assert any("sha256 differs" in p and names[0] in p for p in remote)
    assert any("bytes, index says" in p and names[1] in p for p in remote)
    assert any("does not list" in p and "shard-000099.tar" in p for p in remote)
    assert main(["verify", f"{url}/h36m-train", "--quick"]) == 1
    out = capsys.readouterr().out
    assert "sha256" not in out and "index says" in out and "FAILED" in out

    (root / names[0]).unlink()
    assert any(p == f"{url}/h36m-train/{names[0]}: missing" for p in verify_shard_set(f"{url}/h36m-train"))
    assert verify_shard_set(f"{url}/nothing")[0].startswith(f"{url}/nothing: unusable shard index")


def test_verify_a_url_set_that_keeps_a_pickle_member(shard_root, served, tmp_path):
    """A member that is not ours fails over HTTP as on disk, though size and digest match the
    index (the index was rewritten to match it)."""
    import hashlib
    import io
    import json
    import tarfile

    root = tmp_path / "odd" / "h36m-train"
    shutil.copytree(shard_root / "h36m-train", root)
    index = json.loads((root / "index.json").read_text())
    first = index["shards"][0]
    with tarfile.open(root / first["name"], "a") as tf:
        info = tarfile.TarInfo("extra.pyd")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"\x80\x04N."))
    blob = (root / first["name"]).read_bytes()
    first.update(bytes=len(blob), sha256=hashlib.sha256(blob).hexdigest())
    (root / "index.json").write_text(json.dumps(index))
    url = served(tmp_path / "odd")
    remote = verify_shard_set(f"{url}/h36m-train")
    assert remote and _localised(remote, url, tmp_path / "odd") == verify_shard_set(root)
    assert "'extra.pyd'" in remote[0]


@pytest.mark.slow
def test_mix_listing_and_verify_over_s3(shard_root, tmp_path, monkeypatch):
    """The same over an S3-compatible server on the loopback (moto): object-store listings
    come back without their ``s3://``, which the set's URLs must keep."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    pytest.importorskip("boto3")
    with moto_s3(monkeypatch) as s3:
        s3.create_bucket(Bucket="hmr")
        for f in sorted(shard_root.rglob("*")):
            if f.is_file():
                s3.upload_file(str(f), "hmr", f"sets/{f.relative_to(shard_root).as_posix()}")
        check_mix2_listing_and_verify(
            "s3://hmr/sets", lambda key, data: s3.put_object(Bucket="hmr", Key=f"sets/{key}", Body=data))
