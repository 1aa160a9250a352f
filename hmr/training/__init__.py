"""Training: configs (TOML), the objective, the loop with exact resume, checkpoints and logs."""

from hmr.training.checkpoint import load_checkpoint, load_model, save_checkpoint
from hmr.training.config import Config, DataConfig, LossConfig, OptimConfig, TrainConfig, list_configs, load_config
from hmr.training.objective import Objective
from hmr.training.trainer import Trainer

__all__ = ["Config", "DataConfig", "LossConfig", "Objective", "OptimConfig", "TrainConfig", "Trainer",
           "list_configs", "load_checkpoint", "load_config", "load_model", "save_checkpoint"]
