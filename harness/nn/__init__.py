"""Shared network blocks, the training loop of the built-in classifiers, the loop of adversarial
games (learned sanitizers), and the reference classifiers.

Importing this package imports torch; plugin modules import it inside their methods so that
``ppbench list`` stays cheap.
"""

from .adversarial import Player, adam, budget_penalty, entropy, train_adversarial
from .conditioned import ConditionedNet, unet_depth
from .networks import (CLASSIFIER_KINDS, MLP, BasicBlock, MultiHead, ResNet, SmallCNN, UNet,
                       build_classifier, conv_bn_relu, default_width, resnet10, resnet18, seeded)
from .regression import RegressionFit, fit_regressor
from .reference import (ReferenceClassifier, reference_classifier, reference_classifiers,
                        reference_fit, train_with_reference_recipe)
from .training import (FitResult, accuracy, apply_model, batch_slices, classification_loss,
                       fit_classifier, iterate_minibatches, predict_logits, recalibrate_batchnorm,
                       stratified_split, to_device, train_classifier)

__all__ = [
    "CLASSIFIER_KINDS", "MLP", "BasicBlock", "ConditionedNet", "FitResult", "MultiHead", "Player",
    "ReferenceClassifier", "RegressionFit", "adam", "fit_regressor", "budget_penalty", "entropy", "train_adversarial", "unet_depth",
    "ResNet", "SmallCNN", "UNet", "accuracy", "apply_model", "batch_slices", "build_classifier",
    "classification_loss", "conv_bn_relu", "default_width", "fit_classifier", "iterate_minibatches",
    "predict_logits", "recalibrate_batchnorm", "reference_classifier", "reference_classifiers",
    "reference_fit", "resnet10", "resnet18", "seeded", "stratified_split", "to_device",
    "train_classifier", "train_with_reference_recipe",
]
