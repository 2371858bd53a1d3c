"""The ``membership`` scoring kind: can an attacker tell who was in the sanitizer's fit set?

A membership attack gets a :class:`MembershipView`: *candidates*, raw images of real people, half
of them **members** (a random subset of the sanitizer's fit split) and half **non-members** (as
many items of the test split, which no sanitizer ever fits on and no attacker ever gets raw),
shuffled and unlabelled, plus whatever its threat model grants (the release, the white-box
handles, the oracle, public aux data). It returns one score per candidate, higher meaning "more
likely a member" (:class:`MembershipResult`). Which candidate is which the harness alone knows.

The candidate set of one (data, seed) is drawn once, from a seed no plugin gets (in a sealed run
it depends on the salt), and shared by every membership cell of every sanitizer fitted on that
data: the board's paired tests compare attacks and rows on the same people. Each cell sees its
own shuffle of it, and the scores are put back in the set's order before anything is stored, so
that stored results of one cell say nothing about the order another cell is shown.

Scores, all from the withheld membership:

- ``accuracy`` (primary figure of the cell): Webster et al.'s Algorithm 1. The N highest-scoring
  candidates are called members, N being the number of members; the fraction of right calls.
  Chance is exactly 0.5. Ties at the threshold are broken by a withheld random order;
- ``advantage``: 2·accuracy − 1, which at Algorithm 1's threshold is TPR − FPR (Yeom et al.'s
  membership advantage); 0 at chance. The board's membership worst case is taken on it;
- ``auc``: the ROC AUC (Mann-Whitney, ties counted half, as scikit-learn's ``roc_auc_score``);
- ``tpr_at_1pct_fpr``, and ``tpr_at_0.1pct_fpr`` only with at least 1,000 non-members (LiRA's
  rule: below that, an FPR of 0.1% is less than one false positive and the figure is undefined):
  the highest TPR at a score threshold whose FPR does not exceed the target, as read from
  scikit-learn's ``roc_curve``;
- 95% intervals for every figure from a stratified bootstrap over candidates (each resample keeps
  the members' and non-members' counts; Algorithm 1 is applied again inside each resample).

**Canaries** (``canaries = N`` in a spec's ``[benchmark]`` table; 0, the default, is off). The
figures above are average-case: random members of the fit split. Privacy audits (Carlini et al.'s
canaries; Aerni, Zhang and Tramèr, CCS 2024) also ask about the most vulnerable records, which an
average hides. With N > 0 the harness, before the sanitizer is fit, makes 2N *atypical* records
(:func:`make_canaries`, from a seed no plugin gets: derived from the run seed, the data's key and,
in a sealed run, the salt): each an image of i.i.d. uniform 8-bit noise (vector data: a point at
3·√D standard deviations from the train mean, in a random direction), with every label drawn
uniformly at random. They are atypical because nothing in the data looks like them, no label can
be inferred from them, and each is independent of every other: a model can only place a canary by
memorising it, and a canary member and a canary non-member are exchangeable until the fit. N of
them (the canary members) are shuffled into the sanitizer's fit split, which is then ``len(train)
+ N`` items (and a release's ``n``); the other N are held out (the canary non-members). No split
holds them: attack, test and aux views, and ``raw_train``, stay as they are; the fit's cache key,
and every cell's key, include N, so a canary-free fit is never reused.

Every membership cell's candidates then also hold the 2N canaries, shuffled in, with nothing to
tell them apart (``n_members`` counts the canary members too). The average-case figures above are
computed on the non-canary candidates exactly as without canaries (same candidates, same tie
order, same bootstrap draws), and the stored per-candidate items are theirs. Beside them:

- ``canary_auc``: the AUC of the canary members against the canary non-members;
- ``canary_tpr_at_1pct_fpr`` (only with N ≥ 100) and ``canary_tpr_at_0.1pct_fpr`` (N ≥ 1,000):
  the TPR over the canary members at a threshold whose FPR **over the canary non-members** does
  not exceed the target, with the same rule as above for when such a figure is defined. The
  threshold is set on the canaries, not on the average-case non-members: an attack whose scores
  are merely shifted for atypical inputs would otherwise look perfect on canaries without having
  learnt anything about membership;
- each with a 95% stratified bootstrap interval over the canaries; role ``leakage``, never the
  primary figure. The canaries' membership and scores are stored as the items ``canary_truth``
  and ``canary_scores``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from .api import AUX, ORACLE, RELEASE, MetricValue, PluginContractError
from .data import DatasetSplits, ImageSet, copy_image_set
from .guards import output_images
from .pixels import quantize_8bit
from .scoring import Scored, diagnostic_values

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .kinds import ViewInputs
    from .scoring import WithheldTruth

MEMBERSHIP_BOOTSTRAP = 1000
LOW_FPR_TARGETS = ((0.01, "tpr_at_1pct_fpr", 100), (0.001, "tpr_at_0.1pct_fpr", 1000))


@dataclass
class MembershipView:
    """What a membership attack gets. ``candidates``: raw images (N×C×H×W), members and
    non-members shuffled together, no labels; ``n_members``: how many are members (half; with
    canaries, the canary members included).
    ``release``: the released surrogate set with its labels, when ``release`` is granted;
    ``handles``: the granted white-box handles (``discriminator``, ``generator``); ``oracle``:
    query access to a transform-mode sanitizer; ``aux``: public raw data, disjoint from every
    candidate. Fields not granted are ``None`` (or empty)."""

    candidates: "torch.Tensor"
    n_members: int
    release: ImageSet | None = None
    aux: ImageSet | None = None
    oracle: Callable[["torch.Tensor"], "torch.Tensor"] | None = None
    handles: dict[str, Any] = field(default_factory=dict)


@dataclass
class MembershipResult:
    """One score per candidate, in the candidates' order: higher means more likely a member."""

    scores: "torch.Tensor"
    diagnostics: dict[str, float] = field(default_factory=dict)
    # The attack budget that produced the figures, recorded with them (``ppbench show`` prints
    # it): see :data:`ppbench.api.BUDGET_FIELDS` for the names the built-ins use.
    budget: dict[str, float] = field(default_factory=dict)


