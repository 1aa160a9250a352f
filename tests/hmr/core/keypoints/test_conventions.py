"""Every convention: names, flips, skeletons, lookups, and publisher index lists."""

from __future__ import annotations

import numpy as np
import pytest

from hmr.core.errors import ConventionError
from hmr.core.keypoints import (
    SUPERSET_JOINTS, flip_permutation, get_convention, list_conventions, mapping_indices,
)
from hmr.core.keypoints.convention import _build
from hmr.core.keypoints.superset import expand_sides, mirror_name, normalise_joint_name
from hmr.core.keypoints.tables import CONVENTION_ALIASES, ConventionSpec

ALL = list_conventions()


def test_registry_holds_every_required_format():
    required = {"superset", "coco", "coco_wholebody", "openpose_25", "openpose_18", "mpii",
                "lsp", "lsp14", "crowdpose", "aic", "posetrack", "penn_action", "h36m",
                "h36m_32", "mpi_inf_3dhp", "mpi_inf_3dhp_test", "muco_3dhp", "mupots_3d",
                "instavariety", "lip", "smpl", "smpl_45", "spin_extra9", "spin_49", "spin_24",
                "smplx"}
    assert required <= set(ALL)
    for alias, target in [("ochuman", "coco"), ("agora", "smplx"), ("smpl_49", "spin_49"),
                          ("pw3d_2d", "openpose_18"), ("COCO", "coco")]:
        assert get_convention(alias) is get_convention(target)


def test_convention_aliases_point_at_registered_conventions():
    for alias, target in CONVENTION_ALIASES.items():
        assert target in ALL and alias not in ALL
        assert get_convention(alias).name == target
    for ambiguous in ("smpl_24", "coco_18"):
        with pytest.raises(ConventionError):
            get_convention(ambiguous)


@pytest.mark.parametrize("name,k", [
    ("coco", 17), ("coco_wholebody", 133), ("openpose_25", 25), ("openpose_18", 18),
    ("mpii", 16), ("lsp", 14), ("crowdpose", 14), ("aic", 14), ("posetrack", 17),
    ("penn_action", 13), ("h36m", 17), ("h36m_32", 32), ("mpi_inf_3dhp", 28),
    ("mpi_inf_3dhp_test", 17), ("muco_3dhp", 21), ("mupots_3d", 17), ("instavariety", 25),
    ("lip", 16), ("smpl", 24), ("smpl_45", 45), ("spin_extra9", 9), ("smpl_54", 54),
    ("spin_49", 49), ("spin_24", 24), ("smplx", 127), ("smplx_144", 144), ("smplx_55", 55),
])
def test_joint_counts(name, k):
    conv = get_convention(name)
    assert conv.num_joints == k == len(conv.native_names) == len(conv.flip_index)


@pytest.mark.parametrize("name", ALL)
def test_names_unique_and_in_superset(name):
    conv = get_convention(name)
    assert len(set(conv.joint_names)) == conv.num_joints
    assert len({normalise_joint_name(n) for n in conv.native_names}) == conv.num_joints
    assert set(conv.joint_names) <= set(SUPERSET_JOINTS)


@pytest.mark.parametrize("name", ALL)
def test_native_names_and_superset_names_find_their_row(name):
    conv = get_convention(name)
    natives = {expand_sides(normalise_joint_name(n)) for n in conv.native_names}
    natives |= {normalise_joint_name(n) for n in conv.native_names}
    for k, (native, joint) in enumerate(zip(conv.native_names, conv.joint_names)):
        assert conv.index(native) == k
        assert conv.slot_row(joint) == k
        if joint not in natives:  # a native spelling wins over a superset name
            assert conv.index(joint) == k


def test_native_name_wins_over_superset_name():
    smpl = get_convention("smpl_54")
    assert smpl.index("right_hip") == 2 and smpl.joint_names[2] == "smpl_right_hip"
    assert smpl.slot_row("right_hip") == 45
    with pytest.raises(ConventionError, match="no superset joint"):
        smpl.slot_row("thorax_openpose")


@pytest.mark.parametrize("name", ALL)
def test_flip_is_an_involution_that_swaps_sides(name):
    conv = get_convention(name)
    perm = flip_permutation(name)
    assert perm.dtype == np.int64
    np.testing.assert_array_equal(perm[perm], np.arange(conv.num_joints))
    for k, j in enumerate(perm):
        assert conv.joint_names[j] == mirror_name(conv.joint_names[k])
        if "left" in conv.joint_names[k].split("_"):
            assert "right" in conv.joint_names[j].split("_")
    assert sorted(perm.tolist()) == list(range(conv.num_joints))


@pytest.mark.parametrize("name", ALL)
def test_skeleton_edges_join_existing_distinct_joints(name):
    conv = get_convention(name)
    assert len(conv.skeleton) > 0
    idx = conv.skeleton_indices
    assert idx.shape == (len(conv.skeleton), 2)
    assert (idx[:, 0] != idx[:, 1]).all()
    assert len({tuple(sorted(e)) for e in idx.tolist()}) == len(idx)


