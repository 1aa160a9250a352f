"""Body models: licensed SMPL files or hmrkit's licence-free SMPL-format mannequin.

Public API::

    from hmr.core.body import load_body_model, default_body_model_dir, write_mannequin
    model = load_body_model()              # $HMR_BODY_MODEL, else the mannequin (cached)
    out = model(global_orient, body_pose, betas)   # BodyOutput: vertices (B, 6890, 3), joints
    joints_only = JointsOnlyBody(model)            # same joints, no mesh (training losses, SMPLify)
    smplx_model = load_body_model(model_type="smplx")  # $HMR_SMPLX_MODEL, else the SMPL-X mannequin

Conventions: metres; SMPL axes (rest T-pose, y up, body facing +z, body's left at +x); joint
orders in :mod:`hmr.core.body.joint_names`.
"""

from hmr.core.body.joint_names import (EXTRA9_JOINT_NAMES, H36M17_JOINT_NAMES, SMPL24_JOINT_NAMES,
                                  SMPL24_PARENTS, SPIN49_FROM_SMPL54, SPIN49_JOINT_NAMES)
from hmr.core.body.joints_only import JointsOnlyBody
from hmr.core.body.mannequin import write_mannequin
from hmr.core.body.mannequin_smplx import write_smplx_mannequin
from hmr.core.body.smpl import (BodyModel, BodyOutput, default_body_model_dir, ensure_mannequin,
                           load_body_model, read_smpl_pickle, resolve_model_file)
from hmr.core.body.smplx_model import SMPLXBodyModel, SMPLXOutput, ensure_smplx_mannequin, load_smplx_model
from hmr.core.body.smplx_names import SMPLX55_JOINT_NAMES, SMPLX55_PARENTS

__all__ = [
    "BodyModel", "BodyOutput", "EXTRA9_JOINT_NAMES", "JointsOnlyBody", "H36M17_JOINT_NAMES", "SMPL24_JOINT_NAMES",
    "SMPL24_PARENTS", "SPIN49_FROM_SMPL54", "SPIN49_JOINT_NAMES", "default_body_model_dir",
    "ensure_mannequin", "load_body_model", "read_smpl_pickle", "resolve_model_file",
    "write_mannequin", "SMPLXBodyModel", "SMPLXOutput", "SMPLX55_JOINT_NAMES", "SMPLX55_PARENTS",
    "ensure_smplx_mannequin", "load_smplx_model", "write_smplx_mannequin",
]