@dataclass
class MembershipTruth:
    """What the harness keeps back: which candidates (in the shown order) are members, how to
    put the shown order back into the set's order, and the withheld tie-breaking order."""

    membership: "torch.Tensor"  # (2N,) 1 = member, in the set's order
    shown: "torch.Tensor"  # shown position p holds the set's item shown[p]
    tie_break: "torch.Tensor"  # a random rank per item of the set, for ties at the threshold
    # Which items of the set are canaries (bool, in the set's order); None: no canaries.
    canary: "torch.Tensor | None" = None


# --- canaries ------------------------------------------------------------------------------------


@dataclass
class Canaries:
    """The atypical records of a run with ``canaries = N`` (see the module doc): ``members``, the
    N shuffled into the sanitizer's fit split, and ``non_members``, the N held out. ``order``: the
    fit split's order, a permutation of the train split followed by the members."""

    members: ImageSet
    non_members: ImageSet
    order: "torch.Tensor"

    def __len__(self) -> int:
        return len(self.members)


def make_canaries(train: ImageSet, count: int, seed: int) -> Canaries | None:
    """2 × ``count`` atypical records for the data whose train split is ``train``, drawn from
    ``seed`` (one no plugin gets); None when ``count`` is 0. Images: i.i.d. uniform 8-bit noise;
    vectors: points at 3·√D standard deviations from the train mean in a random direction; every
    label uniform over its classes. The first half are the members."""
    import torch

    if count <= 0:
        return None
    generator = torch.Generator().manual_seed(seed % (2**63 - 1))
    total = 2 * count
    if train.is_image:
        images = quantize_8bit(torch.rand(total, *train.shape, generator=generator))
    else:
        values = train.images.double().flatten(1)
        mean = values.mean(dim=0)
        std = torch.nan_to_num(values.std(dim=0)).clamp_min(1e-6)
        direction = torch.randn(total, values.shape[1], generator=generator, dtype=torch.float64)
        direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
        radius = 3.0 * math.sqrt(values.shape[1])
        images = (mean + std * radius * direction).to(torch.float32).view(total, *train.shape)
    labels = {name: torch.randint(0, train.num_classes(name), (total,), generator=generator)
              for name in sorted(train.labels)}
    made = ImageSet(images, labels, dict(train.attributes))
    order = torch.randperm(len(train) + count, generator=generator)
    return Canaries(made.subset(slice(0, count)), made.subset(slice(count, total)), order)


