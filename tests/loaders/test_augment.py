"""Label consistency of every augmentation: transformed 3D + transformed camera = transformed 2D."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hmr.core.keypoints import flip_permutation
from hmr.core import crop as geo
from hmr.core.geometry import project_points
from loaders.augment import (
    AugmentConfig, GeometricDraw, SmplRootModel, draw_geometry, flip_smpl_pose, geometric_affine,
    compose_frame_change, geometric_augment, smpl_flip_permutation, transform_sample,
)
from loaders.occlusion import (
    OCCLUSION_AUGMENTATIONS, OccluderBank, OcclusionConfig, apply_occlusions, coarse_dropout, grid_dropout,
    hard_erasing, photometric_distortion, self_mixing, soft_erasing, synthetic_occlusion,
)
from tests.fixtures.loaders import COCO_DIR, FakeRoot, scene_sample

PERM = flip_permutation("superset")
OUT = 224


def _aa_to_mat(aa):
    return cv2.Rodrigues(np.asarray(aa, dtype=np.float64).reshape(3, 1))[0]


def assert_projection_consistent(s, atol_px=1e-3):
    lab = s.keypoints2d_px[:, 2] > 0
    assert lab.sum() > 0
    proj = project_points(s.keypoints3d_m[lab, :3], s.cam_intrinsics)
    np.testing.assert_allclose(proj, s.keypoints2d_px[lab, :2], atol=atol_px)
    # Both label sets say the same joints are labelled.
    np.testing.assert_array_equal(s.keypoints2d_px[:, 2] > 0, s.keypoints3d_m[:, 3] > 0)


def assert_dots_follow(s):
    """The painted dots moved with the labels: bright pixels at labelled keypoints in view."""
    kp = s.keypoints2d_px
    inside = (kp[:, 2] > 0) & (kp[:, 0] > 3) & (kp[:, 1] > 3) & (kp[:, 0] < s.size - 4) & (kp[:, 1] < s.size - 4)
    assert inside.sum() > 0
    xy = np.round(kp[inside, :2]).astype(int)
    values = s.image[xy[:, 1], xy[:, 0]].mean(1)
    assert np.median(values) > 120, values


DRAWS = {
    "identity": GeometricDraw(False, 0.0, 1.0, (0.0, 0.0), 1.0, 0.0),
    "flip": GeometricDraw(True, 0.0, 1.0, (0.0, 0.0), 1.0, 0.0),
    "rotation": GeometricDraw(False, 37.0, 1.0, (0.0, 0.0), 1.0, 0.0),
    "scale": GeometricDraw(False, 0.0, 1.2, (0.0, 0.0), 1.0, 0.0),
    "translation": GeometricDraw(False, 0.0, 1.0, (0.1, -0.05), 1.0, 0.0),
    "random_crop": GeometricDraw(False, 0.0, 1.0, (0.0, 0.0), 0.6, 0.15),
    "all": GeometricDraw(True, -25.0, 0.8, (0.05, 0.05), 0.6, -0.1),
}


@pytest.mark.parametrize("name", list(DRAWS))
def test_geometric_transform_keeps_projection_and_pixels_consistent(name):
    rng = np.random.default_rng(1)
    root = SmplRootModel.from_body_model(*FakeRoot.arrays(rng))
    for _ in range(5):
        s = scene_sample(rng)
        draw = DRAWS[name]
        out = transform_sample(s, geometric_affine(s, draw, OUT), OUT, draw.flip, PERM, root)
        assert out.image.shape == (OUT, OUT, 3)
        assert_projection_consistent(out)
        assert_dots_follow(out)
        # crop_to_image maps output pixels back to the original labels.
        lab = s.keypoints2d_px[:, 2] > 0
        back = geo.apply_points(out.crop_to_image, out.keypoints2d_px[:, :2])
        orig = s.keypoints2d_px[PERM if draw.flip else np.arange(len(PERM))]
        np.testing.assert_allclose(back[orig[:, 2] > 0], orig[orig[:, 2] > 0, :2], atol=1e-3)
        assert lab.sum() == (out.keypoints2d_px[:, 2] > 0).sum()


def test_random_draws_are_consistent_and_seeded():
    cfg = AugmentConfig(translate_frac=0.1, random_crop_prob=0.5)
    rng = np.random.default_rng(2)
    draws = [draw_geometry(cfg, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    flips = []
    for _ in range(40):
        s = scene_sample(rng)
        out = geometric_augment(s, cfg, rng, OUT, PERM)
        assert_projection_consistent(out)
        flips.append(out.crop_to_image[0, 0] < 0)
    assert 5 < sum(flips) < 35  # flip_prob 0.5 is in effect


def test_flip_permutes_joints_and_mirrors_camera():
    rng = np.random.default_rng(3)
    s = scene_sample(rng)
    draw = DRAWS["flip"]
    out = transform_sample(s, geometric_affine(s, draw, OUT), OUT, True, PERM)
    plain = transform_sample(s, geometric_affine(s, DRAWS["identity"], OUT), OUT, False, PERM)
    # Joint i after the flip is the mirror of joint PERM[i] before it.
    np.testing.assert_allclose(out.keypoints2d_px[:, 0], OUT - 1 - plain.keypoints2d_px[PERM, 0], atol=1e-4)
    np.testing.assert_allclose(out.keypoints3d_m[:, 0], -plain.keypoints3d_m[PERM, 0], atol=1e-6)
    np.testing.assert_allclose(out.cam_intrinsics[0, 2], OUT - 1 - plain.cam_intrinsics[0, 2])
    np.testing.assert_array_equal(out.image, plain.image[:, ::-1])


def _rigid_vertices(root_arrays, orient_aa, betas, transl):
    """A rigid 'body': template + shape blend, rotated about the pelvis, translated. (V, 3)"""
    v_template, shapedirs, j_reg = root_arrays
    v0 = v_template + shapedirs @ betas
    j0 = j_reg[0] @ v0
    return (v0 - j0) @ _aa_to_mat(orient_aa).T + j0 + transl


def test_rotation_moves_smpl_root_and_translation_consistently():
    rng = np.random.default_rng(4)
    arrays = FakeRoot.arrays(rng)
    root = SmplRootModel.from_body_model(*arrays)
    s = scene_sample(rng)
    out = transform_sample(s, geometric_affine(s, DRAWS["rotation"], OUT), OUT, False, PERM, root)
    rz = np.eye(3)
    _, rz[:2, :2], _ = geo.similarity_parts(geometric_affine(s, DRAWS["rotation"], OUT))
    before = _rigid_vertices(arrays, s.smpl_global_orient, s.smpl_betas, s.smpl_transl)
    after = _rigid_vertices(arrays, out.smpl_global_orient, out.smpl_betas, out.smpl_transl)
    np.testing.assert_allclose(after, before @ rz.T, atol=1e-5)
    # ...and the rotated body projects with the new camera where the old one did, moved by A.
    a = geometric_affine(s, DRAWS["rotation"], OUT)
    np.testing.assert_allclose(project_points(after, out.cam_intrinsics),
                               geo.apply_points(a, project_points(before, s.cam_intrinsics)), atol=1e-3)
    assert out.has_smpl_transl


def test_flip_moves_smpl_root_consistently():
    rng = np.random.default_rng(5)
    arrays = FakeRoot.arrays(rng)
    root = SmplRootModel.from_body_model(*arrays)
    s = scene_sample(rng)
    out = transform_sample(s, geometric_affine(s, DRAWS["all"], OUT), OUT, True, PERM, root)
    a = geometric_affine(s, DRAWS["all"], OUT)
    rz = np.eye(3)
    _, rz[:2, :2], _ = geo.similarity_parts(a)
    m = np.diag([-1.0, 1.0, 1.0])
    j0 = root(s.smpl_betas)
    np.testing.assert_allclose(j0 + out.smpl_transl, m @ rz @ (j0 + s.smpl_transl), atol=1e-5)
    np.testing.assert_allclose(_aa_to_mat(out.smpl_global_orient), m @ rz @ _aa_to_mat(s.smpl_global_orient) @ m,
                               atol=1e-5)


def test_rotation_without_root_model_drops_translation():
    s = scene_sample(np.random.default_rng(6))
    out = transform_sample(s, geometric_affine(s, DRAWS["rotation"], OUT), OUT, False, PERM, None)
    assert not out.has_smpl_transl
    same = transform_sample(s, geometric_affine(s, DRAWS["scale"], OUT), OUT, False, PERM, None)
    assert same.has_smpl_transl
    np.testing.assert_allclose(same.smpl_transl, s.smpl_transl, atol=1e-6)


def test_smpl_pose_flip_rule():
    perm = smpl_flip_permutation()
    assert perm[1] == 2 and perm[16] == 17 and perm[0] == 0 and perm[15] == 15
    rng = np.random.default_rng(7)
    orient, pose = rng.normal(size=(4, 3)), rng.normal(size=(4, 69))
    o2, p2 = flip_smpl_pose(orient, pose)
    assert o2.shape == (4, 3) and p2.shape == (4, 69)
    np.testing.assert_allclose(o2, orient * [1, -1, -1])
    full, full2 = np.c_[orient, pose].reshape(4, 24, 3), np.c_[o2, p2].reshape(4, 24, 3)
    np.testing.assert_allclose(full2[:, 1], full[:, 2] * [1, -1, -1])   # L_hip <- mirrored R_hip
    np.testing.assert_allclose(full2[:, 21], full[:, 20] * [1, -1, -1])  # R_wrist <- mirrored L_wrist
    o3, p3 = flip_smpl_pose(o2, p2)  # an involution
    np.testing.assert_allclose(o3, orient)
    np.testing.assert_allclose(p3, pose)
    # Mirroring a rotation: M R(w) M == R(flipped w).
    m = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(_aa_to_mat(o2[0]), m @ _aa_to_mat(orient[0]) @ m, atol=1e-9)


# --------------------------------------------------------------------------------------
# Occlusion-style augmentations: pixels change, labels do not
# --------------------------------------------------------------------------------------
def _bank(rng):
    img = cv2.cvtColor(cv2.imread(str(COCO_DIR / "000000000785.jpg")), cv2.COLOR_BGR2RGB)
    return OccluderBank.from_images([img], rng, per_image=4)


PIXEL_AUGS = {
    "coarse_dropout": lambda im, rng, s, bank: coarse_dropout(im, rng),
    "grid_dropout": lambda im, rng, s, bank: grid_dropout(im, rng),
    "photometric_distortion": lambda im, rng, s, bank: photometric_distortion(im, rng),
    "hard_erasing": lambda im, rng, s, bank: hard_erasing(im, rng, s.box_center_px, s.box_side_px),
    "soft_erasing": lambda im, rng, s, bank: soft_erasing(im, rng),
    "self_mixing": lambda im, rng, s, bank: self_mixing(im, rng),
    "synthetic_occlusion": lambda im, rng, s, bank: synthetic_occlusion(im, rng, bank),
}


@pytest.mark.parametrize("name", list(PIXEL_AUGS))
def test_pixel_augmentations_change_pixels_and_are_seeded(name):
    rng = np.random.default_rng(8)
    s = scene_sample(rng)
    photo = cv2.cvtColor(cv2.imread(str(COCO_DIR / "000000040083.jpg")), cv2.COLOR_BGR2RGB)
    im = cv2.resize(photo, (256, 256))
    bank = _bank(rng)
    outs = [PIXEL_AUGS[name](im.copy(), np.random.default_rng(s_), s, bank) for s_ in (0, 0, 1, 2, 3)]
    assert outs[0].shape == im.shape and outs[0].dtype == np.uint8
    np.testing.assert_array_equal(outs[0], outs[1])
    assert any(not np.array_equal(o, im) for o in outs)


@pytest.mark.parametrize("name", [n for n in OCCLUSION_AUGMENTATIONS if n != "random_crop"])
def test_occlusion_pipeline_keeps_labels(name):
    """apply_occlusions only touches pixels: every label is untouched, projection still holds."""
    rng = np.random.default_rng(9)
    s = scene_sample(rng)
    cfg = OcclusionConfig(**{name: 1.0})
    assert cfg.enabled() == [name]
    changed = 0
    for seed in range(4):
        img = apply_occlusions(s.image, cfg, np.random.default_rng(seed), keypoints2d_px=s.keypoints2d_px,
                               box_center_px=s.box_center_px, box_side_px=s.box_side_px, bank=_bank(rng))
        changed += not np.array_equal(img, s.image)
    assert changed > 0
    assert_projection_consistent(s)


def test_synthetic_occlusion_over_keypoints_lands_near_keypoints():
    rng = np.random.default_rng(10)
    s = scene_sample(rng)
    base = np.zeros((256, 256, 3), np.uint8)
    solid = OccluderBank([np.dstack([np.full((40, 40, 3), 255, np.uint8), np.full((40, 40), 255, np.uint8)])])
    cfg = OcclusionConfig(synthetic_occlusion_kp=1.0)
    img = apply_occlusions(base, cfg, rng, keypoints2d_px=s.keypoints2d_px, box_center_px=s.box_center_px,
                           box_side_px=s.box_side_px, bank=solid)
    ys, xs = np.nonzero(img[..., 0])
    lab = s.keypoints2d_px[s.keypoints2d_px[:, 2] > 0, :2]
    dist = np.linalg.norm(np.c_[xs, ys][:, None] - lab[None], axis=-1).min(1)
    assert len(xs) > 0 and np.median(dist) < 0.5 * s.box_side_px


def test_synthetic_occlusion_needs_occluders():
    from hmr.core.errors import HmrError

    s = scene_sample(np.random.default_rng(11))
    with pytest.raises(HmrError, match="occluder"):
        apply_occlusions(s.image, OcclusionConfig(synthetic_occlusion=1.0), np.random.default_rng(0),
                         keypoints2d_px=s.keypoints2d_px, box_center_px=s.box_center_px,
                         box_side_px=s.box_side_px, bank=None)


def test_occluder_bank_from_files(tmp_path):
    rgba = np.zeros((30, 20, 4), np.uint8)
    rgba[..., 3] = 255
    cv2.imwrite(str(tmp_path / "occ.png"), rgba)
    bank = OccluderBank.from_images([tmp_path / "occ.png", COCO_DIR / "000000000785.jpg"],
                                    np.random.default_rng(0), per_image=3)
    assert len(bank.patches) == 1 + 3
    assert bank.patches[0].shape == (30, 20, 4)
    assert all(p.shape[2] == 4 and p[..., 3].max() == 255 and p[..., 3].min() < 255 for p in bank.patches[1:])
    from hmr.core.errors import HmrError

    with pytest.raises(HmrError, match="occluder"):
        OccluderBank.from_images([tmp_path / "missing.png"], np.random.default_rng(0))


def _frame_change(s, vec):
    """Apply a sample's recorded frame change (stored crop → sample) to camera-frame points."""
    out = vec @ np.asarray(s.aug_rotation).T
    return out * np.array([-1.0, 1.0, 1.0]) if s.aug_flip else out


