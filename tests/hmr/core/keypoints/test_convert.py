"""Conversion by name (numpy and torch), round trips, and flipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmr.core.errors import ConventionError
from hmr.core.keypoints import (
    convert_keypoints, flip_keypoints2d, flip_keypoints3d, flip_permutation, get_convention,
    list_conventions, mapping_indices,
)
from tests.fixtures.keypoints import random_keypoints

ALL = list_conventions()


@pytest.mark.parametrize("name", ALL)
def test_native_superset_native_round_trip_is_lossless(name):
    conv = get_convention(name)
    for channels in (3, 4):
        kps = random_keypoints(conv.num_joints, channels, batch=(3, 2), seed=conv.num_joints)
        sup, mask = convert_keypoints(kps, name, "superset")
        assert sup.shape == (3, 2, get_convention("superset").num_joints, channels)
        assert mask.dtype == bool and mask.sum() == conv.num_joints
        assert not sup[..., ~mask, :].any(), "slots the source lacks must stay zero"
        back, back_mask = convert_keypoints(sup, "superset", name)
        assert back_mask.all()
        np.testing.assert_array_equal(back, kps)  # values and confidences, bit-exact


def test_missing_joints_get_zero_confidence_and_mask_false():
    kps = random_keypoints(17, 3, batch=(5,), seed=1)
    kps[..., 2] = 1.0
    out, mask = convert_keypoints(kps, "coco", "lsp")
    lsp = get_convention("lsp")
    assert not mask[lsp.index("neck")] and not mask[lsp.index("head_top")]
    assert (out[:, lsp.index("neck")] == 0).all()
    np.testing.assert_array_equal(out[:, lsp.index("left_wrist")], kps[:, 9])
    assert mask.sum() == 12


def test_conversion_through_superset_equals_direct_conversion():
    kps = random_keypoints(17, 3, batch=(6,), seed=2)
    direct, direct_mask = convert_keypoints(kps, "h36m", "mpi_inf_3dhp_test")
    sup, _ = convert_keypoints(kps, "h36m", "superset")
    via, via_mask = convert_keypoints(sup, "superset", "mpi_inf_3dhp_test")
    np.testing.assert_array_equal(direct, via)
    np.testing.assert_array_equal(direct_mask, via_mask)
    assert direct_mask.all()  # the two 17-joint mocap layouts hold the same joints


def test_mapping_indices_are_int64_and_consistent():
    src_idx, dst_idx = mapping_indices("coco", "superset")
    assert src_idx.dtype == dst_idx.dtype == np.int64
    assert src_idx.tolist() == list(range(17))
    names = get_convention("superset").joint_names
    assert [names[i] for i in dst_idx] == list(get_convention("coco").joint_names)
    with pytest.raises(ValueError):
        src_idx[0] = 5  # cached arrays are read-only


@pytest.mark.parametrize("src,dst", [("coco_wholebody", "superset"), ("superset", "spin_49"),
                                     ("spin_49", "smplx"), ("h36m_32", "h36m")])
def test_torch_matches_numpy(src, dst):
    k = get_convention(src).num_joints
    kps = random_keypoints(k, 3, batch=(2, 3), seed=3)
    out_np, mask_np = convert_keypoints(kps, src, dst)
    out_t, mask_t = convert_keypoints(torch.from_numpy(kps).double(), src, dst)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float64
    assert mask_t.dtype == torch.bool
    np.testing.assert_array_equal(out_t.numpy(), out_np.astype(np.float64))
    np.testing.assert_array_equal(mask_t.numpy(), mask_np)


def test_torch_conversion_keeps_gradients():
    kps = torch.rand(2, 49, 3, requires_grad=True)
    out, _ = convert_keypoints(kps, "spin_49", "superset")
    out.sum().backward()
    assert torch.equal(kps.grad, torch.ones_like(kps))


def test_wrong_joint_count_is_a_convention_error():
    with pytest.raises(ConventionError, match=r"needs \(\.\.\., 17, C\)"):
        convert_keypoints(np.zeros((2, 18, 3)), "coco", "superset")


def test_flip2d_formula_and_permutation():
    width = 100
    kps = np.zeros((17, 3), dtype=np.float32)
    coco = get_convention("coco")
    lw, rw = coco.index("left_wrist"), coco.index("right_wrist")
    kps[lw] = (10.0, 20.0, 0.9)
    kps[rw] = (0.0, 30.0, 0.5)
    kps[coco.index("nose")] = (49.5, 5.0, 1.0)
    out = flip_keypoints2d(kps, "coco", width)
    # the subject's left wrist at x=10 becomes the right wrist at x = W - 1 - 10
    np.testing.assert_allclose(out[rw], (89.0, 20.0, 0.9))
    np.testing.assert_allclose(out[lw], (99.0, 30.0, 0.5))
    np.testing.assert_allclose(out[coco.index("nose")], (49.5, 5.0, 1.0))  # centre is fixed
    assert not out[coco.index("left_ankle")].any(), "absent joints stay all-zero"


def test_flip2d_matches_flipping_the_image_pixels():
    img = np.zeros((8, 13), dtype=np.uint8)
    kps = np.array([[[3.0, 2.0, 1.0]] * 17], dtype=np.float32)  # (1, 17, 3)
    img[2, 3] = 255
    flipped_img = img[:, ::-1]
    out = flip_keypoints2d(kps, "coco", img.shape[1])
    x, y = int(out[0, 0, 0]), int(out[0, 0, 1])
    assert flipped_img[y, x] == 255


@pytest.mark.parametrize("name", ["coco_wholebody", "spin_49", "smplx", "superset"])
def test_flip_twice_is_identity_numpy_and_torch(name):
    k = get_convention(name).num_joints
    kps = random_keypoints(k, 3, batch=(4,), seed=4, width_px=256.0)
    twice = flip_keypoints2d(flip_keypoints2d(kps, name, 256), name, 256)
    np.testing.assert_allclose(twice, kps, atol=1e-4)
    t = torch.from_numpy(kps)
    np.testing.assert_allclose(flip_keypoints2d(t, name, 256).numpy(),
                               flip_keypoints2d(kps, name, 256), atol=1e-5)


def test_flip2d_without_confidence_and_flip3d():
    kps2 = np.array([[1.0, 2.0]] * 14)
    out2 = flip_keypoints2d(kps2, "lsp", 10)
    assert (out2[:, 0] == 8.0).all()
    kps3 = random_keypoints(24, 4, batch=(2,), seed=5)
    out3 = flip_keypoints3d(kps3, "smpl")
    perm = flip_permutation("smpl")
    np.testing.assert_array_equal(out3[..., 0], -kps3[..., perm, 0])
    np.testing.assert_array_equal(out3[..., 1:], kps3[..., perm, 1:])
    with pytest.raises(ConventionError, match="2 or 3 channels"):
        flip_keypoints2d(np.zeros((14, 4)), "lsp", 10)
