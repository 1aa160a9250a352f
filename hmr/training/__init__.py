"""Training: configs (TOML), the objective, the loop with exact resume, run folders and logs
(the checkpoint file is the model's: :mod:`hmr.models.checkpoint`)."""

from hmr.training.config import Config, DataConfig, LossConfig, OptimConfig, TrainConfig, list_configs, load_config
from hmr.training.objective import Objective
from hmr.training.trainer import Trainer

__all__ = ["Config", "DataConfig", "LossConfig", "Objective", "OptimConfig", "TrainConfig", "Trainer",
           "list_configs", "load_config"]
