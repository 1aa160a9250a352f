"""The superset keypoint convention: one fixed, ordered list of named joint slots.

Every store written by hmrkit holds its 2D/3D keypoints as ``(K, C)`` arrays in this order
(``K = len(SUPERSET_JOINTS)``), whatever the source format was; a slot the source does not
annotate is zero with confidence 0.

A slot is **one landmark under one definition**. Two source joints share a slot only when they
are the same landmark defined the same way by the field's reference layout (SPIN's J24 "GT"
layout for annotated body joints); points that are merely close keep separate slots. This
is why the superset has several "families":

* ``annotated`` (SPIN J24 order, the first 24 slots): what pose datasets label by hand, and the
  mocap joints SPIN maps onto them (H36M/3DHP hips, pelvis, neck). ``neck`` is LSP's neck and
  MPII's ``upper_neck``; ``thorax`` is MPII's thorax; ``spine_h36m``/``jaw_h36m``/``head_h36m``
  are SPIN's ``Spine/Jaw/Head (H36M)``.
* ``openpose`` (``*_openpose``, BODY_25 order): OpenPose detections and the smplx mesh-vertex
  joints SPIN uses in their place. OpenPose's ``neck`` (mid-shoulders) and ``mid_hip`` are not
  LSP's neck nor MPII's pelvis.
* ``foot`` / ``hand`` / ``face``: COCO-WholeBody feet, 2 x 21 hand points (root = the hand
  annotator's wrist, kept apart from the body wrist), and the 68 iBUG/300-W face landmarks
  (SMPL-X's 51 + 17 contour landmarks are the same definitions).
* ``smpl`` (``smpl_*``): kinematic joint centres of the SMPL/SMPL-H/SMPL-X skeleton;
  ``smplx_*``: SMPL-X-only joints (jaw, eyeballs, 30 finger joints).
* ``h36m_*`` / ``mpi3dhp_*``: mocap-skeleton joints outside the annotated set.

Left/right is always the *subject's* side. The order is fixed: later versions may only append
slots (and bump :data:`SUPERSET_VERSION`); :func:`superset_digest` identifies the exact list.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

SUPERSET_NAME = "superset"
SUPERSET_VERSION = 1


def _sided(side: str, names: list[str]) -> list[str]:
    return [f"{side}_{n}" for n in names]


# SPIN constants.JOINT_NAMES[25:] ("GT" joints, J24), same order.
ANNOTATED_J24: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    "neck", "head_top", "pelvis", "thorax", "spine_h36m", "jaw_h36m", "head_h36m",
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
)

# OpenPose BODY_25 order (= SPIN constants.JOINT_NAMES[:25]).
OPENPOSE_BODY25: tuple[str, ...] = tuple(f"{n}_openpose" for n in (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
    "right_heel",
))

# COCO-WholeBody foot order.
FOOT6: tuple[str, ...] = (
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
    "right_heel",
)

_FINGERS = ("thumb", "index", "middle", "ring", "pinky")


def hand21(side: str) -> tuple[str, ...]:
    """COCO-WholeBody / OpenPose hand order: root, then each finger base -> tip (1..4)."""
    return (f"{side}_hand_root",) + tuple(
        f"{side}_{finger}_{k}" for finger in _FINGERS for k in range(1, 5))


# iBUG 300-W 68-point order (COCO-WholeBody face, OpenPose face[:68]). Index 0 of the jaw is
# on the subject's right; names follow smplx's joint_names spelling, side-normalised.
FACE68: tuple[str, ...] = (
    *_sided("right", [f"contour_{k}" for k in range(1, 9)]), "contour_middle",
    *_sided("left", [f"contour_{k}" for k in range(8, 0, -1)]),
    *_sided("right", [f"eyebrow_{k}" for k in range(1, 6)]),
    *_sided("left", [f"eyebrow_{k}" for k in range(5, 0, -1)]),
    "nose_bridge_1", "nose_bridge_2", "nose_bridge_3", "nose_bridge_4",
    "right_nose_2", "right_nose_1", "nose_middle", "left_nose_1", "left_nose_2",
    *_sided("right", [f"eye_{k}" for k in range(1, 7)]),
    "left_eye_4", "left_eye_3", "left_eye_2", "left_eye_1", "left_eye_6", "left_eye_5",
    "right_mouth_1", "right_mouth_2", "right_mouth_3", "mouth_top",
    "left_mouth_3", "left_mouth_2", "left_mouth_1", "left_mouth_5", "left_mouth_4",
    "mouth_bottom", "right_mouth_4", "right_mouth_5",
    "right_lip_1", "right_lip_2", "lip_top", "left_lip_2", "left_lip_1", "left_lip_3",
    "lip_bottom", "right_lip_3",
)

# SMPL kinematic tree order (smplx.joint_names.SMPLH_JOINT_NAMES[:22] + hands).
SMPL24: tuple[str, ...] = tuple(f"smpl_{n}" for n in (
    "pelvis", "left_hip", "right_hip", "spine_1", "left_knee", "right_knee", "spine_2",
    "left_ankle", "right_ankle", "spine_3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
))

# smplx joint order for SMPL-X joints 22..54 (jaw, eyeballs, hands: index, middle, pinky,
# ring, thumb, each 1..3 from the knuckle out).
SMPLX_HAND_ORDER = ("index", "middle", "pinky", "ring", "thumb")
SMPLX_ONLY: tuple[str, ...] = (
    "smplx_jaw", "smplx_left_eyeball", "smplx_right_eyeball",
    *(f"smplx_left_{f}_{k}" for f in SMPLX_HAND_ORDER for k in (1, 2, 3)),
    *(f"smplx_right_{f}_{k}" for f in SMPLX_HAND_ORDER for k in (1, 2, 3)),
)

# Human3.6M 32-joint skeleton points that are not among the 17 standard joints.
H36M_EXTRA: tuple[str, ...] = (
    "h36m_right_toe_base", "h36m_right_toe_end", "h36m_left_toe_base", "h36m_left_toe_end",
    "h36m_spine_base", "h36m_left_shoulder_root", "h36m_left_thumb", "h36m_left_thumb_end",
    "h36m_left_wrist_end", "h36m_left_wrist_end_site", "h36m_right_shoulder_root",
    "h36m_right_thumb", "h36m_right_thumb_end", "h36m_right_wrist_end",
    "h36m_right_wrist_end_site",
)

# MPI-INF-3DHP 28-joint skeleton points that are not in the annotated family.
MPI3DHP_EXTRA: tuple[str, ...] = (
    "mpi3dhp_spine_3", "mpi3dhp_spine_4", "mpi3dhp_spine_2",
    "mpi3dhp_left_clavicle", "mpi3dhp_left_hand", "mpi3dhp_left_foot", "mpi3dhp_left_toe",
    "mpi3dhp_right_clavicle", "mpi3dhp_right_hand", "mpi3dhp_right_foot", "mpi3dhp_right_toe",
)

# The superset is these families concatenated in this order. New slots go in a NEW family
# appended at the end (never inside an existing one, which would shift later slots).
SUPERSET_FAMILIES: dict[str, tuple[str, ...]] = {
    "annotated": ANNOTATED_J24,
    "openpose": OPENPOSE_BODY25,
    "foot": FOOT6,
    "hand": hand21("left") + hand21("right"),
    "face": FACE68,
    "smpl": SMPL24,
    "smplx": SMPLX_ONLY,
    "h36m": H36M_EXTRA,
    "mpi3dhp": MPI3DHP_EXTRA,
}

# Version 1. Append-only: never reorder or rename, or stores written before become wrong.
SUPERSET_JOINTS: tuple[str, ...] = tuple(n for names in SUPERSET_FAMILIES.values() for n in names)
SUPERSET_INDEX: dict[str, int] = {n: i for i, n in enumerate(SUPERSET_JOINTS)}


def superset_digest() -> str:
    """SHA-256 (hex) of the superset's name, version and ordered joint names.

    Stores record it so that a reader can tell which superset their arrays follow.
    """
    text = f"{SUPERSET_NAME}\nv{SUPERSET_VERSION}\n" + "\n".join(SUPERSET_JOINTS) + "\n"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def family_of(name: str) -> str:
    """The family ('annotated', 'openpose', ...) of a superset joint name."""
    for family, names in SUPERSET_FAMILIES.items():
        if name in names:
            return family
    raise KeyError(name)


_SIDE_SWAP = {"left": "right", "right": "left"}


def mirror_name(name: str) -> str:
    """The name of the joint a horizontal flip swaps ``name`` with (itself if unsided).

    Sides are whole ``_``-separated tokens: ``left_eye_4`` <-> ``right_eye_4``.
    """
    return "_".join(_SIDE_SWAP.get(tok, tok) for tok in name.split("_"))


def normalise_joint_name(name: str) -> str:
    """snake_case: CamelCase split, lower-cased, other characters turned into one ``_``.

    ``"RShoulder"`` -> ``"r_shoulder"``, ``"Top of Head (LSP)"`` -> ``"top_of_head_lsp"``.
    """
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name.strip())
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def expand_sides(key: str) -> str:
    """A normalised name with a leading ``r_``/``l_`` spelled out (``r_hip`` -> ``right_hip``)."""
    head, _, rest = key.partition("_")
    return {"r": "right", "l": "left"}.get(head, head) + ("_" + rest if rest else "")


# Spellings used by other projects -> superset names. Only unambiguous spellings belong
# here; a spelling that means different points in different formats (e.g. smplx's
# ``left_big_toe`` is a mesh vertex, COCO-WholeBody's an annotation) is resolved per
# convention through its native names instead.
_SPIN_J49 = (
    "OP Nose", "OP Neck", "OP RShoulder", "OP RElbow", "OP RWrist", "OP LShoulder",
    "OP LElbow", "OP LWrist", "OP MidHip", "OP RHip", "OP RKnee", "OP RAnkle", "OP LHip",
    "OP LKnee", "OP LAnkle", "OP REye", "OP LEye", "OP REar", "OP LEar", "OP LBigToe",
    "OP LSmallToe", "OP LHeel", "OP RBigToe", "OP RSmallToe", "OP RHeel",
    "Right Ankle", "Right Knee", "Right Hip", "Left Hip", "Left Knee", "Left Ankle",
    "Right Wrist", "Right Elbow", "Right Shoulder", "Left Shoulder", "Left Elbow",
    "Left Wrist", "Neck (LSP)", "Top of Head (LSP)", "Pelvis (MPII)", "Thorax (MPII)",
    "Spine (H36M)", "Jaw (H36M)", "Head (H36M)", "Nose", "Left Eye", "Right Eye",
    "Left Ear", "Right Ear",
)
SPIN_JOINT_NAMES: tuple[str, ...] = _SPIN_J49  # SPIN constants.JOINT_NAMES, verbatim order


def _build_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    for spin_name, ours in zip(_SPIN_J49, OPENPOSE_BODY25 + ANNOTATED_J24):
        aliases[normalise_joint_name(spin_name)] = ours
    # MMHuman3D human_data spellings (its *_extra are SPIN's J_regressor_extra points).
    aliases.update({
        "headtop": "head_top", "head_top_lsp": "head_top", "top_head": "head_top",
        "upper_neck": "neck", "neck_extra": "neck", "neck_lsp": "neck",
        "left_hip_extra": "left_hip", "right_hip_extra": "right_hip",
        "pelvis_extra": "pelvis", "pelvis_mpii": "pelvis",
        "thorax_extra": "thorax", "thorax_mpii": "thorax",
        "spine_extra": "spine_h36m", "jaw_extra": "jaw_h36m", "head_extra": "head_h36m",
        "pelvis_openpose": "mid_hip_openpose", "midhip_openpose": "mid_hip_openpose",
        "nosebridge_1": "nose_bridge_1", "nosebridge_2": "nose_bridge_2",
        "nosebridge_3": "nose_bridge_3", "nosebridge_4": "nose_bridge_4",
    })
    for side in ("left", "right"):
        for tip in ("big", "small"):
            aliases[f"{side}_{tip}toe_openpose"] = f"{side}_{tip}_toe_openpose"
        for k in range(1, 6):
            aliases[f"{side}_eye_brow{k}"] = f"{side}_eyebrow_{k}"
        for k in range(1, 7):
            aliases[f"{side}_eye{k}"] = f"{side}_eye_{k}"
        aliases[f"{side}_wrist_hand"] = f"{side}_hand_root"
        aliases[f"{side}_eye_smplhf"] = f"smplx_{side}_eyeball"
        for f in SMPLX_HAND_ORDER:
            for k in (1, 2, 3):
                aliases[f"{side}_{f}{k}"] = f"smplx_{side}_{f}_{k}"
    for k in range(1, 5):
        aliases[f"nose{k}"] = f"nose_bridge_{k}"
    # a spelling that already is a superset name needs no alias (and must not get one)
    return {k: v for k, v in aliases.items() if k not in SUPERSET_INDEX}


JOINT_ALIASES: dict[str, str] = _build_aliases()


@lru_cache(maxsize=None)
def resolve_superset_name(name: str) -> str | None:
    """The superset name for ``name`` (a superset name or a global alias), else None."""
    if name in SUPERSET_INDEX:
        return name
    key = normalise_joint_name(name)
    if key in SUPERSET_INDEX:
        return key
    return JOINT_ALIASES.get(key)
