"""``hmr verify SHARD_SET`` against hostile edits: pickle members (with the index updated to
match), a wrong sample count, a dropped shard, an empty shard list, shard names that point
outside the set. Each must fail verification; none may be read from outside the set."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile

import pytest

from cli.main import main
from hmr.core.errors import HmrError
from loaders import ShardConfig, load_shard_set, shard_store
from tests.fixtures.loaders import pinhole_store


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shards")
    store = pinhole_store(tmp / "stores", n=9)
    return shard_store(store, tmp / "shards", ShardConfig(crop_size=32, samples_per_shard=3), progress=False)


@pytest.fixture()
def set_dir(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / pristine.name)


def _index(set_dir):
    return json.loads((set_dir / "index.json").read_text())


def _write_index(set_dir, index):
    (set_dir / "index.json").write_text(json.dumps(index))


def _verify(set_dir, capsys):
    code = main(["verify", str(set_dir)])
    return code, capsys.readouterr().out


def _add_member(shard, name, payload):
    """Append a member to a shard tar (what a hostile edit of a shard set does)."""
    with tarfile.open(shard, "a") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))


def test_pristine_set_verifies(set_dir, capsys):
    assert _verify(set_dir, capsys)[0] == 0


@pytest.mark.parametrize("member", ["pinhole-train_000000000.pyd", "pinhole-train_000000001.pickle",
                                    "evil.pth"])
def test_pickle_member_fails_even_with_a_matching_index(set_dir, capsys, member):
    shard = set_dir / "shard-000000.tar"
    _add_member(shard, member, b"\x80\x04K\x01.")  # a pickle
    index = _index(set_dir)
    data = shard.read_bytes()  # the attacker updates size and digest too
    index["shards"][0].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    _write_index(set_dir, index)
    code, out = _verify(set_dir, capsys)
    assert code == 1 and member in out


def test_wrong_num_samples_fails(set_dir, capsys):
    index = _index(set_dir)
    index["num_samples"] += 5
    _write_index(set_dir, index)
    code, out = _verify(set_dir, capsys)
    assert code == 1 and "num_samples" in out


def test_dropped_shard_fails(set_dir, capsys):
    index = _index(set_dir)
    dropped = index["shards"].pop(1)
    index["num_samples"] -= dropped["num_samples"]
    (set_dir / dropped["name"]).unlink()
    (set_dir / (dropped["name"] + ".json")).unlink()
    _write_index(set_dir, index)
    code, out = _verify(set_dir, capsys)
    assert code == 1 and "in no shard" in out


def test_empty_shard_list_fails(set_dir, capsys):
    index = _index(set_dir)
    index.update(shards=[], num_samples=0)
    _write_index(set_dir, index)
    code, out = _verify(set_dir, capsys)
    assert code == 1 and "no shards" in out


@pytest.mark.parametrize("name", ["../outside.tar", "/tmp/outside.tar", "sub/../../outside.tar"])
def test_shard_name_outside_the_set_is_refused_not_read(set_dir, capsys, name):
    outside = set_dir.parent / "outside.tar"
    shutil.copy(set_dir / "shard-000000.tar", outside)
    index = _index(set_dir)
    index["shards"][0]["name"] = name
    _write_index(set_dir, index)
    code, out = _verify(set_dir, capsys)
    assert code == 1 and "outside" in out
    with pytest.raises(HmrError, match="inside the shard set"):
        load_shard_set(set_dir)  # what training and evaluation open
