"""Readers check what they read: a deleted chunk is never read back as zeros, a chunk whose
bytes changed but still decode is caught against the output manifest, an undecodable chunk is
named with its store, field and file, and a store naming a codec we never write (numcodecs'
pickle) is refused before any chunk is decoded, whatever the environment says."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from numcodecs import Blosc

from cli.main import main
from hmr.core.errors import ChecksumMismatch, SchemaError
from hmr.core.schema import StoreWriter, open_store
from loaders import ShardConfig, shard_store
from tests.fixtures.schema import WRITER_ARGS, random_columns
from tests.reliability.helpers import coco_raw, convert_args, run_child

STORE = "coco2017_val.zarr"


@pytest.fixture()
def converted(tmp_path):
    """A real conversion: store + output manifest."""
    raw = coco_raw(tmp_path / "coco")
    assert main(convert_args(raw, tmp_path / "out")) == 0
    return tmp_path / "out" / STORE


def _plain_store(path, n=40, chunk_rows=16):
    with StoreWriter(path, **WRITER_ARGS, chunk_rows=chunk_rows) as w:
        w.add_columns(random_columns(n))
    return path


def _rewrite_chunk(chunk, change):
    """Decode a Blosc chunk, change a value, encode it again: a flip that still decodes."""
    meta = json.loads((chunk.parent / ".zarray").read_text())
    raw = np.frombuffer(Blosc().decode(chunk.read_bytes()), dtype=meta["dtype"]).copy()
    change(raw)
    c = meta["compressor"]
    chunk.write_bytes(Blosc(cname=c["cname"], clevel=c["clevel"], shuffle=c["shuffle"]).encode(raw))


def test_deleted_chunk_is_refused_on_open_never_read_as_zeros(converted, capsys):
    (converted / "keypoints2d" / "0.0.0").unlink()
    with pytest.raises(SchemaError, match=r"keypoints2d/0\.0\.0"):
        open_store(converted)
    for argv in (["store", "validate", str(converted)], ["inspect", str(converted), "--no-validate"]):
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert "keypoints2d/0.0.0" in err and "internal error" not in err


def test_a_store_of_all_default_values_still_has_every_chunk(tmp_path):
    path = tmp_path / "a.zarr"
    with StoreWriter(path, **WRITER_ARGS, chunk_rows=4) as w:
        for i in range(10):  # no SMPL, no 3D: chunks of fill values only, written all the same
            w.add({"image_path": f"{i}.jpg", "image_hw": (10, 10), "bbox_xywh": [1, 1, 4, 4]})
    assert len(list((path / "smpl_betas").glob("[0-9]*"))) == 3
    assert open_store(path).read("smpl_betas").shape == (10, 10)


def test_changed_chunk_that_still_decodes_is_caught_by_validate_inspect_shard_evaluate(converted, capsys):
    chunk = converted / "keypoints2d" / "0.0.0"
    _rewrite_chunk(chunk, lambda a: a.__setitem__(0, a[0] + 7.0))
    open_store(converted).read("keypoints2d")  # it does decode: only the digest shows it
    for argv in (["store", "validate", str(converted)], ["inspect", str(converted)],
                 ["evaluate", str(converted.parent / "none.pt"), "--bench", "3dpw", "--data", str(converted)]):
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert "keypoints2d/0.0.0" in err and "output manifest" in err, err
    with pytest.raises(ChecksumMismatch, match=r"keypoints2d/0\.0\.0"):
        shard_store(converted, converted.parent / "shards", ShardConfig(crop_size=32), progress=False)


def test_undecodable_chunk_names_store_field_and_file(tmp_path, capsys):
    path = _plain_store(tmp_path / "a.zarr")
    (path / "image_hw" / "1.0").write_bytes(b"\x02\x01garbage that is not blosc")
    store = open_store(path)
    with pytest.raises(SchemaError, match=r"image_hw/1\.0") as err:
        store.read("image_hw")
    assert str(path) in str(err.value)
    assert main(["store", "validate", str(path)]) != 0
    out = capsys.readouterr().err
    assert "image_hw/1.0" in out and "internal error" not in out


def _pickle_bomb(marker):
    class Bomb:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    return pickle.dumps(Bomb(), protocol=5)


def test_pickle_codec_is_refused_even_when_the_environment_allows_it(tmp_path):
    # zarr 3.1 fails on its own to resolve such an array (with an unclear ValueError); zarr
    # 2.x decodes it, running the payload. Our refusal comes first, whatever the zarr version.
    path = _plain_store(tmp_path / "a.zarr")
    marker = tmp_path / "payload-ran"
    meta_file = path / "frame_index" / ".zarray"
    meta = json.loads(meta_file.read_text())
    meta["compressor"] = {"id": "pickle", "protocol": 5}
    meta_file.write_text(json.dumps(meta))
    for chunk in path.glob("frame_index/[0-9]*"):
        chunk.write_bytes(_pickle_bomb(marker))
    child = run_child(f"""
        from hmr.core.errors import SchemaError
        from hmr.core.schema import open_store
        try:
            open_store({str(path)!r}).read("frame_index")
        except SchemaError as exc:
            print("refused:", exc)
    """, env={"NUMCODECS_ALLOW_UNSAFE_PICKLE_DECODE": "1"})
    assert not marker.exists(), "the pickle payload ran"
    assert "refused:" in child.stdout and "pickle" in child.stdout and "frame_index" in child.stdout, \
        child.stdout + child.stderr
