"""The ``verification`` scoring kind: open-set re-identification, as face recognition is judged.

A verification attack is a recognizer. It trains on **other identities** (people no other split
shows, ``DatasetSplits.other_identities``), so it never sees a test identity in training, and
embeds a **gallery** (enrollment images of the test identities, with their names) and the
**probes** (every sanitized test image, unlabelled). It returns one embedding per gallery image
and per probe (:class:`VerificationResult`); the harness alone knows who each probe is.

What the attacker holds is its threat model, one of the VoicePrivacy attacker-knowledge levels:

- ``raw-enrolled`` (*ignorant*): a recognizer trained on raw images, a raw gallery (the people's
  own photographs) against sanitized probes;
- ``lazy-enrolled`` (*lazy-informed*): the same recognizer, with the gallery sanitized by the
  same sanitizer;
- ``sanitized-recognizer`` (*semi-informed*): the recognizer trained on the other identities'
  images sanitized by the same sanitizer, with a sanitized gallery.

The gallery holds ``gallery_images`` items per test identity (an attribute of the attack, 1 to
10, default 1), drawn from the attack split in an order no plugin is given. Scoring, by the
harness: embeddings are L2-normalised, each identity's template is the normalised mean of its
gallery embeddings, and a probe's score against a template is their cosine. Its own identity's
template gives a genuine comparison, every other template an impostor one.

- ``tar_at_1pct_far`` (primary) and ``tar_at_0.1pct_far``: the true accept rate at that false
  accept rate, on the ROC through every distinct score, interpolated linearly between its points
  (a randomised threshold: for uninformative, tied scores TAR = FAR). A FAR is reported only with
  at least 10/FAR impostor comparisons (so that at least ten impostor scores lie above the
  threshold) from at least 1/FAR pairs of distinct identities; with 50 test identities both
  figures are reported, with 10 only the 1% one. Chance is the FAR itself;
- ``advantage``: TAR at 1% FAR on the advantage scale of the other attacks, (TAR − FAR) /
  (1 − FAR): 0 at chance, 1 for a recognizer that accepts every genuine pair; this is the figure
  that joins a board's worst case over attacks;
- ``eer``: the equal error rate (FAR = 1 − TAR), 0.5 at chance;
- ``rank1``: closed-set identification, the share of probes whose best template is their own
  (ties broken by a withheld random order); chance is 1/(number of templates);
- 95% intervals from a bootstrap over identities (not images: one person's images are not
  independent): each replicate draws test identities with replacement, and their probes and
  templates count as often as they were drawn, impostor pairs as the product;
- the most exposed individuals (:mod:`ppbench.exposure`): each identity's own TAR at the global
  1%-FAR threshold minus the false accept rate of its own template there (per-person
  informedness: 0 when its template accepts its own probes no more often than strangers').
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .api import MetricValue, NotApplicable, PluginContractError
from .data import ImageSet, copy_image_set
from .scoring import CELL_BOOTSTRAP, Scored, diagnostic_values

if TYPE_CHECKING:
    import torch

    from .kinds import ViewInputs
    from .scoring import WithheldTruth

FAR_TARGETS = ((0.01, "tar_at_1pct_far"), (0.001, "tar_at_0.1pct_far"))
MIN_IMPOSTORS_ABOVE = 10
MAX_GALLERY_IMAGES = 10
SCORE_DECIMALS = 6
RAW, SANITIZED = "raw", "sanitized"
# What each verification threat model holds: (recognizer training images, gallery images).
HOLDINGS = {"raw-enrolled": (RAW, RAW), "lazy-enrolled": (RAW, SANITIZED),
            "sanitized-recognizer": (SANITIZED, SANITIZED)}


@dataclass
class VerificationView:
    """What a verification attack gets. ``train``: other identities' images with their own
    ``identity`` labels (raw or sanitized, as its threat model says); ``gallery``: enrollment
    images of the test identities labelled with the task's sensitive attribute (raw or
    sanitized); ``probes``: the sanitized test images, no labels."""

    train: ImageSet
    gallery: ImageSet
    probes: "torch.Tensor"
    holdings: tuple[str, str] = (RAW, RAW)


@dataclass
class VerificationResult:
    """One embedding per gallery image and per probe, in order (G×D and N×D, the same D)."""

    gallery: "torch.Tensor"
    probes: "torch.Tensor"
    diagnostics: dict[str, float] = field(default_factory=dict)
    # The attack budget that produced the figures, recorded with them (``ppbench show`` prints
    # it): see :data:`ppbench.api.BUDGET_FIELDS` for the names the built-ins use.
    budget: dict[str, float] = field(default_factory=dict)


@dataclass
class VerificationTruth:
    """What the harness withholds: each probe's identity and a tie-breaking seed."""

    gallery_labels: np.ndarray
    seed: int


