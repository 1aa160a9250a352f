"""Person boxes (hmr.core.boxes): one definition each, shared by converters and interop."""

from __future__ import annotations

import numpy as np

from hmr.core.boxes import bbox_from_center_scale, bbox_from_keypoints, bbox_from_mask


def test_box_from_keypoints_uses_labelled_joints_only():
    kps = np.array([[10, 20, 1], [30, 60, 1], [500, 500, 0]], dtype=np.float64)
    np.testing.assert_allclose(bbox_from_keypoints(kps), [8, 16, 24, 48])  # x1.2 about (20, 40)
    assert bbox_from_keypoints(kps[[0, 2]]) is None  # one labelled joint: no box
    assert bbox_from_keypoints(kps, scale=1.0).dtype == np.float32


def test_center_scale_box_single_and_batched_agree():
    centers, scales = np.array([[100.0, 50.0], [10.0, 20.0]]), np.array([1.0, 0.25])
    batch = bbox_from_center_scale(centers, scales)
    assert batch.shape == (2, 4) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0], [0, -50, 200, 200])
    for i in range(2):
        np.testing.assert_array_equal(bbox_from_center_scale(centers[i], float(scales[i])), batch[i])


def test_box_from_mask():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    np.testing.assert_array_equal(bbox_from_mask(mask), [3, 2, 6, 3])
    assert bbox_from_mask(np.zeros((4, 4))) is None
