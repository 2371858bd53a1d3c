"""ppbench's core: plugin contracts, discovery, the matrix runner, the store and leaderboards.

Plugin authors import everything they need from here::

    from ppbench import hookimpl, Sanitizer, Attack, UtilityMetric, DatasetSpec, ImageSet, Task
"""

from .api import (AUX, DISCRIMINATOR, GENERATOR, HONEST_REFERENCE, IMAGE, ORACLE, PROFILES,
                  RAW_TRAIN, RELEASE, SECRET_DECODER, VECTOR, Attack, AttackResult, AttackView,
                  CellTimeout, Context, DatasetSpec, DetectionResult, DetectorView, MetricValue,
                  MetricView, NotApplicable, PluginContractError, Profile, ReconstructionResult,
                  TRANSFORM,
                  ReferenceDetectorView, Sanitized, Sanitizer, Task, UtilityMetric, get_profile)
from .data import Attribute, DatasetSplits, ImageSet
from .handles import LatentGenerator, RealnessScorer
from .hookspecs import hookimpl
from .membership import MembershipResult, MembershipView
from .verification import VerificationResult, VerificationView
from .pixels import quantize_8bit

__version__ = "0.1.0"

__all__ = [
    "AUX", "DISCRIMINATOR", "GENERATOR", "HONEST_REFERENCE", "IMAGE", "ORACLE", "PROFILES", "RAW_TRAIN", "RELEASE",
    "SECRET_DECODER", "TRANSFORM", "VECTOR", "LatentGenerator", "MembershipResult", "MembershipView",
    "VerificationResult", "VerificationView",
    "NotApplicable", "RealnessScorer", "Attack", "AttackResult", "AttackView", "Attribute", "CellTimeout",
    "Context", "DatasetSpec", "DatasetSplits", "DetectionResult", "DetectorView", "ImageSet",
    "MetricValue", "MetricView",
    "PluginContractError", "Profile", "ReconstructionResult", "ReferenceDetectorView", "Sanitized", "Sanitizer", "Task", "UtilityMetric",
    "get_profile", "hookimpl", "quantize_8bit", "__version__",
]