def build_verification_view(inputs: "ViewInputs") -> tuple[VerificationView, VerificationTruth]:
    from .kinds import threat_model

    task = inputs.task
    if task is None:
        raise PluginContractError("a verification view needs the cell's task")
    others = inputs.raw.other_identities
    if others is None:
        raise NotApplicable("the data set has no other identities (people no other split "
                            "shows) to train a recognizer on")
    if task.sensitive != "identity":
        raise NotApplicable(f"re-identification measures who is shown; task {task.name!r} hides "
                            f"{task.sensitive!r}")
    model = threat_model(inputs.attack)
    if model.id not in HOLDINGS:
        raise PluginContractError(f"attack {inputs.attack.name!r}: a verification attack declares "
                                  f"one of the threat models {sorted(HOLDINGS)}, not {model.id!r}")
    train_from, gallery_from = HOLDINGS[model.id]
    per_identity = getattr(inputs.attack, "gallery_images", 1)
    if not isinstance(per_identity, int) or isinstance(per_identity, bool) or not 1 <= per_identity <= MAX_GALLERY_IMAGES:
        raise PluginContractError(f"attack {inputs.attack.name!r}: gallery_images must be an "
                                  f"integer in 1..{MAX_GALLERY_IMAGES}, got {per_identity!r}")
    if train_from == SANITIZED and inputs.sanitized_other_identities is None:
        raise NotApplicable("the sanitizer produced no sanitized other identities (a release "
                            "has no transform to apply to them)")
    gallery_index = _gallery_index(inputs.raw.attack.labels[task.sensitive], per_identity,
                                   inputs.secret_seed)
    enrolled = set(inputs.raw.attack.labels[task.sensitive][gallery_index].tolist())
    test_labels = inputs.raw.test.labels[task.sensitive].tolist()
    probes_enrolled = sum(1 for label in test_labels if label in enrolled)
    probe_identities = len(enrolled & set(test_labels))
    target = FAR_TARGETS[0][0]
    if not far_is_reported(target, probes_enrolled * (len(enrolled) - 1),
                           probe_identities * (len(enrolled) - 1)):
        raise NotApplicable(f"too few test identities for a TAR at 1% FAR: {len(enrolled)} "
                            f"enrolled give {probes_enrolled * (len(enrolled) - 1)} impostor "
                            f"comparisons from {probe_identities * (len(enrolled) - 1)} identity "
                            f"pairs; the rule needs {MIN_IMPOSTORS_ABOVE / target:.0f} from "
                            f"{1 / target:.0f}")
    source = inputs.raw.attack if gallery_from == RAW else inputs.sanitized_attack
    labels = source.labels[task.sensitive][gallery_index]
    attribute = source.attributes[task.sensitive]
    gallery = ImageSet(source.images[gallery_index], {task.sensitive: labels},
                       {task.sensitive: attribute})
    train = others if train_from == RAW else inputs.sanitized_other_identities
    train = ImageSet(train.images, {"identity": train.labels["identity"]},
                     {"identity": train.attributes["identity"]})
    view = VerificationView(train, gallery, inputs.sanitized_test.images, (train_from, gallery_from))
    return view, VerificationTruth(labels.cpu().numpy().astype(np.int64), inputs.secret_seed)


def _gallery_index(labels: "torch.Tensor", per_identity: int, seed: int) -> "torch.Tensor":
    """The first ``per_identity`` items of each identity in a withheld random order."""
    import torch

    generator = torch.Generator().manual_seed(seed % (2**63 - 1))
    order = torch.randperm(len(labels), generator=generator)
    chosen, taken = [], {}
    for index in order.tolist():
        identity = int(labels[index])
        if taken.get(identity, 0) < per_identity:
            taken[identity] = taken.get(identity, 0) + 1
            chosen.append(index)
    return torch.tensor(sorted(chosen), dtype=torch.long)


def lend_verification_view(view: VerificationView) -> VerificationView:
    return replace(view, train=copy_image_set(view.train), gallery=copy_image_set(view.gallery),
                   probes=view.probes.clone())


