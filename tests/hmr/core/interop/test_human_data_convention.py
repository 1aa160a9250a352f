"""MMHuman3D's 190-joint human_data layout mapped by name to the superset."""

from __future__ import annotations

import numpy as np
import pytest

from hmr.core.errors import ConventionError
from hmr.core.keypoints import get_convention
from hmr.core.keypoints.human_data import (
    HUMAN_DATA_INDEX, HUMAN_DATA_JOINTS, human_data_pairs, human_data_to_superset,
    superset_to_human_data,
)

SUP = get_convention("superset")


def _one(name: str, value=(10.0, 20.0, 1.0)) -> np.ndarray:
    kps = np.zeros((1, 190, 3), np.float32)
    kps[0, HUMAN_DATA_INDEX[name]] = value
    return kps


@pytest.mark.parametrize("hd_name, slot", [
    ("left_hip_extra", "left_hip"), ("right_hip_extra", "right_hip"), ("pelvis_extra", "pelvis"),
    ("neck_extra", "neck"), ("headtop", "head_top"), ("thorax_extra", "thorax"),
    ("spine_extra", "spine_h36m"), ("jaw_extra", "jaw_h36m"), ("head_extra", "head_h36m"),
    ("pelvis", "smpl_pelvis"), ("left_hip", "smpl_left_hip"), ("spine_3", "smpl_spine_3"),
    ("head", "smpl_head"), ("left_hand", "smpl_left_hand"), ("left_knee", "left_knee"),
    ("right_wrist", "right_wrist"), ("nose", "nose"), ("pelvis_openpose", "mid_hip_openpose"),
    ("left_bigtoe_openpose", "left_big_toe_openpose"), ("left_bigtoe", "left_big_toe"),
    ("right_thumb", "right_thumb_4"), ("left_index_2", "smplx_left_index_2"),
    ("jaw", "smplx_jaw"), ("nosebridge_3", "nose_bridge_3"), ("left_contour_2", "left_contour_2"),
    ("right_clavicle_3dhp", "mpi3dhp_right_clavicle"), ("spine_4_3dhp", "mpi3dhp_spine_4"),
])
def test_named_rows_land_in_their_superset_slot(hd_name, slot):
    out = human_data_to_superset(_one(hd_name))
    assert np.flatnonzero(out[0, :, 2]).tolist() == [SUP.index(slot)]
    np.testing.assert_array_equal(out[0, SUP.index(slot)], [10, 20, 1])


def test_table_is_mmhuman3d_order_and_every_row_has_a_destination():
    assert len(HUMAN_DATA_JOINTS) == 190 == len(set(HUMAN_DATA_JOINTS))
    assert HUMAN_DATA_JOINTS[:3] == ("pelvis", "left_hip", "right_hip")
    assert HUMAN_DATA_JOINTS[-5:] == ("head_h36m", "headtop_h36m", "head_bottom_pt", "left_hand",
                                      "right_hand")
    (p_src, p_dst), (f_src, _) = human_data_pairs()
    assert sorted([*p_src, *f_src]) == list(range(190))
    assert len(set(p_dst.tolist())) == len(p_dst)  # primaries are one-to-one


def test_fallback_rows_fill_only_unlabelled_slots():
    only_fallback = human_data_to_superset(_one("head_bottom_pt", (1, 2, 1)))
    np.testing.assert_array_equal(only_fallback[0, SUP.index("neck")], [1, 2, 1])
    both = _one("neck_extra", (5, 6, 1))
    both[0, HUMAN_DATA_INDEX["head_bottom_pt"]] = (1, 2, 1)
    np.testing.assert_array_equal(human_data_to_superset(both)[0, SUP.index("neck")], [5, 6, 1])


def test_mask_zeroes_rows_the_file_marks_absent():
    kps = _one("left_knee")
    mask = np.ones(190, np.uint8)
    mask[HUMAN_DATA_INDEX["left_knee"]] = 0
    assert not human_data_to_superset(kps, mask).any()


def test_limb_mode_and_dataset_config_change_meaning():
    smpl_mode = human_data_to_superset(_one("left_knee"), limbs="smpl")
    assert smpl_mode[0, SUP.index("smpl_left_knee"), 2] == 1 and smpl_mode[0, SUP.index("left_knee"), 2] == 0
    dhp = human_data_to_superset(_one("spine_3"), config="mpi_inf_3dhp")
    assert dhp[0, SUP.index("mpi3dhp_spine_3"), 2] == 1 and dhp[0, SUP.index("smpl_spine_3"), 2] == 0
    # MMHuman3D's Penn Action rows carry the README's mirrored names: its left hip row is the
    # person's right hip (and its left wrist row the right wrist).
    penn = human_data_to_superset(_one("left_hip"), config="penn_action")
    assert penn[0, SUP.index("right_hip"), 2] == 1 and penn[0, SUP.index("left_hip"), 2] == 0
    penn = human_data_to_superset(_one("right_wrist"), config="penn_action", limbs="smpl")
    assert penn[0, SUP.index("left_wrist"), 2] == 1
    with pytest.raises(ConventionError):
        human_data_to_superset(_one("left_hip"), limbs="nonsense")
    with pytest.raises(ConventionError, match="190"):
        human_data_to_superset(np.zeros((1, 49, 3)))


def test_export_round_trip_keeps_every_mapped_slot():
    rng = np.random.default_rng(0)
    sup = np.zeros((3, SUP.num_joints, 3), np.float32)
    sup[..., :2] = rng.uniform(0, 500, (3, SUP.num_joints, 2))
    sup[..., 2] = 1.0
    hd, mask = superset_to_human_data(sup)
    back = human_data_to_superset(hd, mask)
    kept = back[0, :, 2] > 0
    np.testing.assert_array_equal(back[:, kept], sup[:, kept])
    # annotated, OpenPose, face and SMPL-only slots survive; SMPL's kinematic knee does not
    for name in ("left_hip", "head_top", "neck", "mid_hip_openpose", "mouth_top", "smpl_spine_2"):
        assert kept[SUP.index(name)], name
    assert not kept[SUP.index("smpl_left_knee")]
    assert mask.dtype == np.uint8 and mask[HUMAN_DATA_INDEX["left_hip_extra"]] == 1