def fit_split(train: ImageSet, canaries: Canaries | None) -> ImageSet:
    """What the sanitizer fits on: the train split, with the canary members shuffled in."""
    import torch

    if canaries is None:
        return train
    members = canaries.members
    joined = ImageSet(torch.cat([train.images, members.images]),
                      {name: torch.cat([values, members.labels[name]])
                       for name, values in train.labels.items()}, dict(train.attributes))
    return joined.subset(canaries.order)


def fit_splits(splits: DatasetSplits, canaries: Canaries | None) -> DatasetSplits:
    """``splits`` with the fit split (:func:`fit_split`) in place of the train split, for the fit."""
    return splits if canaries is None else replace(splits, train=fit_split(splits.train, canaries))


def candidate_set(inputs: "ViewInputs") -> tuple["torch.Tensor", "torch.Tensor", "torch.Tensor",
                                                   "torch.Tensor | None"]:
    """The (data, seed)'s candidates in the set's order, their membership, a tie-break order and
    which are canaries (None without), all drawn from ``inputs.membership_seed``. The canaries
    follow the average-case candidates in the set's order, which is never shown; the draws of
    the average-case candidates are those of a run without canaries."""
    import torch

    train, test = inputs.raw.train, inputs.raw.test
    n = min(len(train), len(test))
    if n < 2:
        raise PluginContractError("a membership view needs at least 2 train and 2 test items")
    generator = torch.Generator().manual_seed(inputs.membership_seed % (2**63 - 1))
    members = torch.randperm(len(train), generator=generator)[:n]
    non_members = torch.randperm(len(test), generator=generator)[:n]
    images = torch.cat([train.images[members], test.images[non_members]])
    membership = torch.cat([torch.ones(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)])
    order = torch.randperm(2 * n, generator=generator)  # the set's order mixes the two
    tie_break = torch.randperm(2 * n, generator=generator)
    images, membership = images[order], membership[order]
    canaries = getattr(inputs, "canaries", None)
    if canaries is None:
        return images, membership, tie_break, None
    count = len(canaries)
    canary_order = torch.randperm(2 * count, generator=generator)
    canary_images = torch.cat([canaries.members.images, canaries.non_members.images])[canary_order]
    canary_membership = torch.cat([torch.ones(count, dtype=torch.long),
                                   torch.zeros(count, dtype=torch.long)])[canary_order]
    canary_tie_break = torch.randperm(2 * count, generator=generator)
    is_canary = torch.cat([torch.zeros(2 * n, dtype=torch.bool), torch.ones(2 * count, dtype=torch.bool)])
    return (torch.cat([images, canary_images]), torch.cat([membership, canary_membership]),
            torch.cat([tie_break, canary_tie_break]), is_canary)