# --- scoring -------------------------------------------------------------------------------------


def roc_points(genuine: np.ndarray, impostor: np.ndarray, genuine_weight: np.ndarray | None = None,
               impostor_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every distinct score, from the highest down, starting at (0, 0); weights
    count comparisons (a bootstrap's multiplicities)."""
    scores = np.concatenate([genuine, impostor])
    is_genuine = np.concatenate([np.ones(genuine.size, bool), np.zeros(impostor.size, bool)])
    weights = np.concatenate([np.ones(genuine.size) if genuine_weight is None else genuine_weight,
                              np.ones(impostor.size) if impostor_weight is None else impostor_weight])
    order = np.argsort(-scores, kind="stable")
    return _roc_sorted(scores[order], is_genuine[order], weights[order])


def _roc_sorted(scores: np.ndarray, is_genuine: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ends = np.flatnonzero(np.diff(scores) != 0)
    ends = np.append(ends, scores.size - 1)
    true_accepts = np.cumsum(np.where(is_genuine, weights, 0.0))[ends]
    false_accepts = np.cumsum(np.where(is_genuine, 0.0, weights))[ends]
    tar = np.concatenate([[0.0], true_accepts / max(true_accepts[-1], 1e-300)])
    far = np.concatenate([[0.0], false_accepts / max(false_accepts[-1], 1e-300)])
    return far, tar


def tar_at_far(far: np.ndarray, tar: np.ndarray, target: float) -> float:
    """TAR at ``target`` FAR, interpolated linearly between ROC points (a randomised threshold)."""
    i = int(np.searchsorted(far, target, side="right")) - 1
    if i >= far.size - 1:
        return float(tar[-1])
    step = far[i + 1] - far[i]
    return float(tar[i] + (tar[i + 1] - tar[i]) * (target - far[i]) / step)


def equal_error_rate(far: np.ndarray, tar: np.ndarray) -> float:
    """Where FAR = 1 − TAR on the interpolated ROC."""
    gap = far + tar - 1.0  # −1 at (0, 0), +1 at (1, 1), non-decreasing
    i = int(np.searchsorted(gap, 0.0, side="left"))
    if i == 0:
        return 0.0
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


def _embeddings(tensor: Any, rows: int, name: str, source: str) -> np.ndarray:
    import torch

    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 2 or tensor.shape[0] != rows:
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise PluginContractError(f"{source}: {name} embeddings must be a {rows}×D tensor, got {shape}")
    values = tensor.detach().cpu().double().numpy()
    if not np.isfinite(values).all():
        raise PluginContractError(f"{source}: {name} embeddings contain NaN or inf")
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return np.divide(values, norms, out=np.zeros_like(values), where=norms > 0)


@dataclass
class Comparisons:
    """Every probe against every template: scores (N×T), each probe's own template (−1: none)."""

    scores: np.ndarray
    own: np.ndarray
    probe_identity: np.ndarray
    template_identity: np.ndarray

    @property
    def genuine(self) -> np.ndarray:
        usable = self.own >= 0
        return self.scores[np.flatnonzero(usable), self.own[usable]]

    def impostor_mask(self) -> np.ndarray:
        mask = self.probe_identity[:, None] != self.template_identity[None, :]
        return mask & (self.own >= 0)[:, None]


def compare(gallery: np.ndarray, gallery_labels: np.ndarray, probes: np.ndarray,
            probe_labels: np.ndarray) -> Comparisons:
    identities = np.unique(gallery_labels)
    templates = np.stack([gallery[gallery_labels == i].mean(axis=0) for i in identities])
    norms = np.linalg.norm(templates, axis=1, keepdims=True)
    templates = np.divide(templates, norms, out=np.zeros_like(templates), where=norms > 0)
    position = {int(identity): t for t, identity in enumerate(identities)}
    own = np.array([position.get(int(label), -1) for label in probe_labels])
    # Cosines that differ only by floating-point noise are ties: identical images (a blacked-out
    # face) embedded in different batch positions must not rank one template above the others.
    scores = np.round(probes @ templates.T, SCORE_DECIMALS)
    return Comparisons(scores, own, np.asarray(probe_labels), identities)


def far_is_reported(target: float, impostors: int, identity_pairs: int) -> bool:
    return impostors >= MIN_IMPOSTORS_ABOVE / target and identity_pairs >= 1.0 / target


def rank1_hits(comparisons: Comparisons, seed: int) -> np.ndarray:
    """Per probe with a template: is its own template the best? Ties go to a random one."""
    rng = np.random.default_rng(seed)
    scores = comparisons.scores
    tie_break = rng.random(scores.shape)
    best = np.where(scores == scores.max(axis=1, keepdims=True), tie_break, -1.0).argmax(axis=1)
    usable = comparisons.own >= 0
    return best[usable] == comparisons.own[usable]


def verification_figures(comparisons: Comparisons, probe_weight: np.ndarray | None = None,
                         template_weight: np.ndarray | None = None) -> dict[str, float]:
    """TAR at each FAR target, EER (unreported FARs included: the caller decides)."""
    usable = comparisons.own >= 0
    mask = comparisons.impostor_mask()
    genuine = comparisons.genuine
    impostor = comparisons.scores[mask]
    gw = iw = None
    if probe_weight is not None and template_weight is not None:
        gw = probe_weight[usable]
        iw = (probe_weight[:, None] * template_weight[None, :])[mask]
    far, tar = roc_points(genuine, impostor, gw, iw)
    figures = {name: tar_at_far(far, tar, target) for target, name in FAR_TARGETS}
    figures["eer"] = equal_error_rate(far, tar)
    return figures


def identity_exposure(comparisons: Comparisons, target: float = FAR_TARGETS[0][0]):
    """Per test identity, how much better than chance the recognizer verifies it at the global
    ``target``-FAR threshold: its own TAR minus the false accept rate of its template (the
    impostor probes accepted against it), the per-person informedness. A template that accepts
    every probe (a constant sanitized face against a raw gallery) exposes nobody."""
    from .exposure import GroupLeakage, half_of_each_group

    mask = comparisons.impostor_mask()
    impostor = np.sort(comparisons.scores[mask])[::-1]
    usable = comparisons.own >= 0
    labels = comparisons.probe_identity
    # Every test identity, in sorted order (NaN for one with no template), as attribute cells list
    # them: the board pairs the two kinds' identities.
    every = np.unique(labels)
    # The randomised threshold at FAR = target: accept scores above tau, and at tau a fraction.
    position = target * impostor.size
    index = min(int(math.floor(position)), impostor.size - 1)
    tau = impostor[index]
    above = int((impostor > tau).sum())
    tied = int((impostor == tau).sum())
    fraction = min(1.0, max(0.0, (position - above) / tied)) if tied else 0.0
    accepted = (comparisons.scores > tau) + fraction * (comparisons.scores == tau)
    template_of = {int(identity): t for t, identity in enumerate(comparisons.template_identity)}
    half = half_of_each_group(labels)
    halves = np.full((every.size, 2), math.nan)
    whole, tested, se = (np.full(every.size, math.nan) for _ in range(3))
    for g, name in enumerate(every):
        t = template_of.get(int(name))
        mine = (labels == name) & usable
        others = mask[:, t] if t is not None else None
        if t is None or not mine.any() or not others.any():
            continue
        for h in (0, 1):
            own_part, other_part = mine & (half == h), others & (half == h)
            if own_part.any() and other_part.any():
                halves[g, h] = float(accepted[own_part, t].mean()) - float(accepted[other_part, t].mean())
        n, m = int(mine.sum()), int(others.sum())
        false_rate = float(accepted[others, t].mean())
        whole[g] = float(accepted[mine, t].mean()) - false_rate
        adjusted = (float(accepted[mine, t].sum()) + 1) / (n + 2)
        adjusted_false = (float(accepted[others, t].sum()) + 1) / (m + 2)
        tested[g] = adjusted - adjusted_false
        se[g] = math.sqrt(adjusted * (1 - adjusted) / n + adjusted_false * (1 - adjusted_false) / m)
    return GroupLeakage(halves, whole, tested, se)


def score_verification(result: Any, truth: "WithheldTruth", source: str,
                       withheld: VerificationTruth) -> Scored:
    from .exposure import exposure_values

    if not isinstance(result, VerificationResult):
        raise PluginContractError(f"{source}: run() must return a VerificationResult, got {type(result).__name__}")
    attribute = truth.task.sensitive
    probe_labels = truth.test.labels[attribute].cpu().numpy().astype(np.int64)
    gallery = _embeddings(result.gallery, withheld.gallery_labels.size, "gallery", source)
    probes = _embeddings(result.probes, probe_labels.size, "probe", source)
    if gallery.shape[1] != probes.shape[1]:
        raise PluginContractError(f"{source}: gallery and probe embeddings differ in dimension "
                                  f"({gallery.shape[1]} and {probes.shape[1]})")
    comparisons = compare(gallery, withheld.gallery_labels, probes, probe_labels)
    usable = comparisons.own >= 0
    if not usable.any():
        raise PluginContractError(f"{source}: no probe's identity is in the gallery")
    figures = verification_figures(comparisons)
    hits = rank1_hits(comparisons, withheld.seed)
    figures["rank1"] = float(hits.mean())
    replicates = _identity_bootstrap(comparisons, hits, withheld.seed)
    impostors = int(comparisons.impostor_mask().sum())
    templates = comparisons.template_identity.size
    probe_ids = np.unique(comparisons.probe_identity[usable]).size
    identity_pairs = probe_ids * (templates - 1)
    values = []
    for target, name in FAR_TARGETS:
        if not far_is_reported(target, impostors, identity_pairs):
            continue
        low, high = np.quantile(replicates[name], [0.025, 0.975])
        values.append(MetricValue(name, figures[name], better="lower", role="leakage",
                                  primary=name == FAR_TARGETS[0][1], ci_low=float(low),
                                  ci_high=float(high), chance=target))
        if name == FAR_TARGETS[0][1]:
            target_far = FAR_TARGETS[0][0]
            scale = lambda tar: (tar - target_far) / (1.0 - target_far)  # noqa: E731
            values.append(MetricValue("advantage", scale(figures[name]), better="lower", role="leakage",
                                      ci_low=float(scale(low)), ci_high=float(scale(high)), chance=0.0))
    for name, chance, better in (("eer", 0.5, "higher"), ("rank1", 1.0 / templates, "lower")):
        low, high = np.quantile(replicates[name], [0.025, 0.975])
        values.append(MetricValue(name, figures[name], better=better, role="leakage",
                                  ci_low=float(low), ci_high=float(high), chance=chance))
    exposure, items = exposure_values(identity_exposure(comparisons), seed=withheld.seed)
    values += exposure
    values += diagnostic_values({"gallery_templates": templates, "impostor_comparisons": impostors,
                                 **result.diagnostics}, source)
    return Scored(values, items)


def _identity_bootstrap(comparisons: Comparisons, hits: np.ndarray, seed: int,
                        n_boot: int = CELL_BOOTSTRAP) -> dict[str, np.ndarray]:
    """Replicates of every figure, resampling test identities (see the module doc)."""
    rng = np.random.default_rng(seed + 1)
    identities = np.unique(np.concatenate([comparisons.probe_identity, comparisons.template_identity]))
    lookup = {int(identity): i for i, identity in enumerate(identities)}
    probe_slot = np.array([lookup[int(i)] for i in comparisons.probe_identity])
    template_slot = np.array([lookup[int(i)] for i in comparisons.template_identity])
    usable = comparisons.own >= 0
    mask = comparisons.impostor_mask()
    genuine = comparisons.genuine
    impostor = comparisons.scores[mask]
    scores = np.concatenate([genuine, impostor])
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    is_genuine = np.concatenate([np.ones(genuine.size, bool), np.zeros(impostor.size, bool)])[order]
    pair_probe = np.concatenate([probe_slot[usable], np.broadcast_to(probe_slot[:, None], mask.shape)[mask]])[order]
    pair_template = np.concatenate([np.full(genuine.size, -1),
                                    np.broadcast_to(template_slot[None, :], mask.shape)[mask]])[order]
    hit_slot = probe_slot[usable]
    out: dict[str, list[float]] = {name: [] for _, name in FAR_TARGETS}
    out.update(eer=[], rank1=[])
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, identities.size, identities.size),
                             minlength=identities.size).astype(float)
        weights = counts[pair_probe] * np.where(pair_template >= 0, counts[np.maximum(pair_template, 0)], 1.0)
        if not (weights[is_genuine].sum() > 0 and weights[~is_genuine].sum() > 0):
            continue
        far, tar = _roc_sorted(sorted_scores, is_genuine, weights)
        for target, name in FAR_TARGETS:
            out[name].append(tar_at_far(far, tar, target))
        out["eer"].append(equal_error_rate(far, tar))
        hit_weights = counts[hit_slot]
        out["rank1"].append(float((hits * hit_weights).sum() / hit_weights.sum()))
    return {name: np.asarray(values) for name, values in out.items()}
