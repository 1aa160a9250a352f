"""The superset: fixed order, stable digest, aliases and mirror names."""

from __future__ import annotations

import pytest

from hmr.core.keypoints import (
    JOINT_ALIASES, SUPERSET_JOINTS, SUPERSET_NAME, SUPERSET_VERSION, get_convention,
    superset_digest,
)
from hmr.core.keypoints.superset import (
    SPIN_JOINT_NAMES, SUPERSET_FAMILIES, mirror_name, resolve_superset_name,
)

# Pinned: changing the superset's order or names must be a deliberate, versioned act.
SUPERSET_V1_DIGEST = "5d39bc4508e01a5fe0a102ec379d5e3ce64dfc349b4937afc90d9b3fcc945ad6"


def test_superset_digest_is_pinned_for_version_1():
    assert SUPERSET_VERSION == 1
    assert superset_digest() == SUPERSET_V1_DIGEST
    assert len(SUPERSET_JOINTS) == 248


def test_superset_is_registered_under_its_name():
    conv = get_convention(SUPERSET_NAME)
    assert conv.name == "superset"
    assert conv.joint_names == SUPERSET_JOINTS


def test_superset_names_are_unique_snake_case():
    assert len(set(SUPERSET_JOINTS)) == len(SUPERSET_JOINTS)
    for name in SUPERSET_JOINTS:
        assert name == name.lower() and " " not in name and "__" not in name, name


def test_superset_starts_with_spin_j24_then_openpose25():
    assert SUPERSET_JOINTS[:3] == ("right_ankle", "right_knee", "right_hip")
    assert SUPERSET_JOINTS[12:14] == ("neck", "head_top")
    assert SUPERSET_JOINTS[24] == "nose_openpose"
    assert SUPERSET_JOINTS[24 + 8] == "mid_hip_openpose"
    assert list(SUPERSET_FAMILIES)[:2] == ["annotated", "openpose"]


@pytest.mark.parametrize("alias,target", sorted(JOINT_ALIASES.items()))
def test_every_alias_resolves_to_a_superset_slot(alias, target):
    assert target in SUPERSET_JOINTS
    assert alias not in SUPERSET_JOINTS, "an alias must not shadow a superset name"
    assert resolve_superset_name(alias) == target


def test_spin_names_resolve_to_openpose_then_annotated_family():
    resolved = [resolve_superset_name(n) for n in SPIN_JOINT_NAMES]
    assert resolved[0] == "nose_openpose" and resolved[8] == "mid_hip_openpose"
    assert resolved[25:] == list(SUPERSET_JOINTS[:24])
    assert resolve_superset_name("Top of Head (LSP)") == "head_top"
    assert resolve_superset_name("Thorax (MPII)") == "thorax"


def test_close_points_keep_separate_slots():
    # merely close, not the same landmark definition: each needs its own slot
    for a, b in [("neck", "thorax"), ("neck", "neck_openpose"), ("pelvis", "mid_hip_openpose"),
                 ("left_wrist", "left_hand_root"), ("head_top", "head_h36m"),
                 ("left_hip", "smpl_left_hip"), ("nose", "nose_bridge_4"),
                 ("left_big_toe", "left_big_toe_openpose")]:
        assert SUPERSET_JOINTS.index(a) != SUPERSET_JOINTS.index(b)


@pytest.mark.parametrize("name,mirror", [
    ("left_wrist", "right_wrist"), ("right_contour_3", "left_contour_3"),
    ("contour_middle", "contour_middle"), ("left_eye_4", "right_eye_4"),
    ("smplx_left_index_2", "smplx_right_index_2"), ("mid_hip_openpose", "mid_hip_openpose"),
    ("h36m_left_wrist_end_site", "h36m_right_wrist_end_site"),
])
def test_mirror_name_swaps_whole_side_tokens(name, mirror):
    assert mirror_name(name) == mirror
    assert mirror_name(mirror) == name
