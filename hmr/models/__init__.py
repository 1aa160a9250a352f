"""HMR networks: timm backbones, the IEF regressor, the model that joins them (carrying its
input config, :class:`hmr.core.crop.InputConfig`) and its checkpoint file."""

from hmr.models.backbone import BACKBONE_FAMILIES, InitReport, create_backbone, load_backbone_weights
from hmr.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from hmr.models.hmr import MODEL_TYPES, HMR, HMROutput, ModelConfig, build_model, create_model, smpl_output
from hmr.models.prediction import Prediction, prediction_meshes, to_prediction
from hmr.models.regressor import IterativeRegressor, MeanParams, load_mean_params

__all__ = ["BACKBONE_FAMILIES", "HMR", "HMROutput", "InitReport", "IterativeRegressor", "MeanParams",
           "MODEL_TYPES", "ModelConfig", "Prediction", "build_model", "create_model", "prediction_meshes", "to_prediction", "create_backbone", "load_backbone_weights", "load_checkpoint",
           "load_mean_params", "load_model", "save_checkpoint", "smpl_output"]
