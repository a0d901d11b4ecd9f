"""Training PartCLIPSeg: the released losses, the trainer, and the ``partclipseg train`` command."""
from .losses import LossConfig, Losses, partclipseg_losses
from .trainer import TrainConfig, Trainer, export_weights

__all__ = ["LossConfig", "Losses", "TrainConfig", "Trainer", "export_weights", "partclipseg_losses"]