def test_skeleton_spot_checks():
    lsp = get_convention("lsp").skeleton
    assert ("neck", "head_top") in lsp and ("right_shoulder", "neck") in lsp
    mpii = get_convention("mpii").skeleton
    assert ("right_shoulder", "thorax") in mpii and ("right_shoulder", "neck") not in mpii
    wb = get_convention("coco_wholebody").skeleton
    assert ("left_wrist", "left_hand_root") in wb and ("left_index_3", "left_index_4") in wb
    assert ("right_eye_6", "right_eye_1") in wb  # closed eye contour


@pytest.mark.parametrize("conv,joint,index,slot", [
    ("coco", "left_wrist", 9, "left_wrist"),
    ("coco", "nose", 0, "nose"),
    ("coco_wholebody", "left_hand_root", 91, "left_hand_root"),
    ("coco_wholebody", "right_hand_root", 112, "right_hand_root"),
    ("coco_wholebody", "left_big_toe", 17, "left_big_toe"),
    ("coco_wholebody", "right_contour_1", 23, "right_contour_1"),
    ("coco_wholebody", "right_pinky_4", 132, "right_pinky_4"),
    ("h36m", "pelvis", 0, "pelvis"),
    ("h36m", "right_ankle", 6, "right_ankle"),
    ("h36m_vp3d", "right_ankle", 3, "right_ankle"),
    ("h36m_32", "RightArm", 25, "right_shoulder"),
    ("mpii", "upper_neck", 8, "neck"),
    ("mpii", "thorax", 7, "thorax"),
    ("lsp", "head_top", 13, "head_top"),
    ("openpose_25", "neck", 1, "neck_openpose"),
    ("openpose_25", "mid_hip", 8, "mid_hip_openpose"),
    ("openpose_25", "RShoulder", 2, "right_shoulder_openpose"),
    ("openpose_25", "right_big_toe", 22, "right_big_toe_openpose"),
    ("openpose_18", "left_ear", 17, "left_ear_openpose"),
    ("mpi_inf_3dhp", "pelvis", 4, "pelvis"),
    ("mpi_inf_3dhp", "head_top", 7, "head_h36m"),
    ("mpi_inf_3dhp_test", "pelvis", 14, "pelvis"),
    ("muco_3dhp", "Thorax", 1, "neck"),
    ("muco_3dhp", "R_Toe", 19, "mpi3dhp_right_toe"),
    ("mupots_3d", "Head_top", 0, "head_h36m"),
    ("crowdpose", "head", 12, "head_top"),
    ("aic", "head_top", 12, "head_top"),
    ("posetrack", "head_bottom", 1, "neck"),
    ("penn_action", "head", 0, "head_top"),
    ("lip", "B_Spine", 7, "thorax"),
    ("lip", "left_wrist", 15, "left_wrist"),
    ("instavariety", "R Heel", 0, "right_heel_openpose"),
    ("instavariety", "left_ankle", 23, "left_ankle_openpose"),
    ("instavariety", "Head", 13, "head_top"),
    ("smpl", "left_hip", 1, "smpl_left_hip"),
    ("smpl_45", "nose", 24, "nose_openpose"),
    ("smpl_45", "left_thumb", 35, "left_thumb_4"),
    ("smpl_54", "right_hip_lsp", 45, "right_hip"),
    ("spin_49", "OP MidHip", 8, "mid_hip_openpose"),
    ("spin_49", "Neck (LSP)", 37, "neck"),
    ("spin_49", "Right Ear", 48, "right_ear"),
    ("smplx", "jaw", 22, "smplx_jaw"),
    ("smplx", "left_index1", 25, "smplx_left_index_1"),
    ("smplx", "right_eye_brow1", 76, "right_eyebrow_1"),
    ("smplx", "right_lip_3", 126, "right_lip_3"),
    ("smplx_144", "left_contour_1", 143, "left_contour_1"),
])
def test_named_joint_lands_in_its_superset_slot(conv, joint, index, slot):
    c = get_convention(conv)
    assert c.index(joint) == index
    assert c.joint_names[index] == slot
    src_idx, dst_idx = mapping_indices(conv, "superset")
    assert dst_idx[list(src_idx).index(index)] == SUPERSET_JOINTS.index(slot)


def test_spin_49_is_openpose25_then_j24_in_spin_order():
    spin = get_convention("spin_49")
    assert spin.joint_names[:25] == get_convention("openpose_25").joint_names
    assert spin.joint_names[25:] == get_convention("spin_24").joint_names
    assert spin.native_names[25:28] == ("Right Ankle", "Right Knee", "Right Hip")
    assert spin.native_names[-5:] == ("Nose", "Left Eye", "Right Eye", "Left Ear", "Right Ear")


def test_spin_49_flip_equals_spin_j49_flip_perm():
    # SPIN constants.J49_FLIP_PERM
    j24 = [5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13, 14, 15, 16, 17, 18, 19, 21, 20, 23, 22]
    j49 = [0, 1, 5, 6, 7, 2, 3, 4, 8, 12, 13, 14, 9, 10, 11, 16, 15, 18, 17, 22, 23, 24, 19,
           20, 21] + [25 + i for i in j24]
    assert flip_permutation("spin_49").tolist() == j49
    assert flip_permutation("spin_24").tolist() == j24


