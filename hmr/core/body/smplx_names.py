"""Joint names, parents and vertex joints of SMPL-X, as smplx 0.1.28 defines them.

* ``SMPLX55_JOINT_NAMES``: SMPL-X's 55 kinematic joints (smplx ``joint_names.JOINT_NAMES[:55]``):
  SMPL's first 22 body joints, jaw, left/right eye, then 15 joints per hand (left then right),
  each hand ordered index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3.
* ``SMPLX55_PARENTS``: the kinematic tree of the released SMPL-X files (``kintree_table[0]``):
  jaw and eyes hang from the head, each finger's first joint from its wrist.
* ``SMPLX_VERTEX_JOINTS``: the 21 vertices smplx appends after the 55 joints
  (``vertex_ids['smplx']``, in ``VertexJointSelector``'s order: face, feet, finger tips), the
  same names, in the same order, as SMPL's 21 (:data:`~hmr.core.body.joint_names.SMPL45_VERTEX_JOINTS`).
  smplx then appends the 51 face landmarks (and 17 contour points with ``use_face_contour``).
* ``SMPL_FROM_SMPLX``: for SMPL's 45 smplx joints (24 kinematic + 21 vertex joints), the SMPL-X
  joint with the same meaning, or -1 (SMPL's ``left_hand``/``right_hand`` have no exact
  counterpart; the middle finger's base is the nearest).
"""

from __future__ import annotations

SMPLX55_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "jaw", "left_eye_smplhf", "right_eye_smplhf",
) + tuple(f"{side}_{finger}{k}" for side in ("left", "right")
          for finger in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3))

SMPLX55_PARENTS = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
) + tuple(wrist if k == 0 else 25 + 15 * h + 3 * f + k - 1
          for h, wrist in ((0, 20), (1, 21)) for f in range(5) for k in range(3))

SMPLX_VERTEX_JOINTS = (
    ("nose", 9120), ("reye", 9929), ("leye", 9448), ("rear", 616), ("lear", 6),
    ("LBigToe", 5770), ("LSmallToe", 5780), ("LHeel", 8846),
    ("RBigToe", 8463), ("RSmallToe", 8474), ("RHeel", 8635),
    ("lthumb", 5361), ("lindex", 4933), ("lmiddle", 5058), ("lring", 5169), ("lpinky", 5286),
    ("rthumb", 8079), ("rindex", 7669), ("rmiddle", 7794), ("rring", 7905), ("rpinky", 8022),
)

# SMPL's 45 smplx joints -> SMPL-X joint index (55 kinematic + 21 vertex joints), -1: none.
SMPL_FROM_SMPLX = tuple(range(22)) + (SMPLX55_JOINT_NAMES.index("left_middle1"),
                                      SMPLX55_JOINT_NAMES.index("right_middle1")) + tuple(range(55, 76))

assert len(SMPLX55_JOINT_NAMES) == len(SMPLX55_PARENTS) == 55
assert len(SMPL_FROM_SMPLX) == 45
