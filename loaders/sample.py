"""One person crop and its labels, in the pixel frame of that crop.

A :class:`CropSample` is what a shard stores (decoded) and what every augmentation takes
and returns. All labels live in the coordinates of ``image``:

- ``keypoints2d_px`` (K, 3): x, y in ``image`` pixels (pixel centres at integers), confidence.
- ``keypoints3d_m`` (K, 4): camera frame (x right, y down, z forward), metres, confidence.
- ``cam_intrinsics`` (3, 3): pinhole K mapping camera-frame points to ``image`` pixels.
- ``crop_to_image`` (2, 3): affine from ``image`` pixels to the original image's pixels.
- SMPL: axis-angle, ``smpl_global_orient`` in the camera frame; ``smpl_transl`` metres.
- ``box_center_px`` (2,), ``box_side_px``: the person's square box in ``image`` pixels
  (the region a training crop covers before scale augmentation).
- ``aug_rotation`` (3, 3), ``aug_flip``: how the camera frame of these labels relates to the
  stored (un-augmented) crop's: ``x_here = M^aug_flip · aug_rotation · x_stored`` with
  ``M = diag(-1, 1, 1)`` (identity / False for a stored sample). SPIN's fits table needs it to
  store fits in the un-augmented frame.

Keypoints are in the store's convention (the superset) until the final batch stage.

In device-decode mode (``StreamConfig.decode_on = "device"``, :mod:`loaders.device_decode`)
``image`` is None and ``jpeg`` holds the crop's undecoded JPEG bytes: the labels are
transformed as usual, the pixels are decoded and warped on the training device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np


@dataclass
class CropSample:
    image: np.ndarray | None          # (H, W, 3) uint8 RGB; None in device-decode mode
    keypoints2d_px: np.ndarray        # (K, 3) float32
    keypoints3d_m: np.ndarray         # (K, 4) float32
    box_center_px: np.ndarray         # (2,) float64
    box_side_px: float
    crop_to_image: np.ndarray         # (2, 3) float64
    image_hw: np.ndarray              # (2,) int32, original image
    cam_intrinsics: np.ndarray = field(default_factory=lambda: np.zeros((3, 3), np.float64))
    has_intrinsics: bool = False
    smpl_global_orient: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    smpl_body_pose: np.ndarray = field(default_factory=lambda: np.zeros(69, np.float32))
    smpl_betas: np.ndarray = field(default_factory=lambda: np.zeros(10, np.float32))
    smpl_transl: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    has_smpl: bool = False
    has_smpl_transl: bool = False
    gender: int = 0
    key: str = ""
    dataset: str = ""
    meta: dict = field(default_factory=dict)
    aug_rotation: np.ndarray = field(default_factory=lambda: np.eye(3))  # (3, 3) Rz about the optical axis
    aug_flip: bool = False
    jpeg: np.ndarray | None = None    # (N,) uint8 JPEG bytes of ``image`` (device-decode mode only)

    def replace(self, **changes) -> "CropSample":
        return dataclasses.replace(self, **changes)

    @property
    def size(self) -> int:
        return int(self.image.shape[0])
