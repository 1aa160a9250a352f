import json

import numpy as np
import pytest
import torch

from converters import synth as synth_converter
from converters.driver import run_conversion
from converters.options import ConvertOptions
from converters.synth import JsonArrayStream
from hmr.core.errors import DatasetFormatError
from hmr.core.keypoints import get_convention
from hmr.core.schema import open_store
from hmr.synth.generate import SynthConfig, generate


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_raw")
    generate(root, SynthConfig(n=8, split="train", image_size=64, seed=1, workers=1), progress=False)
    return root


def test_convert_synth_values(raw, tmp_path):
    from hmr.core.body import load_body_model

    result = run_conversion("synth", raw, tmp_path, split="train", progress=False)
    store = open_store(result.store)
    assert len(store) == 8 and store.attrs["dataset"] == "synth"
    sup = get_convention("superset")
    kp2, kp3 = store.read("keypoints2d"), store.read("keypoints3d")
    K = store.read("cam_intrinsics")
    # 3D joints projected with the sample's camera land on its 2D keypoints
    both = (kp2[..., 2] > 0) & (kp3[..., 3] > 0)
    uvw = np.einsum("nij,nkj->nki", K, kp3[..., :3])
    with np.errstate(divide="ignore", invalid="ignore"):  # unlabelled joints are all zeros
        uv = uvw[..., :2] / uvw[..., 2:]
    err = np.linalg.norm(uv - kp2[..., :2], axis=-1)[both]
    assert both.sum() > 8 * 30 and err.max() < 0.01
    # SMPL in the store reproduces the stored joints through the body model
    model = load_body_model()
    cols = store.columns(fields=["smpl_global_orient", "smpl_body_pose", "smpl_betas", "smpl_transl"])
    with torch.no_grad():
        out = model(global_orient=torch.from_numpy(cols["smpl_global_orient"]),
                    body_pose=torch.from_numpy(cols["smpl_body_pose"]),
                    betas=torch.from_numpy(cols["smpl_betas"]), transl=torch.from_numpy(cols["smpl_transl"]))
    smpl_rows = sup.indices(list(get_convention("smpl").joint_names))
    np.testing.assert_allclose(kp3[:, smpl_rows, :3], out.joints_smpl24.numpy(), atol=1e-4)
    assert store.read("extra_pose_rarity").shape == (8,)
    assert (result.store.parent / (result.store.name + ".manifest.json")).is_file()


def test_missing_image_is_reported_and_skippable(raw, tmp_path):
    import shutil

    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    (copy / "images/train/000005.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"train\.json, record 5: image file .*000005\.jpg does not exist"):
        run_conversion("synth", copy, tmp_path / "out", split="train", progress=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    result = run_conversion("synth", copy, tmp_path / "out", split="train", skip_bad=True, progress=False)
    assert result.num_samples == 7
    skipped = json.loads(result.skipped_report.read_text())
    assert skipped[0]["record"] == 5


def test_truncated_annotation_names_the_file(raw, tmp_path):
    import shutil

    copy = tmp_path / "raw"
    shutil.copytree(raw, copy)
    ann = copy / "annotations/train.json"
    ann.write_bytes(ann.read_bytes()[:500])
    with pytest.raises(DatasetFormatError, match="train.json: invalid or truncated JSON"):
        run_conversion("synth", copy, tmp_path / "out", split="train", progress=False)


# -- the annotation file is streamed ---------------------------------------------------------

DOC = {"info": {"note": "ünïcode \"quoted\" \\ and \u2603", "n": [1, 2.5e-3, None, True]},
       "annotations": [{"id": i, "v": -1234567.125 * i, "s": "x" * (i * 7), "nested": {"a": [[i, false]]}}
                       for i, false in zip(range(40), [False] * 40)],
       "images": [], "tail": 123456789}


@pytest.mark.parametrize("indent", [None, 1, "\t"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_streamed_arrays_equal_json_load(tmp_path, indent, chunk):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(DOC, indent=indent, ensure_ascii=indent is None), encoding="utf-8")
    for key in ("annotations", "images", "missing", "tail"):  # a non-array value yields nothing
        want = DOC.get(key) if isinstance(DOC.get(key), list) else []
        assert list(JsonArrayStream(path, key, chunk_chars=chunk)) == want


@pytest.mark.parametrize("text", ['{"annotations": [{"id": 1}, {"id": 2', '{"annotations": [1 2]}',
                                  '[1, 2]', '', '{"annotations": [1,]}'])
def test_broken_annotation_files_name_the_file(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match="bad.json"):
        list(JsonArrayStream(path, "annotations", chunk_chars=8))


def test_old_files_in_any_order_convert_the_same(raw, tmp_path):
    """The file the generator wrote, rewritten with images reversed, annotations first and two
    annotations of one image far apart, converts to the same rows (a record is its annotation)."""
    data = json.loads((raw / "annotations/train.json").read_text())
    direct = list(synth_converter.iter_samples(raw, "train", ConvertOptions()))
    copy = tmp_path / "raw"
    (copy / "annotations").mkdir(parents=True)
    (copy / "images").symlink_to(raw / "images")
    anns = data["annotations"] + [dict(data["annotations"][0], id=99)]  # image 0 again, last
    (copy / "annotations/train.json").write_text(json.dumps(
        {"annotations": anns, "info": data["info"], "images": data["images"][::-1]}, indent=2))
    moved = list(synth_converter.iter_samples(copy, "train", ConvertOptions()))
    assert len(moved) == len(direct) + 1
    for a, b in zip(direct, moved):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)
    assert moved[-1]["image_path"] == direct[0]["image_path"]


def test_an_annotation_without_its_image_is_a_bad_record(raw, tmp_path):
    data = json.loads((raw / "annotations/train.json").read_text())
    data["images"] = data["images"][1:]
    copy = tmp_path / "raw"
    (copy / "annotations").mkdir(parents=True)
    (copy / "images").symlink_to(raw / "images")
    (copy / "annotations/train.json").write_text(json.dumps(data))
    out = list(synth_converter.iter_samples(copy, "train", ConvertOptions()))
    bad = [r for r in out if not isinstance(r, dict)]
    assert len(out) == 8 and len(bad) == 1 and "image_id 0 not in images" in bad[0].message


def test_the_generator_writes_the_text_of_one_json_dump(raw):
    """The annotation file, written in pieces, is byte for byte json.dumps of the whole document
    (the layout files had when the generator held every annotation in a list)."""
    text = (raw / "annotations/train.json").read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data)
    assert [a["id"] for a in data["annotations"]] == [im["id"] for im in data["images"]] == list(range(8))
    assert not [p.name for p in (raw / "annotations").iterdir() if p.name != "train.json"]  # no scratch left
