import json
import os

import numpy as np
import pytest
import torch

from hmr.synth.generate import MANIFEST_RELPATH, SynthConfig, generate
from hmr.synth.poses import PoseSampler


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(n=10, split="train", image_size=96, seed=3, workers=1), progress=False)
    generate(root, SynthConfig(n=6, split="test", image_size=96, seed=3, workers=1, tail=0), progress=False)
    return root


def _load(root, split):
    return json.loads((root / "annotations" / f"{split}.json").read_text())


def test_layout_and_counts(synth_root):
    data = _load(synth_root, "train")
    assert len(data["images"]) == len(data["annotations"]) == 10
    for im in data["images"]:
        assert (synth_root / im["file_name"]).is_file()
    assert (synth_root / MANIFEST_RELPATH).is_file()
    assert len(_load(synth_root, "test")["images"]) == 6


def test_rendered_silhouette_matches_projected_mesh(synth_root):
    """Re-render sample 0's mesh from its annotation: every projected vertex falls inside the
    silhouette, and the silhouette is no bigger than the projected mesh's extent."""
    from hmr.core.body import load_body_model
    from hmr.core.render import render_mesh

    data = _load(synth_root, "train")
    ann, im = data["annotations"][0], data["images"][0]
    model = load_body_model()
    smpl = {k: torch.tensor([v], dtype=torch.float32) for k, v in ann["smpl"].items()}
    with torch.no_grad():
        out = model(global_orient=smpl["global_orient"], body_pose=smpl["body_pose"],
                    betas=smpl["betas"], transl=smpl["transl"])
    verts = out.vertices[0].double().numpy()
    # At 4x the image's resolution, so that fingers are wider than a pixel.
    K = np.diag([4.0, 4.0, 1.0]) @ np.array(im["K"])
    K[:2, 2] += 1.5
    size = 96 * 4
    _, coverage, _ = render_mesh(verts, np.asarray(model.faces), K, size, size, supersample=1)
    import cv2

    mask = cv2.dilate((coverage > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    uv = verts @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    px = np.round(uv).astype(int)
    ok = (px >= 0).all(1) & (px < size).all(1)
    inside = mask[px[ok, 1], px[ok, 0]]
    assert ok.mean() > 0.99 and inside.mean() > 0.995
    # the stored 3D joints are this body's joints
    np.testing.assert_allclose(out.joints_smpl24[0].numpy(), np.array(ann["joints3d_smpl24"]), atol=1e-4)
    ys, xs = np.nonzero(mask)
    assert xs.min() >= np.floor(uv[ok, 0].min()) - 2 and xs.max() <= np.ceil(uv[ok, 0].max()) + 2
    assert ys.min() >= np.floor(uv[ok, 1].min()) - 2 and ys.max() <= np.ceil(uv[ok, 1].max()) + 2


def test_keypoints_land_on_the_rendered_body(synth_root):
    import cv2

    data = _load(synth_root, "train")
    hits = total = 0
    for im, ann in zip(data["images"], data["annotations"]):
        img = cv2.imread(str(synth_root / im["file_name"]))
        x, y, w, h = ann["bbox"]
        kp = np.array(ann["joints2d_smpl24"])
        vis = kp[:, 2] > 0
        total += vis.sum()
        # every visible joint lies inside the silhouette's box (one pixel of slack)
        hits += ((kp[vis, 0] >= x - 1) & (kp[vis, 0] <= x + w + 1) &
                 (kp[vis, 1] >= y - 1) & (kp[vis, 1] <= y + h + 1)).sum()
        assert img is not None and img.shape == (96, 96, 3)
    assert hits / total > 0.98


def test_generation_is_deterministic(tmp_path, synth_root):
    generate(tmp_path, SynthConfig(n=10, split="train", image_size=96, seed=3, workers=1), progress=False)
    a, b = _load(tmp_path, "train"), _load(synth_root, "train")
    assert a["annotations"] == b["annotations"]
    assert (tmp_path / "images/train/000004.jpg").read_bytes() == (synth_root / "images/train/000004.jpg").read_bytes()


def test_rerun_after_a_killed_run_removes_its_partial_files(tmp_path, synth_root):
    images = tmp_path / "images" / "train"
    images.mkdir(parents=True)
    (images / "000003.jpg.partial-4242").write_bytes(b"half an image")  # killed mid-write
    (images / "000004.jpg").write_bytes(b"stale")  # finished by a run with other settings
    generate(tmp_path, SynthConfig(n=10, split="train", image_size=96, seed=3, workers=1), progress=False)
    assert sorted(p.name for p in images.iterdir()) == [f"{i:06d}.jpg" for i in range(10)]
    assert (images / "000004.jpg").read_bytes() == (synth_root / "images/train/000004.jpg").read_bytes()


def test_supersample_changes_the_pixels_not_the_labels(tmp_path, synth_root):
    import cv2

    generate(tmp_path, SynthConfig(n=10, split="train", image_size=96, seed=3, workers=1, supersample=1),
             progress=False)
    for a, b in zip(_load(tmp_path, "train")["annotations"], _load(synth_root, "train")["annotations"]):
        assert a["smpl"] == b["smpl"] and a["joints2d_smpl24"] == b["joints2d_smpl24"]
        assert np.abs(np.subtract(a["bbox"], b["bbox"])).max() <= 2  # silhouette box, ±2 px
    aliased = cv2.imread(str(tmp_path / "images/train/000004.jpg")).astype(float)
    smooth = cv2.imread(str(synth_root / "images/train/000004.jpg")).astype(float)
    diff = np.abs(aliased - smooth).max(axis=2)  # (H, W)
    assert diff.max() > 40  # edges differ: one sample per pixel against four
    assert (diff > 40).mean() < 0.1  # ... but the same picture


def test_pose_rarity_is_long_tailed():
    rng = np.random.default_rng(0)
    tailed = PoseSampler(tail=5.0).rarity(rng, 20000)
    uniform = PoseSampler(tail=0.0).rarity(rng, 20000)
    assert 0 <= tailed.min() and tailed.max() <= 1
    assert np.median(tailed) < 0.15 and (tailed > 0.7).mean() < 0.05
    assert abs(np.median(uniform) - 0.5) < 0.02
    poses = PoseSampler(tail=5.0).sample(rng, 500)
    far = np.linalg.norm(poses["body_pose"], axis=1)
    # rare poses are far from the standing pose
    assert np.corrcoef(poses["rarity"], far)[0, 1] > 0.5


def test_verify_detects_and_names_a_changed_image(synth_root, tmp_path):
    import shutil

    from manifests import verify_source

    copy = tmp_path / "copy"
    shutil.copytree(synth_root, copy)
    manifest = copy / MANIFEST_RELPATH
    assert verify_source(str(manifest), copy, progress=False).ok
    target = copy / "images/train/000002.jpg"
    data = bytearray(target.read_bytes())
    data[100] ^= 0xFF
    target.write_bytes(bytes(data))
    report = verify_source(str(manifest), copy, progress=False)
    assert not report.ok
    assert [(c.label, c.detail) for c in report.failures()] == [
        ("images/train [*.jpg]", "1 file(s) differ from the locked copy: 000002.jpg (changed)")]


def test_small_sets_render_in_this_process_large_ones_on_every_core():
    from hmr.synth.generate import RENDERS_PER_WORKER, default_workers

    assert default_workers(200) == 1 and default_workers(RENDERS_PER_WORKER - 1) == 1
    assert default_workers(10**7) == (os.cpu_count() or 1)


def test_hair_covers_the_back_and_crown_of_the_head_not_the_face():
    """Hair is what tells a body facing the camera from one facing away (left and right limbs
    share their colours): it sits on head vertices only, behind the head's middle or on top,
    and never on the face (the frontmost head vertices)."""
    from hmr.core.body import load_body_model
    from hmr.synth.generate import hair_weights, rest_template, skinning_weights, vertex_colors

    model = load_body_model(None, gender="neutral")
    template, weights = rest_template(model), skinning_weights(model)
    hair = hair_weights(template, weights)
    head = weights[:, 15] > 0.5
    assert hair.min() >= 0 and hair.max() <= 1
    assert hair[weights[:, 15] == 0].max() == 0  # nowhere off the head
    haired = hair > 0.5
    assert 0.3 < haired.sum() / head.sum() < 0.8
    z = template[:, 2]
    face = head & (z > np.quantile(z[head], 0.9))
    assert hair[face].max() == 0
    back = head & (z < np.quantile(z[head], 0.1)) & (template[:, 1] > np.median(template[head, 1]))
    assert hair[back].min() > 0.9
    # the hair colour replaces the part colour where the weight is 1 and nowhere else
    plain = vertex_colors(weights, np.random.default_rng(0))
    with_hair = vertex_colors(weights, np.random.default_rng(0), hair)
    assert np.array_equal(plain[hair == 0], with_hair[hair == 0])
    assert np.abs(plain[hair == 1] - with_hair[hair == 1]).max() > 0.05
