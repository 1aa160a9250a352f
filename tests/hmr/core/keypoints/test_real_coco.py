"""The COCO convention against a real COCO annotation file and image (shared fixtures)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from hmr.core.keypoints import convert_keypoints, flip_keypoints2d, get_convention
from tests.fixtures.paths import MMPOSE_SAMPLES

COCO_DIR = MMPOSE_SAMPLES / "coco"


@pytest.fixture(scope="module")
def coco_json() -> dict:
    return json.loads((COCO_DIR / "test_coco.json").read_text())


def test_coco_names_and_skeleton_match_the_official_category(coco_json):
    category = coco_json["categories"][0]
    coco = get_convention("coco")
    assert coco.native_names == tuple(category["keypoints"])
    names = category["keypoints"]
    official = {frozenset((names[a - 1], names[b - 1])) for a, b in category["skeleton"]}
    assert {frozenset(e) for e in coco.skeleton} == official


def test_flipped_keypoints_hit_the_same_pixels_of_the_flipped_image(coco_json):
    ann = next(a for a in coco_json["annotations"] if sum(a["keypoints"][2::3]) > 0)
    image = next(i for i in coco_json["images"] if i["id"] == ann["image_id"])
    img = cv2.imread(str(COCO_DIR / image["file_name"]))
    assert img is not None and img.shape[1] == image["width"]
    kps = np.asarray(ann["keypoints"], dtype=np.float32).reshape(17, 3)  # x_px, y_px, v
    flipped = flip_keypoints2d(kps, "coco", image["width"])
    flipped_img = cv2.flip(img, 1)
    perm = get_convention("coco").flip_index
    for k in np.flatnonzero(kps[:, 2] > 0):
        x, y = int(kps[k, 0]), int(kps[k, 1])
        fx, fy = int(flipped[perm[k], 0]), int(flipped[perm[k], 1])
        np.testing.assert_array_equal(flipped_img[fy, fx], img[y, x])
    # and the round trip through the superset keeps the real annotation bit-exact
    sup, _ = convert_keypoints(kps[None], "coco", "superset")
    back, _ = convert_keypoints(sup, "superset", "coco")
    np.testing.assert_array_equal(back[0], kps)
