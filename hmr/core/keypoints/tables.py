"""Joint orders of every source keypoint format, as published, and their superset slots.

Each entry is ``ConventionSpec(name, native, slots, description, source)``: ``native`` lists
the publisher's joint names in array order; ``slots`` maps a native name to its superset
name where the two differ (a native name absent from ``slots`` must be a superset name or a
global alias). Orders were read from the publishers' code and docs (URLs in ``source``);
where MMHuman3D's tables disagree with a publisher, the publisher won and the note says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hmr.core.keypoints.superset import (
    ANNOTATED_J24, FACE68, FOOT6, OPENPOSE_BODY25, SMPL24, SMPLX_HAND_ORDER, SMPLX_ONLY,
    SPIN_JOINT_NAMES, hand21,
)


@dataclass(frozen=True)
class ConventionSpec:
    name: str
    native: tuple[str, ...]
    slots: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = ""


COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
          "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
          "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
LSP14 = ANNOTATED_J24[:14]
MPII16 = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
          "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
          "right_shoulder", "left_shoulder", "left_elbow", "left_wrist")
LIP16_NATIVE = ("R_Ankle", "R_Knee", "R_Hip", "L_Hip", "L_Knee", "L_Ankle", "B_Pelvis",
                "B_Spine", "B_Neck", "B_Head", "R_Wrist", "R_Elbow", "R_Shoulder", "L_Shoulder",
                "L_Elbow", "L_Wrist")
MPI3DHP_TEST17 = ("head_top", "neck", "right_shoulder", "right_elbow", "right_wrist",
                  "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
                  "right_ankle", "left_hip", "left_knee", "left_ankle", "pelvis", "spine",
                  "head")
# 3DHP/MuCo/MuPoTs mocap joints -> SPIN's J24 slots (SPIN datasets/preprocess/mpi_inf_3dhp.py
# feeds 3DHP 'neck','head','head_top','spine' to Neck (LSP), Jaw/Head/Spine (H36M)).
# MMHuman3D maps 3DHP 'neck' to SMPL's neck and 'head_top' to LSP's head top instead.
_MOCAP_SLOTS = {"head_top": "head_h36m", "head": "jaw_h36m", "spine": "spine_h36m"}

# OpenPose's own spellings (poseParameters.cpp, POSE_BODY_25 / POSE_COCO_18 body parts).
OPENPOSE25_NATIVE = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow",
                     "LWrist", "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle",
                     "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel",
                     "RBigToe", "RSmallToe", "RHeel")
OPENPOSE18_NATIVE = OPENPOSE25_NATIVE[:8] + OPENPOSE25_NATIVE[9:19]
_OPENPOSE_SLOTS = dict(zip(OPENPOSE25_NATIVE, OPENPOSE_BODY25))

H36M32_NATIVE = (
    "Hips", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToeBase_Site",
    "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftToeBase_Site", "Spine", "Spine1",
    "Neck", "Head", "Head_Site", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
    "LeftHandThumb", "LeftHandThumb_Site", "L_Wrist_End", "L_Wrist_End_Site",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightHandThumb",
    "RightHandThumb_Site", "R_Wrist_End", "R_Wrist_End_Site")
# Raw 32 -> superset. The 17 standard joints (raw 0,1,2,3,6,7,8,12,13,14,15,17,18,19,25,26,27)
# land in the annotated slots exactly as SPIN's h36m preprocessing puts them (raw 13 'Neck'
# coincides with raw 24, which SPIN reads, and with raw 16).
H36M32_SLOTS = dict(zip(H36M32_NATIVE, (
    "pelvis", "right_hip", "right_knee", "right_ankle", "h36m_right_toe_base",
    "h36m_right_toe_end", "left_hip", "left_knee", "left_ankle", "h36m_left_toe_base",
    "h36m_left_toe_end", "h36m_spine_base", "spine_h36m", "neck", "jaw_h36m", "head_h36m",
    "h36m_left_shoulder_root", "left_shoulder", "left_elbow", "left_wrist", "h36m_left_thumb",
    "h36m_left_thumb_end", "h36m_left_wrist_end", "h36m_left_wrist_end_site",
    "h36m_right_shoulder_root", "right_shoulder", "right_elbow", "right_wrist",
    "h36m_right_thumb", "h36m_right_thumb_end", "h36m_right_wrist_end",
    "h36m_right_wrist_end_site")))
# J_regressor_h36m (HMR/SPIN) order = raw [11|0, 6, 7, 8, 1, 2, 3, 12, 24|13, 14, 15, 17, 18,
# 19, 25, 26, 27]: left leg before right leg.
H36M17_NATIVE = ("pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee",
                 "right_ankle", "spine", "thorax", "neck_nose", "head", "left_shoulder",
                 "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist")
H36M17_SLOTS = {"spine": "spine_h36m", "thorax": "neck", "neck_nose": "jaw_h36m",
                "head": "head_h36m"}
# Martinez et al. / VideoPose3D order = raw [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19,
# 25, 26, 27]: right leg first (MMPose's 'h36m' too).
H36M17_VP3D_NATIVE = ("pelvis", "right_hip", "right_knee", "right_ankle", "left_hip",
                      "left_knee", "left_ankle", "spine", "thorax", "neck_nose", "head",
                      "left_shoulder", "left_elbow", "left_wrist", "right_shoulder",
                      "right_elbow", "right_wrist")

MPI3DHP28_NATIVE = (
    "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top",
    "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_clavicle", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot", "left_toe",
    "right_hip", "right_knee", "right_ankle", "right_foot", "right_toe")
MPI3DHP28_SLOTS = {
    "spine3": "mpi3dhp_spine_3", "spine4": "mpi3dhp_spine_4", "spine2": "mpi3dhp_spine_2",
    "spine": "spine_h36m", "head": "jaw_h36m", "head_top": "head_h36m",
    **{f"{s}_{p}": f"mpi3dhp_{s}_{p}" for s in ("left", "right")
       for p in ("clavicle", "hand", "foot", "toe")},
}
# 3DMPPE (RootNet/PoseNet) spellings.
MUCO21_NATIVE = ("Head_top", "Thorax", "R_Shoulder", "R_Elbow", "R_Wrist", "L_Shoulder",
                 "L_Elbow", "L_Wrist", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee",
                 "L_Ankle", "Pelvis", "Spine", "Head", "R_Hand", "L_Hand", "R_Toe", "L_Toe")
_MUCO_SLOTS = dict(zip(MUCO21_NATIVE, (
    "head_h36m", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "pelvis", "spine_h36m", "jaw_h36m", "mpi3dhp_right_hand",
    "mpi3dhp_left_hand", "mpi3dhp_right_toe", "mpi3dhp_left_toe")))

# HMMR InstaVariety tfrecords: HMMR's "universal 25" order (14 LSP-like joints, 5 face
# points, 6 foot points) filled from OpenPose detections. Names are literal: HMMR's own
# converters (read_3dpw.py, read_upenn.py) put an ankle in 'R Ankle' (index 24) and leave
# 'R Heel' (index 0) for a heel, so 'R Heel' -> OpenPose heel, as VIBE/MMHuman3D map it.
# 'Head' (head top) is never detected by OpenPose; it is kept for layout fidelity.
INSTAVARIETY_NATIVE = ("R Heel", "R Knee", "R Hip", "L Hip", "L Knee", "L Heel", "R Wrist",
                       "R Elbow", "R Shoulder", "L Shoulder", "L Elbow", "L Wrist", "Neck",
                       "Head", "Nose", "L Eye", "R Eye", "L Ear", "R Ear", "L Big Toe",
                       "R Big Toe", "L Small Toe", "R Small Toe", "L Ankle", "R Ankle")
INSTAVARIETY_SLOTS = dict(zip(INSTAVARIETY_NATIVE, (
    *(f"{n}_openpose" for n in ("right_heel", "right_knee", "right_hip", "left_hip",
                                "left_knee", "left_heel", "right_wrist", "right_elbow",
                                "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
                                "neck")),
    "head_top",
    *(f"{n}_openpose" for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                                "left_big_toe", "right_big_toe", "left_small_toe",
                                "right_small_toe", "left_ankle", "right_ankle")))))

# smplx's vertex joints (VertexJointSelector): picked to imitate OpenPose's face/foot points
# (SPIN feeds them to its 'OP *' joints) and the hand-annotation fingertips.
_VERTEX_FACE_FEET = ("nose", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe",
                     "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
                     "right_heel")
_VERTEX_TIPS_NATIVE = tuple(f"{s}_{f}" for s in ("left", "right") for f in
                            ("thumb", "index", "middle", "ring", "pinky"))
SMPL_VERTEX21_NATIVE = _VERTEX_FACE_FEET + _VERTEX_TIPS_NATIVE
SMPL_VERTEX21_SLOTS = {**{n: f"{n}_openpose" for n in _VERTEX_FACE_FEET},
                       **{n: f"{n}_4" for n in _VERTEX_TIPS_NATIVE}}
SPIN_EXTRA9 = ("right_hip", "left_hip", "neck", "head_top", "pelvis", "thorax", "spine_h36m",
               "jaw_h36m", "head_h36m")
SPIN_EXTRA9_NATIVE = ("right_hip_lsp", "left_hip_lsp", "neck_lsp", "head_top_lsp",
                      "pelvis_mpii", "thorax_mpii", "spine_h36m", "jaw_h36m", "head_h36m")
# smplx.joint_names spellings.
SMPL24_NATIVE = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
                 "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
                 "neck", "left_collar", "right_collar", "head", "left_shoulder",
                 "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                 "left_hand", "right_hand")
_SMPL_SLOTS = dict(zip(SMPL24_NATIVE, SMPL24))
SMPLX55_NATIVE = SMPL24_NATIVE[:22] + ("jaw", "left_eye_smplhf", "right_eye_smplhf") + tuple(
    f"{s}_{f}{k}" for s in ("left", "right") for f in SMPLX_HAND_ORDER for k in (1, 2, 3))
_SMPLX_SLOTS = dict(zip(SMPLX55_NATIVE, SMPL24[:22] + SMPLX_ONLY))


def _smplx_face_spelling(name: str) -> str:
    """smplx.joint_names spelling of a face landmark ('right_eyebrow_1' -> 'right_eye_brow1')."""
    name = re.sub(r"eyebrow_(\d)", r"eye_brow\1", name)
    name = re.sub(r"^nose_bridge_(\d)", r"nose\1", name)
    return re.sub(r"_eye_(\d)", r"_eye\1", name)

_FACE51 = FACE68[17:]  # SMPL-X landmarks 76..126 are iBUG 17..67; the contour comes last
WHOLEBODY_HANDS = hand21("left") + hand21("right")
_SMPLX_FACE51_NATIVE = tuple(_smplx_face_spelling(n) for n in _FACE51)
_SMPLX_CONTOUR_NATIVE = FACE68[:17]
_SMPLX127_NATIVE = SMPLX55_NATIVE + SMPL_VERTEX21_NATIVE + _SMPLX_FACE51_NATIVE
_SMPLX_ALL_SLOTS = {**_SMPLX_SLOTS, **SMPL_VERTEX21_SLOTS}

# 3DPeople skeleton rows (1-based list in albertpumarola/3DPeople-Dataset
# skeleton_joints_ids_order.txt @7f29040e, Mixamo rig names). Only the body joints whose
# identity is clear map to slots, following the H36M mocap rig's mapping of the same Mixamo-style
# names (H36M32_SLOTS): the publisher's own plotted sample frame puts the rows named
# HeadTop_End/RightEye/LeftEye and the finger rows where other joints are (converters/people3d.py),
# so those rows keep no slot; Spine and Spine2 have no equivalent slot.
PEOPLE3D67_NATIVE = (
    "Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End", "RightEye", "LeftEye",
    *(f"Left{n}" for n in ("Shoulder", "Arm", "ForeArm", "Hand")),
    *(f"LeftHand{f}{k}" for f in ("Middle", "Thumb", "Index", "Ring", "Pinky") for k in range(1, 5)),
    *(f"Right{n}" for n in ("Shoulder", "Arm", "ForeArm", "Hand")),
    *(f"RightHand{f}{k}" for f in ("Middle", "Thumb", "Index", "Ring", "Pinky") for k in range(1, 5)),
    *(f"Right{n}" for n in ("UpLeg", "Leg", "Foot", "ToeBase", "Toe_End")),
    *(f"Left{n}" for n in ("UpLeg", "Leg", "Foot", "ToeBase", "Toe_End")),
)
_PEOPLE3D_SLOTS = {
    "Hips": "pelvis", "Spine1": "spine_h36m", "Neck": "neck", "Head": "jaw_h36m",
    **{f"{S}{n}": f"{s}_{slot}" for S, s in (("Left", "left"), ("Right", "right"))
       for n, slot in (("Arm", "shoulder"), ("ForeArm", "elbow"), ("Hand", "wrist"),
                       ("UpLeg", "hip"), ("Leg", "knee"), ("Foot", "ankle"))},
    **{f"{S}{n}": f"h36m_{s}_{slot}" for S, s in (("Left", "left"), ("Right", "right"))
       for n, slot in (("Shoulder", "shoulder_root"), ("ToeBase", "toe_base"), ("Toe_End", "toe_end"))},
}
PEOPLE3D_NATIVE = tuple(n for n in PEOPLE3D67_NATIVE if n in _PEOPLE3D_SLOTS)

_OP = "https://github.com/CMU-Perceptual-Computing-Lab/openpose/blob/master/doc/02_output.md"
_SPIN = "https://github.com/nkolot/SPIN/blob/master/constants.py"
_SMPLX = "https://github.com/vchoutas/smplx/blob/main/smplx/joint_names.py"
_3DMPPE = "https://github.com/mks0601/3DMPPE_POSENET_RELEASE (data/MuCo, data/MuPoTS)"

CONVENTION_SPECS: tuple[ConventionSpec, ...] = (
    ConventionSpec("coco", COCO17, {}, "COCO person keypoints (17); also OCHuman.",
                   "https://cocodataset.org/#format-data"),
    ConventionSpec(
        "coco_wholebody", COCO17 + FOOT6 + FACE68 + WHOLEBODY_HANDS, {},
        "COCO-WholeBody 133: body 0-16, feet 17-22, face 23-90 (iBUG 68), left hand 91-111, "
        "right hand 112-132 (hand roots kept as their own slots).",
        "https://github.com/jin-s13/COCO-WholeBody/blob/master/data_format.md"),
    ConventionSpec("openpose_25", OPENPOSE25_NATIVE, _OPENPOSE_SLOTS,
                   "OpenPose BODY_25 detections (neck = mid-shoulders, mid_hip = mid-hips).", _OP),
    ConventionSpec("openpose_18", OPENPOSE18_NATIVE, _OPENPOSE_SLOTS,
                   "OpenPose COCO-18 detections; 3DPW 'poses2d' use this order.", _OP),
    ConventionSpec("openpose_135", OPENPOSE25_NATIVE + WHOLEBODY_HANDS + FACE68, _OPENPOSE_SLOTS,
                   "OpenPose BODY_25 + left and right hand (21 each) + face (its first 68 "
                   "points, iBUG order; the 2 pupils have no slot): PROX's and MTP's "
                   "keypoints.", _OP),
    ConventionSpec("mpii", MPII16, {}, "MPII Human Pose (16).",
                   "http://human-pose.mpi-inf.mpg.de/#download (README of mpii_human_pose_v1_u12)"),
    ConventionSpec("lsp", LSP14, {}, "Leeds Sports Pose / LSP-Extended / UP-3D (14).",
                   "http://sam.johnson.io/research/lsp.html (README)"),
    ConventionSpec("lsp14", LSP14, {},
                   "The 14 LSP joints SPIN/HMR evaluate on (= SPIN J24[:14], J24_TO_J14).",
                   _SPIN),
    ConventionSpec("spin_eval_j14", LSP14[:13] + ("head_h36m",), {},
                   "The 14 joints SPIN actually scores on H36M/3DHP/3DPW (J24_TO_J14, "
                   "H36M_TO_J14): LSP order, but the 14th is H36M's head, not LSP's head top.",
                   _SPIN),
    ConventionSpec("spin_eval_j17", LSP14[:13] + ("head_h36m", "pelvis", "spine_h36m",
                                                  "jaw_h36m"), {},
                   "SPIN's J17 (J24_TO_J17, H36M_TO_J17): spin_eval_j14 + pelvis, spine, jaw.",
                   _SPIN),
    ConventionSpec("crowdpose", (*COCO17[5:], "head", "neck"), {"head": "head_top"},
                   "CrowdPose (14); 'head' is the top of the head (AI Challenger style).",
                   "https://github.com/Jeff-sjtu/CrowdPose"),
    ConventionSpec("ochuman_19", ("right_shoulder", "right_elbow", "right_wrist",
                                  "left_shoulder", "left_elbow", "left_wrist", "right_hip",
                                  "right_knee", "right_ankle", "left_hip", "left_knee",
                                  "left_ankle", "head", "neck", "right_ear", "left_ear", "nose",
                                  "right_eye", "left_eye"), {"head": "head_top"},
                   "OCHuman's original ochuman.json (19, its 'keypoint_names'); 'head' is the "
                   "top of the head. Its COCO-format files use 'coco'.",
                   "https://github.com/liruilong940607/OCHumanApi"),
    ConventionSpec("aic", ("right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
                           "left_elbow", "left_wrist", "right_hip", "right_knee",
                           "right_ankle", "left_hip", "left_knee", "left_ankle", "head_top",
                           "neck"), {}, "AI Challenger human keypoints (14).",
                   "https://github.com/AIChallenger/AI_Challenger_2017"),
    ConventionSpec("posetrack", ("nose", "head_bottom", "head_top", *COCO17[3:]),
                   {"head_bottom": "neck"},
                   "PoseTrack 2018 (17, COCO order with eyes replaced by head bottom/top; "
                   "head_bottom is MPII's upper neck).", "https://posetrack.net/"),
    # Penn Action: the README's names, whose sides the data contradict (index 1, "left_shoulder",
    # is the person's right shoulder; evidence in converters/penn_action.py), so each side
    # goes to the opposite superset slot.
    ConventionSpec("penn_action", ("head", *COCO17[5:]),
                   {"head": "head_top", **dict(zip(COCO17[5::2], COCO17[6::2])),
                    **dict(zip(COCO17[6::2], COCO17[5::2]))},
                   "Penn Action (13), README names; the data are mirrored (index 1 'left_shoulder' "
                   "is the person's right shoulder), so sides map across. 'head' in the head-top "
                   "slot.", "http://dreamdragon.github.io/PennAction/ (README) + label files"),
    ConventionSpec("lip", LIP16_NATIVE, dict(zip(LIP16_NATIVE, MPII16)),
                   "Look Into Person (16), MPII order and definitions (B_Spine = thorax, "
                   "B_Neck = upper neck, B_Head = head top).", "http://sysu-hcp.net/lip/"),
    ConventionSpec("h36m", H36M17_NATIVE, H36M17_SLOTS,
                   "Human3.6M 17 in J_regressor_h36m (HMR/SPIN/MMHuman3D) order: left leg "
                   "first. Slots follow SPIN's h36m preprocessing.", _SPIN),
    ConventionSpec("h36m_vp3d", H36M17_VP3D_NATIVE, H36M17_SLOTS,
                   "Human3.6M 17 in Martinez/VideoPose3D/MMPose order: right leg first.",
                   "https://github.com/facebookresearch/VideoPose3D"),
    ConventionSpec("h36m_32", H36M32_NATIVE, H36M32_SLOTS,
                   "Human3.6M raw 32-joint D3_Positions skeleton (several coincide: 0/11, "
                   "13/16/24).", "http://vision.imar.ro/human3.6m (metadata.xml)"),
    ConventionSpec("mpi_inf_3dhp", MPI3DHP28_NATIVE, MPI3DHP28_SLOTS,
                   "MPI-INF-3DHP training annot.mat (28). neck/head/head_top/spine go to "
                   "SPIN's Neck (LSP)/Jaw/Head/Spine (H36M) slots.",
                   "https://vcai.mpi-inf.mpg.de/3dhp-dataset/ (mpii_get_joint_set.m)"),
    ConventionSpec("mpi_inf_3dhp_test", MPI3DHP_TEST17, _MOCAP_SLOTS,
                   "MPI-INF-3DHP test set (17, 'relevant' joints; root = pelvis, index 14).",
                   "https://vcai.mpi-inf.mpg.de/3dhp-dataset/ (mpii_get_joint_set.m)"),
    ConventionSpec("muco_3dhp", MUCO21_NATIVE, _MUCO_SLOTS,
                   "MuCo-3DHP (21; 3DHP joints, 'Thorax' is 3DHP's neck).", _3DMPPE),
    ConventionSpec("mupots_3d", MUCO21_NATIVE[:17], _MUCO_SLOTS,
                   "MuPoTs-3D (17; the 3DHP test joints in 3DMPPE naming).", _3DMPPE),
    ConventionSpec("instavariety", INSTAVARIETY_NATIVE, INSTAVARIETY_SLOTS,
                   "InstaVariety (HMMR tfrecords, 25): OpenPose detections in HMMR's "
                   "universal order; 'head' (head top) is in the LSP head-top slot.",
                   "https://github.com/akanazawa/human_dynamics/blob/master/doc/insta_variety.md"),
    ConventionSpec("people3d", PEOPLE3D_NATIVE, _PEOPLE3D_SLOTS,
                   "3DPeople (Mixamo rig, 67 rows): the 22 body joints with a slot (hips, "
                   "spine1, neck, head, clavicles, arms, forearms, hands, up-legs, legs, feet, "
                   "toe bases and ends), as H36M's rig maps the same names; eyes, head top and "
                   "fingers have no slot (converters/people3d.py).",
                   "https://github.com/albertpumarola/3DPeople-Dataset "
                   "(skeleton_joints_ids_order.txt)"),
    ConventionSpec("smpl", SMPL24_NATIVE, _SMPL_SLOTS,
                   "SMPL's 24 kinematic joints (J_regressor).", _SMPLX),
    ConventionSpec("smpl_45", SMPL24_NATIVE + SMPL_VERTEX21_NATIVE,
                   {**_SMPL_SLOTS, **SMPL_VERTEX21_SLOTS},
                   "smplx SMPL output: 24 joints + 21 vertex joints (face/feet in the "
                   "OpenPose slots, fingertips in the hand tips).",
                   "https://github.com/vchoutas/smplx/blob/main/smplx/vertex_joint_selector.py"),
    ConventionSpec("spin_extra9", SPIN_EXTRA9_NATIVE, dict(zip(SPIN_EXTRA9_NATIVE, SPIN_EXTRA9)),
                   "SPIN's J_regressor_extra (9): LSP hips/neck/head top, MPII pelvis/thorax, "
                   "H36M spine/jaw/head.", _SPIN),
    ConventionSpec("smpl_54", SMPL24_NATIVE + SMPL_VERTEX21_NATIVE + SPIN_EXTRA9_NATIVE,
                   {**_SMPL_SLOTS, **SMPL_VERTEX21_SLOTS,
                    **dict(zip(SPIN_EXTRA9_NATIVE, SPIN_EXTRA9))},
                   "smpl_45 + J_regressor_extra: the 54 joints SPIN's JOINT_MAP indexes.", _SPIN),
    ConventionSpec("spin_49", SPIN_JOINT_NAMES,
                   dict(zip(SPIN_JOINT_NAMES, OPENPOSE_BODY25 + ANNOTATED_J24)),
                   "SPIN/EFT 49: OpenPose 25 then the 24 GT joints (constants.JOINT_NAMES).",
                   _SPIN),
    ConventionSpec("spin_24", SPIN_JOINT_NAMES[25:],
                   dict(zip(SPIN_JOINT_NAMES[25:], ANNOTATED_J24)),
                   "SPIN's 24 GT joints (J24, the npz 'part'/'S' layout).", _SPIN),
    ConventionSpec("smplx", _SMPLX127_NATIVE, _SMPLX_ALL_SLOTS,
                   "smplx SMPL-X output (127): 55 joints, 21 vertex joints, 51 face "
                   "landmarks; AGORA's SMPL-X keypoints.", _SMPLX),
    ConventionSpec("smplx_144", _SMPLX127_NATIVE + _SMPLX_CONTOUR_NATIVE, _SMPLX_ALL_SLOTS,
                   "smplx SMPL-X output with use_face_contour=True (127 + 17 contour).", _SMPLX),
    ConventionSpec("smplx_55", SMPLX55_NATIVE, _SMPLX_SLOTS,
                   "SMPL-X's 55 kinematic joints (no vertex joints or landmarks).", _SMPLX),
)

# Other names people use for the same layouts. Deliberately absent: 'smpl_24' (MMHuman3D's
# name for SPIN's J24, easily read as SMPL's 24 joints) and 'coco_18' (OpenPose's COCO-18 or
# COCO-17 + neck, depending on the project).
CONVENTION_ALIASES: dict[str, str] = {
    "ochuman": "coco", "coco17": "coco", "pw3d_2d": "openpose_18",
    "openpose": "openpose_25", "body_25": "openpose_25", "smpl_49": "spin_49",
    "j24": "spin_24", "agora": "smplx", "smplx_127": "smplx", "smpl_24_kinematic": "smpl",
    "mpii_16": "mpii", "h36m_17": "h36m", "h36m_mmpose": "h36m_vp3d", "lspet": "lsp",
    "mpi_inf_3dhp_28": "mpi_inf_3dhp", "mupots3d": "mupots_3d", "muco3dhp": "muco_3dhp",
    "ai_challenger": "aic", "posetrack18": "posetrack", "smpl_kinematic": "smpl",
    "3dpeople": "people3d", "mtp": "openpose_135", "prox": "openpose_135",
}
