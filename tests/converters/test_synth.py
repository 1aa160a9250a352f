import json

import numpy as np
import pytest
import torch

from converters.driver import run_conversion
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
