"""MMHuman3D's 190-joint ``human_data`` keypoint layout, mapped by name to our superset.

Every MMHuman3D HumanData file stores ``keypoints2d`` (N, 190, 3) and ``keypoints3d``
(N, 190, 4) in this order (``mmhuman3d/core/conventions/keypoints_mapping/human_data.py``,
list ``HUMAN_DATA``), with a per-file ``keypoints*_mask`` (190,) uint8 saying which rows the
file fills. The names are MMHuman3D's; their meaning is *its* convention tables':

* ``pelvis, left_hip, right_hip, spine_1..3, left_foot, right_foot, neck, left_collar,
  right_collar, head, left_hand, right_hand`` are **SMPL kinematic joints** (the annotated
  hips / pelvis / neck live in ``*_extra``, the LSP head top in ``headtop``).
* ``left/right_{shoulder, elbow, wrist, knee, ankle}`` are *shared*: MMHuman3D puts both
  annotated joints (COCO, MPII, LSP, H36M, 3DHP) and SMPL's kinematic joints there. By
  default (``limbs="annotated"``) they go to the annotated slots, which is what every
  dataset converter of MMHuman3D's fills; ``limbs="smpl"`` sends them to ``smpl_*`` for
  files whose keypoints were regressed from SMPL.
* ``nose, left/right_eye, left/right_ear`` -> annotated face points; ``*_bigtoe``,
  ``*_smalltoe``, ``*_heel`` -> COCO-WholeBody feet; ``left_thumb`` .. ``right_pinky`` ->
  fingertips (``*_4``); ``jaw``, ``*_eyeball``, ``*_index_1`` .. -> SMPL-X joints; the 68 face
  landmarks, ``*_openpose`` and ``*_3dhp`` names -> their superset namesakes.
* ``head_h36m``, ``headtop_h36m`` (no MMHuman3D converter fills them) and PoseTrack's
  ``head_bottom_pt`` are **fallbacks**: they fill ``head_h36m``, ``head_top`` and ``neck``
  only where the primary rows (``head_extra``, ``headtop``, ``neck_extra``) are unlabelled.

MMHuman3D's own tables also feed a few dataset-specific points into SMPL-named rows
(3DHP's ``spine3``/``spine2``/``foot`` into ``spine_3``/``spine_2``/``*_foot``; Penn Action and
PoseTrack's hips into ``left_hip``/``right_hip``, Penn Action's head into ``head``): pass the
file's ``config`` string to :func:`human_data_pairs` and those rows go, as fallbacks, to the
slots the dataset really labels.

Export (:func:`superset_to_human_data`) uses the primary, annotated mapping only. Superset
slots with no ``human_data`` row are dropped: SMPL's kinematic shoulders/elbows/wrists/
knees/ankles (their rows hold the annotated joints), COCO-WholeBody hand roots and finger
joints 1-3, the H36M-skeleton extras, 3DHP ``spine_2``/``spine_3``/``foot``. The mask says
which rows are filled.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from hmr.core.errors import ConventionError
from hmr.core.keypoints.superset import SUPERSET_INDEX, SUPERSET_JOINTS, resolve_superset_name

_HANDS = ("index", "middle", "pinky", "ring", "thumb")
_FINGERTIPS = ("thumb", "index", "middle", "ring", "pinky")

# MMHuman3D HUMAN_DATA, verbatim order (190 names).
HUMAN_DATA_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine_1", "left_knee", "right_knee", "spine_2",
    "left_ankle", "right_ankle", "spine_3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "jaw", "left_eyeball", "right_eyeball",
    *(f"left_{f}_{k}" for f in _HANDS for k in (1, 2, 3)),
    *(f"right_{f}_{k}" for f in _HANDS for k in (1, 2, 3)),
    "nose", "right_eye", "left_eye", "right_ear", "left_ear",
    "left_bigtoe", "left_smalltoe", "left_heel", "right_bigtoe", "right_smalltoe", "right_heel",
    *(f"left_{f}" for f in _FINGERTIPS), *(f"right_{f}" for f in _FINGERTIPS),
    *(f"right_eyebrow_{k}" for k in range(1, 6)), *(f"left_eyebrow_{k}" for k in range(5, 0, -1)),
    *(f"nosebridge_{k}" for k in range(1, 5)),
    "right_nose_2", "right_nose_1", "nose_middle", "left_nose_1", "left_nose_2",
    *(f"right_eye_{k}" for k in range(1, 7)),
    "left_eye_4", "left_eye_3", "left_eye_2", "left_eye_1", "left_eye_6", "left_eye_5",
    "right_mouth_1", "right_mouth_2", "right_mouth_3", "mouth_top", "left_mouth_3",
    "left_mouth_2", "left_mouth_1", "left_mouth_5", "left_mouth_4", "mouth_bottom",
    "right_mouth_4", "right_mouth_5",
    "right_lip_1", "right_lip_2", "lip_top", "left_lip_2", "left_lip_1", "left_lip_3",
    "lip_bottom", "right_lip_3",
    *(f"right_contour_{k}" for k in range(1, 9)), "contour_middle",
    *(f"left_contour_{k}" for k in range(8, 0, -1)),
    "right_hip_extra", "left_hip_extra", "neck_extra", "headtop", "pelvis_extra",
    "thorax_extra", "spine_extra", "jaw_extra", "head_extra",
    "nose_openpose", "neck_openpose", "right_shoulder_openpose", "right_elbow_openpose",
    "right_wrist_openpose", "left_shoulder_openpose", "left_elbow_openpose",
    "left_wrist_openpose", "pelvis_openpose", "right_hip_openpose", "right_knee_openpose",
    "right_ankle_openpose", "left_hip_openpose", "left_knee_openpose", "left_ankle_openpose",
    "right_eye_openpose", "left_eye_openpose", "right_ear_openpose", "left_ear_openpose",
    "left_bigtoe_openpose", "left_smalltoe_openpose", "left_heel_openpose",
    "right_bigtoe_openpose", "right_smalltoe_openpose", "right_heel_openpose",
    "spine_4_3dhp", "left_clavicle_3dhp", "right_clavicle_3dhp", "left_hand_3dhp",
    "right_hand_3dhp", "left_toe_3dhp", "right_toe_3dhp",
    "head_h36m", "headtop_h36m", "head_bottom_pt", "left_hand", "right_hand",
)
NUM_HUMAN_DATA_JOINTS = 190
HUMAN_DATA_INDEX: dict[str, int] = {n: i for i, n in enumerate(HUMAN_DATA_JOINTS)}

_SIDES = ("left", "right")
_LIMBS = ("shoulder", "elbow", "wrist", "knee", "ankle")
_SMPL_ONLY = {"pelvis": "smpl_pelvis", "spine_1": "smpl_spine_1", "spine_2": "smpl_spine_2",
              "spine_3": "smpl_spine_3", "neck": "smpl_neck", "head": "smpl_head",
              **{f"{s}_{p}": f"smpl_{s}_{p}" for s in _SIDES
                 for p in ("hip", "foot", "collar", "hand")}}
_EXPLICIT = {
    **_SMPL_ONLY,
    "jaw": "smplx_jaw", "left_eyeball": "smplx_left_eyeball", "right_eyeball": "smplx_right_eyeball",
    **{f"{s}_{f}_{k}": f"smplx_{s}_{f}_{k}" for s in _SIDES for f in _HANDS for k in (1, 2, 3)},
    **{f"{s}_{t}toe": f"{s}_{t}_toe" for s in _SIDES for t in ("big", "small")},
    **{f"{s}_{f}": f"{s}_{f}_4" for s in _SIDES for f in _FINGERTIPS},
    "right_hip_extra": "right_hip", "left_hip_extra": "left_hip", "neck_extra": "neck",
    "headtop": "head_top", "pelvis_extra": "pelvis", "thorax_extra": "thorax",
    "spine_extra": "spine_h36m", "jaw_extra": "jaw_h36m", "head_extra": "head_h36m",
    "spine_4_3dhp": "mpi3dhp_spine_4",
    **{f"{s}_{p}_3dhp": f"mpi3dhp_{s}_{p}" for s in _SIDES for p in ("clavicle", "hand", "toe")},
}
# Rows that only fill a slot its primary row left unlabelled.
FALLBACKS: dict[str, str] = {"head_h36m": "head_h36m", "headtop_h36m": "head_top",
                             "head_bottom_pt": "neck"}
# Per-dataset meaning of SMPL-named rows (MMHuman3D's convention tables for that ``config``).
CONFIG_OVERRIDES: dict[str, dict[str, str]] = {
    "mpi_inf_3dhp": {"spine_3": "mpi3dhp_spine_3", "spine_2": "mpi3dhp_spine_2",
                     "left_foot": "mpi3dhp_left_foot", "right_foot": "mpi3dhp_right_foot"},
    # MMHuman3D names Penn Action's joints as its README does, and the README's sides are the
    # person's other side (index 1 is the right shoulder: checked on all 2,326 label files, see
    # converters.penn_action): its "left_*" rows hold the person's right joints.
    "penn_action": {"head": "head_top",
                    **{f"{s}_{p}": f"{o}_{p}" for s, o in (("left", "right"), ("right", "left"))
                       for p in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")}},
    "posetrack": {"left_hip": "left_hip", "right_hip": "right_hip"},
}
LIMB_MODES = ("annotated", "smpl")


def _target(name: str, limbs: str) -> str:
    if limbs == "smpl" and any(name == f"{s}_{p}" for s in _SIDES for p in _LIMBS):
        return f"smpl_{name}"
    target = _EXPLICIT.get(name) or resolve_superset_name(name)
    if target is None:
        raise ConventionError(f"human_data joint '{name}' has no superset slot")
    return target


def _config_key(config: str | None) -> str | None:
    if not config:
        return None
    key = str(config).lower()
    return next((k for k in CONFIG_OVERRIDES if key == k or key.startswith(k)), None)


@lru_cache(maxsize=None)
def human_data_pairs(limbs: str = "annotated", config: str | None = None
                     ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Row pairs ``(hd_idx, superset_idx)``: primaries (one-to-one), then fallbacks.

    ``limbs``: 'annotated' or 'smpl' (see the module docstring); ``config``: the HumanData
    file's ``config`` string (dataset name) for per-dataset meanings of SMPL-named rows.
    """
    if limbs not in LIMB_MODES:
        raise ConventionError(f"limbs must be one of {LIMB_MODES}, not {limbs!r}")
    overrides = CONFIG_OVERRIDES.get(_config_key(config) or "", {})
    primary, fallback = [], []
    for i, name in enumerate(HUMAN_DATA_JOINTS):
        if name in FALLBACKS or name in overrides:
            fallback.append((i, SUPERSET_INDEX[overrides.get(name) or FALLBACKS[name]]))
            continue
        primary.append((i, SUPERSET_INDEX[_target(name, limbs)]))
    targets = [t for _, t in primary]
    dupes = sorted({SUPERSET_JOINTS[t] for t in targets if targets.count(t) > 1})
    if dupes:
        raise ConventionError(f"human_data rows collide on superset slots {dupes}")

    def arrays(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        a = np.array([p[0] for p in pairs], dtype=np.int64)
        b = np.array([p[1] for p in pairs], dtype=np.int64)
        a.setflags(write=False)
        b.setflags(write=False)
        return a, b

    return arrays(primary), arrays(fallback)


def human_data_to_superset(keypoints: np.ndarray, mask: np.ndarray | None = None, *,
                           limbs: str = "annotated", config: str | None = None) -> np.ndarray:
    """(..., 190, C) human_data keypoints -> (..., K, C) superset; C's last column is conf.

    ``mask`` (190,) zeroes rows the file marks as absent (their confidence becomes 0, as
    MMHuman3D's ``convert_kps(mask=...)`` does). Unfilled superset slots are all zero.
    """
    kps = np.asarray(keypoints, dtype=np.float32)
    if kps.ndim < 2 or kps.shape[-2] != NUM_HUMAN_DATA_JOINTS:
        raise ConventionError(f"human_data keypoints have shape {kps.shape}; expected (..., 190, C)")
    if mask is not None:
        keep = np.asarray(mask).reshape(-1) > 0  # (190,)
        if keep.shape != (NUM_HUMAN_DATA_JOINTS,):
            raise ConventionError(f"human_data mask has shape {np.shape(mask)}; expected (190,)")
        kps = np.where(keep[:, None], kps, np.float32(0))
    (p_src, p_dst), (f_src, f_dst) = human_data_pairs(limbs, config)
    out = np.zeros((*kps.shape[:-2], len(SUPERSET_JOINTS), kps.shape[-1]), dtype=np.float32)
    out[..., p_dst, :] = kps[..., p_src, :]
    # fallbacks fill a slot only where it is still unlabelled and the fallback row is labelled
    current, candidate = out[..., f_dst, :], kps[..., f_src, :]
    take = (current[..., -1] <= 0) & (candidate[..., -1] > 0)  # (..., F)
    out[..., f_dst, :] = np.where(take[..., None], candidate, current)
    return out


def superset_to_human_data(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., K, C) superset -> ((..., 190, C) human_data, (190,) uint8 mask).

    Primary, annotated mapping only; the mask is 1 for rows labelled (conf > 0) in at
    least one sample, as MMHuman3D's ``generate_mask_from_confidence`` computes it.
    """
    kps = np.asarray(keypoints)
    if kps.ndim < 2 or kps.shape[-2] != len(SUPERSET_JOINTS):
        raise ConventionError(f"superset keypoints have shape {kps.shape}; expected (..., "
                              f"{len(SUPERSET_JOINTS)}, C)")
    (p_src, p_dst), _ = human_data_pairs("annotated", None)
    out = np.zeros((*kps.shape[:-2], NUM_HUMAN_DATA_JOINTS, kps.shape[-1]), dtype=kps.dtype)
    out[..., p_src, :] = kps[..., p_dst, :]
    labelled = (out[..., -1] > 0).reshape(-1, NUM_HUMAN_DATA_JOINTS).any(axis=0)
    return out, labelled.astype(np.uint8)


if len(HUMAN_DATA_JOINTS) != NUM_HUMAN_DATA_JOINTS:  # pragma: no cover - table typo guard
    raise ConventionError(f"human_data table has {len(HUMAN_DATA_JOINTS)} names, expected 190")