def build_membership_view(inputs: "ViewInputs") -> tuple[MembershipView, MembershipTruth]:
    """The view, shuffled for this cell (``inputs.secret_seed``), and what the harness withholds."""
    import torch

    images, membership, tie_break, is_canary = candidate_set(inputs)
    generator = torch.Generator().manual_seed(inputs.secret_seed % (2**63 - 1))
    shown = torch.randperm(len(images), generator=generator)  # canaries are shuffled in
    granted, sanitizer, ctx = inputs.granted, inputs.sanitizer, inputs.ctx
    oracle = None
    if ORACLE in granted:
        def oracle(batch: "torch.Tensor") -> "torch.Tensor":
            return output_images(sanitizer.transform(batch.to(ctx.device), ctx))
    view = MembershipView(
        candidates=images[shown].clone(), n_members=int(membership.sum()),
        release=inputs.release if RELEASE in granted else None,
        aux=inputs.raw.aux if AUX in granted else None,
        oracle=oracle,
        handles={k: v for k, v in sanitizer.handles().items() if k in granted and k != RELEASE})
    return view, MembershipTruth(membership, shown, tie_break, is_canary)


def lend_membership_view(view: MembershipView) -> MembershipView:
    """A copy for a sandbox; the sandbox rebuilds the oracle and the handles."""
    return replace(view, candidates=view.candidates.clone(), release=copy_image_set(view.release),
                   aux=copy_image_set(view.aux), oracle=None, handles={})


# --- the figures ---------------------------------------------------------------------------------


def algorithm1_calls(scores: "np.ndarray", n_members: int, tie_break: "np.ndarray") -> "np.ndarray":
    """Webster et al.'s Algorithm 1: the ``n_members`` highest scores called members (1)."""
    import numpy as np

    order = np.lexsort((tie_break, -scores))  # by score descending, ties by the withheld order
    calls = np.zeros(len(scores), dtype=np.int64)
    calls[order[:n_members]] = 1
    return calls


def auc(membership: "np.ndarray", scores: "np.ndarray") -> float:
    """ROC AUC by the Mann-Whitney statistic on average ranks (ties count half)."""
    from scipy.stats import rankdata

    positives = membership == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tpr_at_fpr(membership: "np.ndarray", scores: "np.ndarray", target: float) -> float:
    """The highest TPR over score thresholds whose FPR is at most ``target`` (``score >= t``
    called member; the empty call at an infinite threshold has TPR 0)."""
    import numpy as np

    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_members = scores[order], membership[order]
    # Thresholds at the distinct scores: everything up to the last item of each run is called.
    last_of_run = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    true_positives = np.cumsum(sorted_members)[last_of_run]
    false_positives = np.cumsum(1 - sorted_members)[last_of_run]
    n_pos, n_neg = int(membership.sum()), int(len(membership) - membership.sum())
    # The comparison carries a relative slack: fpr = k / n_neg is computed in floating point.
    allowed = false_positives / n_neg <= target * (1 + 1e-12)
    return float(np.max(true_positives[allowed] / n_pos, initial=0.0))


def _figures(membership: "np.ndarray", scores: "np.ndarray", tie_break: "np.ndarray",
             targets: list[tuple[float, str]]) -> dict[str, float]:
    calls = algorithm1_calls(scores, int(membership.sum()), tie_break)
    accuracy = float((calls == membership).mean())
    figures = {"accuracy": accuracy, "advantage": 2.0 * accuracy - 1.0, "auc": auc(membership, scores)}
    for target, name in targets:
        figures[name] = tpr_at_fpr(membership, scores, target)
    return figures


def _bootstrap(membership: "np.ndarray", scores: "np.ndarray", tie_break: "np.ndarray",
               targets: list[tuple[float, str]], seed: int,
               stream: int = 7919) -> dict[str, tuple[float, float]]:
    import numpy as np

    members, others = np.flatnonzero(membership == 1), np.flatnonzero(membership == 0)
    rng = np.random.default_rng([seed, stream])
    replicates: dict[str, list[float]] = {}
    for _ in range(MEMBERSHIP_BOOTSTRAP):
        chosen = np.concatenate([rng.choice(members, len(members)), rng.choice(others, len(others))])
        for name, value in _figures(membership[chosen], scores[chosen], tie_break[chosen],
                                    targets).items():
            replicates.setdefault(name, []).append(value)
    return {name: tuple(float(q) for q in np.percentile(values, [2.5, 97.5]))
            for name, values in replicates.items()}