def test_lsp14_order_and_spin_evaluation_subsets():
    assert get_convention("lsp14").joint_names == (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
        "left_wrist", "neck", "head_top")
    j17 = get_convention("spin_eval_j17").joint_names
    # SPIN constants.H36M_TO_J17 and J24_TO_J17, recovered by name
    assert get_convention("h36m").slot_rows(j17).tolist() == [
        6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10, 0, 7, 9]
    assert get_convention("spin_24").slot_rows(j17).tolist() == [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18, 14, 16, 17]


@pytest.mark.parametrize("src,spin_idx", [
    # SPIN datasets/preprocess: where each source joint goes in the 24 GT joints
    ("coco", [19, 20, 21, 22, 23, 9, 8, 10, 7, 11, 6, 3, 2, 4, 1, 5, 0]),
    ("mpii", [0, 1, 2, 3, 4, 5, 14, 15, 12, 13, 6, 7, 8, 9, 10, 11]),
    ("h36m", [14, 3, 4, 5, 2, 1, 0, 16, 12, 17, 18, 9, 10, 11, 8, 7, 6]),
])
def test_source_to_spin24_matches_spin_preprocessing(src, spin_idx):
    src_idx, dst_idx = mapping_indices(src, "spin_24")
    assert src_idx.tolist() == list(range(len(spin_idx)))
    assert dst_idx.tolist() == spin_idx


def test_3dhp_and_h36m_raw_subsets_match_published_index_lists():
    h36m = get_convention("h36m").joint_names
    # SPIN mpi_inf_3dhp.py joints17_idx (train, 28 joints) and the test-set one (17 joints)
    assert get_convention("mpi_inf_3dhp").slot_rows(h36m).tolist() == [
        4, 18, 19, 20, 23, 24, 25, 3, 5, 6, 7, 9, 10, 11, 14, 15, 16]
    assert get_convention("mpi_inf_3dhp_test").slot_rows(h36m).tolist() == [
        14, 11, 12, 13, 8, 9, 10, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]
    # Martinez et al. 32 -> 17 (right leg first)
    vp3d = get_convention("h36m_vp3d").joint_names
    assert get_convention("h36m_32").slot_rows(vp3d).tolist() == [
        0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
    # native-name lookup speaks H36M: 'LeftShoulder' is the clavicle root, 'LeftArm' the joint
    assert get_convention("h36m_32").indices(["LeftShoulder", "LeftArm"]).tolist() == [16, 17]


def test_unknown_convention_raises_with_close_matches():
    with pytest.raises(ConventionError, match="did you mean 'coco'"):
        get_convention("cocoo")
    with pytest.raises(ConventionError, match="hmr conventions"):
        get_convention("no_such_layout_at_all")


def test_unknown_or_absent_joint_raises():
    with pytest.raises(ConventionError, match="did you mean 'left_wrist'"):
        get_convention("coco").index("left_wirst")
    with pytest.raises(ConventionError, match="has no joint 'neck'"):
        get_convention("coco").index("neck")


def test_convention_is_frozen():
    conv = get_convention("coco")
    with pytest.raises(AttributeError):
        conv.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("spec,message", [
    (ConventionSpec("bad_dupe", ("upper_neck", "neck")), "maps several joints"),
    (ConventionSpec("bad_side", ("left_wrist",)), "has no mirror 'right_wrist'"),
    (ConventionSpec("bad_name", ("left_wrist", "right_wrist", "elbowish")), "no superset slot"),
])
def test_bad_tables_are_refused_not_silently_dropped(spec, message):
    with pytest.raises(ConventionError, match=message):
        _build(spec)


def test_describe_tables_and_cli(capsys):
    from cli.main import main

    assert main(["conventions"]) == 0
    listing = capsys.readouterr().out
    assert "coco_wholebody" in listing and "superset digest:" in listing
    assert main(["conventions", "mpii"]) == 0
    table = capsys.readouterr().out
    assert "upper_neck" in table and "13 (left_shoulder)" in table
    assert main(["conventions", "mpiii"]) == 2
    assert "did you mean 'mpii'" in capsys.readouterr().err


def test_body_model_orders_match_the_installed_smplx_package():
    from smplx.joint_names import JOINT_NAMES, SMPLH_JOINT_NAMES

    assert get_convention("smplx_144").native_names == tuple(JOINT_NAMES)
    assert get_convention("smplx").native_names == tuple(JOINT_NAMES[:127])
    assert get_convention("smplx_55").native_names == tuple(JOINT_NAMES[:55])
    smpl_45 = get_convention("smpl_45").native_names
    assert smpl_45[:22] == tuple(SMPLH_JOINT_NAMES[:22])
    assert smpl_45[24:] == tuple(SMPLH_JOINT_NAMES[52:73])  # the 21 vertex joints


def test_every_superset_slot_is_used_by_some_source_convention():
    used = set()
    for name in ALL:
        if name != "superset":
            used |= set(get_convention(name).joint_names)
    assert used == set(SUPERSET_JOINTS)
