"""Output manifests: written next to the store, and any later change to the store fails."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from cli.main import main as hmr_main
from hmr.core.errors import SchemaError
from manifests import manifest_digest, verify_output, write_output_manifest
from tests.fixtures.manifests import (flip_one_byte, isolated_user_dir,  # noqa: F401
                                      make_source_tree, truncate)

pytestmark = pytest.mark.usefixtures("isolated_user_dir")


@pytest.fixture
def raw(tmp_path):
    return make_source_tree(tmp_path / "raw")


def _zarr_like_store(path):
    """A folder store shaped like a zarr v3 group: metadata JSON and chunk files."""
    (path / "keypoints2d" / "c" / "0").mkdir(parents=True)
    (path / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    (path / "keypoints2d" / "zarr.json").write_text('{"shape": [4, 17, 3]}')
    for i in range(3):
        (path / "keypoints2d" / "c" / "0" / str(i)).write_bytes(os.urandom(4096 + i))
    return path


def _write(store, raw, **kw):
    args = dict(converter="converters.toyset", converter_version="1.2.0", schema_version=1,
                source_manifest=str(raw.manifest), raw_files=["annotations/train.json",
                                                               "data/params.bin"],
                raw_root=raw.root, counts={"train": 4}, argv=["hmr", "convert", "toyset"],
                progress=False)
    args.update(kw)
    return write_output_manifest(store, **args)


def test_folder_store_manifest_records_everything(tmp_path, raw):
    store = _zarr_like_store(tmp_path / "out" / "toy_train.zarr")
    out = _write(store, raw)
    assert out == tmp_path / "out" / "toy_train.zarr.manifest.json"
    doc = json.loads(out.read_text())
    assert doc["store_kind"] == "dir" and doc["counts"] == {"train": 4}
    assert doc["converter"] == {"name": "converters.toyset", "version": "1.2.0"}
    assert doc["schema_version"] == 1 and doc["argv"] == ["hmr", "convert", "toyset"]
    assert {f["path"] for f in doc["files"]} == {
        "zarr.json", "keypoints2d/zarr.json", "keypoints2d/c/0/0", "keypoints2d/c/0/1",
        "keypoints2d/c/0/2"}
    chunk = next(f for f in doc["files"] if f["path"] == "keypoints2d/c/0/1")
    assert chunk["sha256"] == hashlib.sha256((store / "keypoints2d/c/0/1").read_bytes()).hexdigest()
    assert doc["source_manifest"]["sha256"] == manifest_digest(str(raw.manifest))
    raw_rec = {r["path"]: r for r in doc["raw"]["files"]}
    assert raw_rec["data/params.bin"]["sha256"] == hashlib.sha256(
        (raw.root / raw.binary).read_bytes()).hexdigest()
    assert raw_rec["data/params.bin"]["size"] == 64 * 1024
    assert "mtime_ns" in raw_rec["data/params.bin"]
    assert not list(out.parent.glob("*.partial-*")), "written atomically, no leftovers"


def test_large_raw_files_keep_size_and_mtime_only(tmp_path, raw):
    store = _zarr_like_store(tmp_path / "s.zarr")
    doc = json.loads(_write(store, raw, raw_hash_max_bytes=1024).read_text())
    rec = {r["path"]: r for r in doc["raw"]["files"]}
    assert "sha256" in rec["annotations/train.json"] and "sha256" not in rec["data/params.bin"]


def test_unchanged_store_verifies(tmp_path, raw):
    store = _zarr_like_store(tmp_path / "s.zarr")
    _write(store, raw)
    report = verify_output(store, progress=False)
    assert report.ok, report.format_table()
    assert len(report.by_status("ok")) == 5
    assert verify_output(tmp_path / "s.zarr.manifest.json", progress=False).ok


@pytest.mark.parametrize("damage, expected", [
    (lambda s: flip_one_byte(s / "keypoints2d/c/0/2"), [("wrong_checksum", "keypoints2d/c/0/2")]),
    (lambda s: truncate(s / "keypoints2d/c/0/0", 10), [("wrong_size", "keypoints2d/c/0/0")]),
    (lambda s: (s / "zarr.json").unlink(), [("missing", "zarr.json")]),
    (lambda s: (s / "keypoints2d/c/0/9").write_bytes(b"x"), [("extra", "keypoints2d/c/0/9")]),
])
def test_any_change_after_conversion_fails(tmp_path, raw, damage, expected):
    store = _zarr_like_store(tmp_path / "s.zarr")
    _write(store, raw)
    damage(store)
    report = verify_output(store, progress=False)
    assert sorted((c.status, c.path) for c in report.failures()) == expected


def test_single_file_store(tmp_path, raw):
    store = tmp_path / "toy_train.npz"
    np.savez(store, keypoints2d=np.zeros((4, 17, 3), np.float32))
    out = _write(store, raw, source_manifest=None)
    doc = json.loads(out.read_text())
    assert out.name == "toy_train.npz.manifest.json" and doc["store_kind"] == "file"
    assert [f["path"] for f in doc["files"]] == ["toy_train.npz"] and doc["source_manifest"] is None
    assert verify_output(store, progress=False).ok
    np.savez(store, keypoints2d=np.ones((4, 17, 3), np.float32))  # same size, new bytes
    assert [c.status for c in verify_output(store, progress=False).failures()] == ["wrong_checksum"]


def test_cli_verify_store(tmp_path, raw, capsys):
    store = _zarr_like_store(tmp_path / "s.zarr")
    _write(store, raw)
    assert hmr_main(["verify", str(store)]) == 0
    assert "result: OK" in capsys.readouterr().out
    flip_one_byte(store / "zarr.json")
    assert hmr_main(["verify", str(store), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"] == {"wrong_checksum": 1, "ok": 4}


def test_malformed_output_manifest_is_a_schema_error(tmp_path, raw):
    store = _zarr_like_store(tmp_path / "s.zarr")
    out = _write(store, raw)
    doc = json.loads(out.read_text())
    del doc["files"][0]["sha256"]
    out.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match="files\\[0\\]"):
        verify_output(store, progress=False)
    out.write_text("{not json")
    with pytest.raises(SchemaError, match="not valid JSON"):
        verify_output(store, progress=False)


def test_store_without_manifest_is_a_clear_error(tmp_path):
    store = _zarr_like_store(tmp_path / "s.zarr")
    with pytest.raises(FileNotFoundError, match="no output manifest"):
        verify_output(store, progress=False)