def score_membership(result: Any, truth: "WithheldTruth", source: str,
                     withheld: MembershipTruth) -> Scored:
    """Score a membership attack's scores against the withheld membership (see the module doc)."""
    import numpy as np
    import torch

    if not isinstance(result, MembershipResult):
        raise PluginContractError(f"{source}: run() must return a MembershipResult, got "
                                  f"{type(result).__name__}")
    scores = result.scores
    n = len(withheld.membership)
    if not isinstance(scores, torch.Tensor):
        raise PluginContractError(f"{source}: MembershipResult.scores must be a tensor, got "
                                  f"{type(scores).__name__}")
    if scores.dim() != 1 or len(scores) != n:
        raise PluginContractError(f"{source}: expected {n} scores (one per candidate), got shape "
                                  f"{tuple(scores.shape)}")
    scores = scores.detach().cpu().double()
    if not torch.isfinite(scores).all():
        raise PluginContractError(f"{source}: the membership scores contain NaN or inf")
    in_set_order = torch.empty_like(scores)
    in_set_order[withheld.shown] = scores
    all_scores = in_set_order.numpy()
    all_membership = withheld.membership.numpy().astype(np.int64)
    all_tie_break = withheld.tie_break.numpy()
    is_canary = (np.zeros(n, dtype=bool) if withheld.canary is None
                 else withheld.canary.numpy().astype(bool))
    # The average-case figures: the non-canary candidates, exactly as in a run without canaries.
    score_array, membership = all_scores[~is_canary], all_membership[~is_canary]
    tie_break = all_tie_break[~is_canary]
    n_non_members = int((membership == 0).sum())
    targets = [(target, name) for target, name, needed in LOW_FPR_TARGETS if n_non_members >= needed]
    figures = _figures(membership, score_array, tie_break, targets)
    intervals = _bootstrap(membership, score_array, tie_break, targets, seed=len(membership))
    chance = {"accuracy": 0.5, "advantage": 0.0, "auc": 0.5,
              **{name: target for target, name in targets}}
    values = [MetricValue(name, figures[name], better="lower", role="leakage",
                          primary=name == "accuracy", ci_low=intervals[name][0],
                          ci_high=intervals[name][1], chance=chance[name])
              for name in ("advantage", "accuracy", "auc", *(name for _, name in targets))]
    items = {}
    if is_canary.any():
        canary_values, items = _canary_values(all_membership[is_canary], all_scores[is_canary],
                                              all_tie_break[is_canary])
        values += canary_values
    values = [v for v in values if math.isfinite(v.value)] + diagnostic_values(result.diagnostics, source)
    calls = algorithm1_calls(score_array, int(membership.sum()), tie_break)
    return Scored(values, {"truth": membership, "predicted": calls, "scores": score_array,
                           "num_classes": np.array([2]), **items})


def _canary_values(membership: "np.ndarray", scores: "np.ndarray", tie_break: "np.ndarray"
                   ) -> tuple[list[MetricValue], dict[str, "np.ndarray"]]:
    """The canary figures (see the module doc): AUC and TPR at low FPR, the FPR over the canary
    non-members, each with a stratified bootstrap interval over the canaries."""
    n_non_members = int((membership == 0).sum())
    targets = [(target, name) for target, name, needed in LOW_FPR_TARGETS if n_non_members >= needed]
    figures = _figures(membership, scores, tie_break, targets)
    intervals = _bootstrap(membership, scores, tie_break, targets, seed=len(membership), stream=7927)
    chance = {"auc": 0.5, **{name: target for target, name in targets}}
    values = [MetricValue(f"canary_{name}", figures[name], better="lower", role="leakage",
                          primary=False, ci_low=intervals[name][0], ci_high=intervals[name][1],
                          chance=chance[name])
              for name in ("auc", *(name for _, name in targets))]
    return values, {"canary_truth": membership, "canary_scores": scores}
