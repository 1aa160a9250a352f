"""Joint names and index maps of the SMPL skeleton and the regressor sets built on it.

* ``SMPL24_JOINT_NAMES``: SMPL's 24 kinematic joints, in SMPL order, with ``SMPL24_PARENTS``.
* ``SMPL45_VERTEX_JOINTS``: the 21 joints smplx appends to the 24 (vertex picks, smplx's
  ``vertex_ids['smplh']``), in the order smplx's ``VertexJointSelector`` appends them.
* ``EXTRA9_JOINT_NAMES``: rows of SPIN's ``J_regressor_extra.npy``.
* ``H36M17_JOINT_NAMES``: rows of SPIN's ``J_regressor_h36m.npy``. Note the order used by SPIN
  (and by MMHuman3D's ``h36m`` convention): the LEFT leg comes first (rows 1-3), then the
  right leg (4-6); arms are left (11-13) then right (14-16). SPIN's ``H36M_TO_J17`` relies on it.
* ``SPIN49_JOINT_NAMES``: SPIN's 49 joints (25 OpenPose + 24 "GT" joints), and
  ``SPIN49_FROM_SMPL54``: for each of them, the row of the 54-joint stack
  ``[smplx's 45 SMPL joints; 9 extra-regressor joints]`` it is taken from (SPIN's JOINT_MAP).
"""

from __future__ import annotations

SMPL24_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL24_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# smplx vertex_ids['smplh'] entries used for SMPL, in the order smplx appends them.
SMPL45_VERTEX_JOINTS = (
    ("nose", 332), ("reye", 6260), ("leye", 2800), ("rear", 4071), ("lear", 583),
    ("LBigToe", 3216), ("LSmallToe", 3226), ("LHeel", 3387),
    ("RBigToe", 6617), ("RSmallToe", 6624), ("RHeel", 6787),
    ("lthumb", 2746), ("lindex", 2319), ("lmiddle", 2445), ("lring", 2556), ("lpinky", 2673),
    ("rthumb", 6191), ("rindex", 5782), ("rmiddle", 5905), ("rring", 6016), ("rpinky", 6133),
)

EXTRA9_JOINT_NAMES = (
    "Right Hip", "Left Hip", "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)",
    "Thorax (MPII)", "Spine (H36M)", "Jaw (H36M)", "Head (H36M)",
)

H36M17_JOINT_NAMES = (
    "pelvis", "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle",
    "spine", "thorax", "jaw", "head_top", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)

SPIN49_JOINT_NAMES = (
    "OP Nose", "OP Neck", "OP RShoulder", "OP RElbow", "OP RWrist", "OP LShoulder", "OP LElbow",
    "OP LWrist", "OP MidHip", "OP RHip", "OP RKnee", "OP RAnkle", "OP LHip", "OP LKnee",
    "OP LAnkle", "OP REye", "OP LEye", "OP REar", "OP LEar", "OP LBigToe", "OP LSmallToe",
    "OP LHeel", "OP RBigToe", "OP RSmallToe", "OP RHeel",
    "Right Ankle", "Right Knee", "Right Hip", "Left Hip", "Left Knee", "Left Ankle",
    "Right Wrist", "Right Elbow", "Right Shoulder", "Left Shoulder", "Left Elbow", "Left Wrist",
    "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)", "Thorax (MPII)", "Spine (H36M)",
    "Jaw (H36M)", "Head (H36M)", "Nose", "Left Eye", "Right Eye", "Left Ear", "Right Ear",
)

# Row of the (45 smplx joints + 9 extra) stack that each SPIN joint is read from.
SPIN49_FROM_SMPL54 = (
    24, 12, 17, 19, 21, 16, 18, 20, 0, 2, 5, 8, 1, 4, 7, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
    8, 5, 45, 46, 4, 7, 21, 19, 17, 16, 18, 20, 47, 48, 49, 50, 51, 52, 53, 24, 26, 25, 28, 27,
)

assert len(SPIN49_JOINT_NAMES) == len(SPIN49_FROM_SMPL54) == 49