@pytest.mark.parametrize("flip,rot", [(False, 0.0), (False, 35.0), (True, 0.0), (True, -50.0)])
def test_recorded_frame_change_maps_stored_labels_to_augmented_ones(flip, rot):
    s = scene_sample(np.random.default_rng(3))
    assert np.array_equal(s.aug_rotation, np.eye(3)) and not s.aug_flip
    draw = GeometricDraw(flip, rot, 1.1, (0.0, 0.0), 1.0, 0.0)
    t = transform_sample(s, geometric_affine(s, draw, OUT), OUT, flip, PERM)
    assert t.aug_flip == flip
    # 3D keypoints (camera frame) follow the recorded change (joints re-ordered on a flip).
    moved = _frame_change(t, s.keypoints3d_m[:, :3].astype(np.float64))
    np.testing.assert_allclose(t.keypoints3d_m[:, :3], moved[PERM] if flip else moved, atol=1e-5)
    # The SMPL root orientation follows it too: M^f (Rz R) M^f.
    r = np.asarray(t.aug_rotation) @ _aa_to_mat(s.smpl_global_orient)
    if flip:
        r = np.diag([-1.0, 1, 1]) @ r @ np.diag([-1.0, 1, 1])
    np.testing.assert_allclose(_aa_to_mat(t.smpl_global_orient), r, atol=1e-5)


def test_frame_changes_compose_over_two_augmentations():
    s = scene_sample(np.random.default_rng(4))
    a = GeometricDraw(True, 20.0, 1.0, (0.0, 0.0), 1.0, 0.0)
    t1 = transform_sample(s, geometric_affine(s, a, OUT), OUT, True, PERM)
    b = GeometricDraw(False, -30.0, 1.0, (0.0, 0.0), 1.0, 0.0)
    t2 = transform_sample(t1, geometric_affine(t1, b, OUT), OUT, False, PERM)
    assert t2.aug_flip is True
    moved = _frame_change(t2, s.keypoints3d_m[:, :3].astype(np.float64))
    np.testing.assert_allclose(t2.keypoints3d_m[:, :3], moved[PERM], atol=1e-5)
    rot, flip = compose_frame_change(np.eye(3), False, np.eye(3), True)
    assert flip and np.array_equal(rot, np.eye(3))
