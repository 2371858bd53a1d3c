"""The ``detector`` scoring kind: can an attacker tell sanitized items from raw ones?

A generator that passes its input through when the drawn value equals the true one, or any
sanitizer whose outputs look unlike real data, is exposed by a detector even when no attribute
attack reads the secret. The view (:class:`~ppbench.api.DetectorView`) holds the sanitized attack
split, the granted raw data, and *candidates*: the test items split in two halves by a permutation
the harness draws from a seed the plugin never gets (in a sealed run it depends on the secret
salt), one half sanitized and the other raw, shuffled together. Disjoint halves, so that no
candidate can be paired with its own other version. The detector scores each candidate; the
harness scores the scores:

- ``auc`` (primary): the ROC AUC of the scores for "sanitized", 0.5 when the two cannot be told
  apart, with a 95% percentile bootstrap interval over candidates (stratified: each resample keeps
  the two halves' sizes);
- ``detection_advantage``: 2·AUC − 1.

The per-candidate membership and scores are kept as the cell's items. Detection is shown beside
the ranking; it is not part of the worst case over attribute attacks (it measures whether the
output passes for real data, not whether the secret leaks).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .api import (AUX, RAW_TRAIN, DetectionResult, DetectorView, MetricValue, PluginContractError,
                  ReferenceDetectorView)
from .data import copy_image_set
from .scoring import Scored, diagnostic_values

if TYPE_CHECKING:
    import torch

    from .kinds import ViewInputs
    from .scoring import WithheldTruth

DETECTION_BOOTSTRAP = 1000


def build_detector_view(inputs: "ViewInputs") -> tuple[DetectorView, "torch.Tensor"]:
    """The view, and the candidates' membership (1 = sanitized) that the harness withholds."""
    import torch

    raw_test, sanitized_test = inputs.raw.test, inputs.sanitized_test
    n = len(raw_test) // 2 * 2
    generator = torch.Generator().manual_seed(inputs.secret_seed % (2**63 - 1))
    items = torch.randperm(len(raw_test), generator=generator)[:n]
    sanitized_items, raw_items = items[: n // 2], items[n // 2:]
    candidates = torch.cat([sanitized_test.images[sanitized_items], raw_test.images[raw_items]])
    membership = torch.cat([torch.ones(n // 2, dtype=torch.long), torch.zeros(n // 2, dtype=torch.long)])
    order = torch.randperm(n, generator=generator)
    raw = (inputs.raw.aux if AUX in inputs.granted else
           inputs.raw.train if RAW_TRAIN in inputs.granted else None)
    view = DetectorView(sanitized=inputs.sanitized_attack.without_labels(),
                        raw=raw.without_labels() if raw is not None else None,
                        candidates=candidates[order])
    return view, membership[order]


def build_reference_detector_view(inputs: "ViewInputs") -> tuple[ReferenceDetectorView, "torch.Tensor"]:
    """The ``reference-detector`` view: the sanitizer's outputs beside its honest reference's (for
    the same attack items), and candidates from disjoint halves of the test items, one half
    through each model; returns the view and the withheld membership (1 = the sanitizer's)."""
    import torch

    reference = inputs.reference
    if reference is None:  # resolve_requirements makes such a cell n/a first
        raise PluginContractError("a reference-detector view needs the honest reference's outputs")
    suspect_test, reference_test = inputs.sanitized_test, reference.test
    n = len(suspect_test) // 2 * 2
    generator = torch.Generator().manual_seed(inputs.secret_seed % (2**63 - 1))
    items = torch.randperm(len(suspect_test), generator=generator)[:n]
    candidates = torch.cat([suspect_test.images[items[: n // 2]], reference_test.images[items[n // 2:]]])
    membership = torch.cat([torch.ones(n // 2, dtype=torch.long), torch.zeros(n // 2, dtype=torch.long)])
    order = torch.randperm(n, generator=generator)
    view = ReferenceDetectorView(suspect=inputs.sanitized_attack.without_labels(),
                                 reference=reference.attack.without_labels(),
                                 candidates=candidates[order])
    return view, membership[order]


def lend_reference_detector_view(view: ReferenceDetectorView) -> ReferenceDetectorView:
    """A copy for a sandbox: no tensor shared with the harness."""
    return replace(view, suspect=copy_image_set(view.suspect), reference=copy_image_set(view.reference),
                   candidates=view.candidates.clone())


def lend_detector_view(view: DetectorView) -> DetectorView:
    """A copy for a sandbox: no tensor shared with the harness."""
    return replace(view, sanitized=copy_image_set(view.sanitized), raw=copy_image_set(view.raw),
                   candidates=view.candidates.clone())


def score_detection(result: Any, truth: "WithheldTruth", source: str,
                    membership: "torch.Tensor") -> Scored:
    """AUC of the detector's scores against the withheld membership (see the module doc)."""
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    if not isinstance(result, DetectionResult):
        raise PluginContractError(f"{source}: run() must return a DetectionResult, got "
                                  f"{type(result).__name__}")
    scores = result.scores
    if not isinstance(scores, torch.Tensor):
        raise PluginContractError(f"{source}: DetectionResult.scores must be a tensor, got "
                                  f"{type(scores).__name__}")
    if scores.dim() != 1 or len(scores) != len(membership):
        raise PluginContractError(f"{source}: expected {len(membership)} scores (one per candidate), "
                                  f"got shape {tuple(scores.shape)}")
    scores = scores.detach().cpu().double()
    if not torch.isfinite(scores).all():
        raise PluginContractError(f"{source}: the detection scores contain NaN or inf")
    truth_array = membership.numpy().astype(np.int64)
    score_array = scores.numpy()
    auc = float(roc_auc_score(truth_array, score_array))
    low, high = _stratified_bootstrap_auc(truth_array, score_array, seed=len(truth_array))
    values = [
        MetricValue("auc", auc, better="lower", role="leakage", primary=True, ci_low=low,
                    ci_high=high, chance=0.5),
        MetricValue("detection_advantage", 2 * auc - 1, better="lower", role="leakage", chance=0.0),
    ] + diagnostic_values(result.diagnostics, source)
    return Scored(values, {"membership": truth_array, "scores": score_array})


def _stratified_bootstrap_auc(truth: "Any", scores: "Any", seed: int) -> tuple[float, float]:
    """95% percentile interval of the AUC over resamples that keep each class's count. Ranks are
    computed once: the AUC of a resample is the Mann-Whitney statistic on its members."""
    import numpy as np
    from scipy.stats import rankdata

    positives, negatives = np.flatnonzero(truth == 1), np.flatnonzero(truth == 0)
    if len(positives) < 2 or len(negatives) < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng([seed, 104723])
    aucs = np.empty(DETECTION_BOOTSTRAP)
    for b in range(DETECTION_BOOTSTRAP):
        chosen = np.concatenate([rng.choice(positives, len(positives)),
                                 rng.choice(negatives, len(negatives))])
        ranks = rankdata(scores[chosen])
        rank_sum = ranks[: len(positives)].sum()
        aucs[b] = (rank_sum - len(positives) * (len(positives) + 1) / 2) / (len(positives) * len(negatives))
    low, high = np.percentile(aucs, [2.5, 97.5])
    return float(low), float(high)
