"""Nothing left behind: a bad row found when the last block is written, a full disk, a kill
while writing an npz or a checkpoint. The partial output goes (now, or at the next run once
its process is gone) and the error names the raw record or the output path."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pytest

from cli.main import main
from converters.driver import run_conversion
from hmr.core.errors import DatasetFormatError, HmrError, SchemaError
from hmr.core.interop.npz_writer import NpzBlockWriter
from hmr.core.schema import StoreWriter, open_store
from hmr.models.checkpoint import load_checkpoint, save_checkpoint
from tests.fixtures.schema import WRITER_ARGS
from tests.reliability.helpers import coco_raw, convert_args, dead_pid, run_child


def _row(key, hw=(60, 80)):
    return {"image_path": f"{key}.jpg", "image_hw": hw, "bbox_xywh": [1, 1, 8, 8], "source_key": key}


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()
                  if ".partial-" in p.name or ".old-" in p.name or p.name.startswith(".hmr-"))


def test_bad_row_found_at_close_removes_the_partial_and_names_its_record(tmp_path):
    with pytest.raises(SchemaError, match="ann=7") as err:
        with StoreWriter(tmp_path / "a.zarr", **WRITER_ARGS) as w:
            for key in ("ann=5", "ann=6", "ann=7", "ann=8"):
                w.add(_row(key, hw=(-60, 80) if key == "ann=7" else (60, 80)))
    assert "image_hw" in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [{"image_hw": (-60, 80)}, {"keypoints2d": np.zeros((10, 3))},
                                 {"bbox_xywh": [1, 1, float("nan"), 4]}])
def test_the_bad_row_is_blamed_not_the_one_that_filled_the_block(tmp_path, bad):
    with pytest.raises(HmrError) as err:
        with StoreWriter(tmp_path / "a.zarr", **WRITER_ARGS, chunk_rows=4) as w:
            for i in range(4):  # the 4th add flushes the block; row 1 is the bad one
                w.add({**_row(f"raw.json:rec={i}"), **(bad if i == 1 else {})})
    assert "rec=1" in str(err.value) and "rec=3" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_on_bad_row_drops_the_row_and_keeps_the_rest(tmp_path):
    seen = []
    with StoreWriter(tmp_path / "a.zarr", **WRITER_ARGS, chunk_rows=4,
                     on_bad_row=lambda row, exc: seen.append(row["source_key"])) as w:
        for i in range(6):
            w.add(_row(f"k{i}", hw=(-1, 5) if i in (1, 5) else (60, 80)))
    assert seen == ["k1", "k5"]
    assert list(open_store(tmp_path / "a.zarr").read("source_key")) == ["k0", "k2", "k3", "k4"]


def _coco_with_negative_height(root):
    coco_raw(root)
    ann = root / "annotations" / "person_keypoints_val2017.json"
    data = json.loads(ann.read_text())
    for im in data["images"]:
        if im["id"] == 11:
            im["height"] = -60
    ann.write_text(json.dumps(data))
    return root


def test_convert_names_the_bad_record_and_skip_bad_skips_it(tmp_path):
    raw = _coco_with_negative_height(tmp_path / "coco")
    out = tmp_path / "out"
    with pytest.raises(DatasetFormatError) as err:
        run_conversion("coco2017", raw, out, split="val", progress=False, argv=["t"])
    assert "ann=101" in str(err.value) or "image_id=11" in str(err.value)
    assert not out.exists() or _leftovers(out) == [] and not (out / "coco2017_val.zarr").exists()
    result = run_conversion("coco2017", raw, out, split="val", skip_bad=True, progress=False, argv=["t"])
    keys = list(open_store(result.store).read("source_key"))
    assert not any("ann=101" in k for k in keys) and len(keys) >= 2
    assert result.skipped and _leftovers(out) == []


def test_a_row_only_the_block_check_refuses_is_named_and_skippable_in_convert(tmp_path, monkeypatch):
    """A converter that lets a bad value through (here: its 2nd sample's image height turned
    negative in flight): found when the block is written at close, named by its source_key."""
    from converters import get_converter

    raw = coco_raw(tmp_path / "coco")
    module = get_converter("coco2017")
    original = module.iter_samples
    bad_keys = []

    def leaky(root, split, options):
        for i, sample in enumerate(original(root, split, options)):
            if i == 1 and isinstance(sample, dict):
                sample = {**sample, "image_hw": (-60, 80)}
                bad_keys.append(sample["source_key"])
            yield sample
    monkeypatch.setattr(module, "iter_samples", leaky)
    out = tmp_path / "out"
    with pytest.raises(DatasetFormatError, match="image_hw") as err:
        run_conversion("coco2017", raw, out, split="val", progress=False, argv=["t"])
    assert bad_keys[0] in str(err.value)
    assert _leftovers(out) == [] and not (out / "coco2017_val.zarr").exists()
    result = run_conversion("coco2017", raw, out, split="val", skip_bad=True, progress=False, argv=["t"])
    assert [b.path for b in result.skipped] == bad_keys[1:]
    assert bad_keys[1] not in list(open_store(result.store).read("source_key"))
    assert result.num_samples == 3 and _leftovers(out) == []


def _full_disk_after(calls):
    from zarr.storage import _local

    original, count = _local._put, [0]

    def put(path, value, *a, **k):
        if not str(path).endswith((".zarray", ".zattrs", ".zgroup")):
            count[0] += 1
            if count[0] > calls:
                raise OSError(errno.ENOSPC, "No space left on device")
        return original(path, value, *a, **k)
    return _local, put


def test_full_disk_while_writing_is_one_line_naming_the_store(tmp_path, monkeypatch):
    raw = coco_raw(tmp_path / "coco")
    out = tmp_path / "out"
    module, put = _full_disk_after(3)
    monkeypatch.setattr(module, "_put", put)
    with pytest.raises(HmrError, match="disk is full") as err:
        run_conversion("coco2017", raw, out, split="val", progress=False, argv=["t"])
    assert str(out / "coco2017_val.zarr") in str(err.value)
    assert _leftovers(out) == [] and not (out / "coco2017_val.zarr").exists()


def test_full_disk_while_writing_the_manifest_names_it_and_a_rerun_redoes(tmp_path, monkeypatch):
    import manifests.output

    raw = coco_raw(tmp_path / "coco")
    out = tmp_path / "out"

    def no_space(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")
    with monkeypatch.context() as m:
        m.setattr(manifests.output, "atomic_write_text", no_space)
        with pytest.raises(HmrError, match="disk is full") as err:
            run_conversion("coco2017", raw, out, split="val", progress=False, argv=["t"])
    assert "coco2017_val.zarr.manifest.json" in str(err.value)
    assert main(convert_args(raw, out)) == 0
    assert main(["verify", str(out / "coco2017_val.zarr")]) == 0


@pytest.mark.slow
def test_killed_npz_conversion_leaves_scratch_that_the_rerun_removes(tmp_path):
    raw = coco_raw(tmp_path / "coco")
    out = tmp_path / "out"
    child = run_child(f"""
        from hmr.core.schema import store
        kill_when(store, "_zarr_to_npz")
        from cli.main import main
        sys.exit(main({convert_args(raw, out, "--format", "npz")!r}))
    """)
    assert child.returncode == -9, child.stderr
    assert any(n.startswith(".hmr-npz-") for n in _leftovers(out))
    live = out / f".hmr-npz-{os.getppid()}-keepme"  # a live process's scratch: not ours
    live.mkdir()
    assert main(convert_args(raw, out, "--format", "npz")) == 0
    assert _leftovers(out) == [live.name]
    assert len(open_store(out / "coco2017_val.npz")) == 4


@pytest.mark.slow
def test_killed_npz_export_scratch_is_removed_by_the_next_writer(tmp_path):
    child = run_child(f"""
        from hmr.core.interop.npz_writer import NpzBlockWriter
        w = NpzBlockWriter({str(tmp_path / "a.npz")!r})
        w.create("x", (4, 2), "float32")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    assert child.returncode == -9, child.stderr
    assert len(_leftovers(tmp_path)) == 1
    with NpzBlockWriter(tmp_path / "b.npz") as w:
        w.put("y", np.arange(3))
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_checkpoint_partial_of_a_killed_save_is_removed_by_the_next_save_or_load(tmp_path):
    run = tmp_path / "run"
    child = run_child(f"""
        import torch
        def half_written(obj, f, *a, **k):
            Path(f).write_bytes(b"x" * 100_000)
        kill_when(torch, "save", before=half_written)
        from hmr.models.checkpoint import save_checkpoint
        save_checkpoint({str(run / "step_5.pt")!r}, {{"step": 5}})
    """)
    assert child.returncode == -9, child.stderr
    assert [p.name.split("-")[0] for p in run.iterdir()] == ["step_5.pt.partial"]
    live = run / f"step_6.pt.partial-{os.getppid()}"
    live.write_bytes(b"a live process is writing this")
    save_checkpoint(run / "step_10.pt", {"step": 10})
    assert sorted(p.name for p in run.iterdir()) == sorted(["step_10.pt", live.name])
    (run / f"step_7.pt.partial-{dead_pid()}").write_bytes(b"killed")
    assert load_checkpoint(run / "step_10.pt")["step"] == 10  # what --resume does first
    assert sorted(p.name for p in run.iterdir()) == sorted(["step_10.pt", live.name])
