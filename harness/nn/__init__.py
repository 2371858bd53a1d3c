"""Shared network blocks and the one training loop that built-in plugins compose.

Importing this package imports torch; plugin modules import it inside their methods so that
``ppbench list`` stays cheap.
"""

from .networks import (CLASSIFIER_KINDS, MLP, BasicBlock, MultiHead, ResNet, SmallCNN, UNet,
                       build_classifier, conv_bn_relu, resnet10, resnet18, seeded)
from .reference import reference_classifier, task_attributes
from .training import (accuracy, apply_model, batch_slices, classification_loss,
                       iterate_minibatches, predict_logits, recalibrate_batchnorm,
                       train_classifier)

__all__ = [
    "CLASSIFIER_KINDS", "MLP", "BasicBlock", "MultiHead", "ResNet", "SmallCNN", "UNet",
    "accuracy", "apply_model", "batch_slices", "build_classifier", "classification_loss",
    "conv_bn_relu", "iterate_minibatches", "predict_logits", "reference_classifier", "resnet10",
    "recalibrate_batchnorm", "resnet18", "seeded", "task_attributes", "train_classifier",
]
