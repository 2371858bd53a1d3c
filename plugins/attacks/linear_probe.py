"""A linear probe: logistic regression on (pooled, standardized) pixels of sanitized images.

A cheap second adaptive adversary with no architecture choices: it tells whether the sensitive
attribute is linearly readable from the sanitized pixels.

It is a converged attack, not one cut short by an iteration budget: the inverse regularisation
strength C is chosen on a stratified validation split carved from the attack split (the best
validation accuracy, ties to the lower log-loss), the probe is refitted on the whole attack split
with that C, and every fit runs full-batch L-BFGS until the largest gradient entry is below
``tol`` (:func:`ppbench.nn.logistic.fit_logistic`, up to ``max_iter`` iterations). Whether that
happened is the ``converged`` diagnostic (1 or 0), and a probe that did not converge also warns.

Version 3 solves the same problem as version 2 (scikit-learn's lbfgs objective), in torch on the
run's device and in float64; the optimum is unique, and the two agree to within the solvers'
tolerances (``tests/test_baseline_plugins.py`` compares them).
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import TYPE_CHECKING, Sequence

from ppbench import Attack, AttackResult, AttackView, Context, Task, hookimpl

if TYPE_CHECKING:
    import torch

NAME = "linear-probe"
DEFAULT_CS = (0.01, 0.1, 1.0, 10.0, 100.0)


class LinearProbe(Attack):
    """L2-regularised logistic regression on standardized, ``pool``×``pool`` average-pooled pixels
    (raw features for vectors) of the sanitized attack split, with C chosen from ``Cs`` on a
    ``validation`` fraction of it; returns class probabilities for the sanitized test split.

    Diagnostics: ``train_accuracy`` (refitted probe, whole attack split), ``val_accuracy`` (the
    chosen C's probe fitted without the validation part), ``C``, ``converged`` (1 when every
    fit converged within ``max_iter`` iterations) and ``iterations`` (the most any fit took).
    """

    name = NAME
    version = "3"
    description = ("Logistic regression on average-pooled, standardized pixels of sanitized train "
                   "images with the true sensitive label; C chosen on a validation split, fitted "
                   "to convergence.")
    threat_model = "sanitized-labelled"
    # Against a release it trains on the released set and predicts real people (ppbench.release).
    applies_to = frozenset({"transform", "release"})

    def __init__(self, pool: int = 2, Cs: Sequence[float] = DEFAULT_CS, validation: float = 0.2,
                 max_iter: int = 20000, tol: float = 1e-5) -> None:
        if not isinstance(pool, Integral) or isinstance(pool, bool) or pool < 1:
            raise ValueError(f"attack {NAME!r}: parameter 'pool' must be an integer >= 1, "
                             f"got {pool!r}")
        values = list(Cs) if isinstance(Cs, (list, tuple)) else None
        if not values or not all(isinstance(c, Real) and not isinstance(c, bool)
                                 and math.isfinite(c) and c > 0 for c in values):
            raise ValueError(f"attack {NAME!r}: parameter 'Cs' must be a non-empty list of "
                             f"numbers > 0, got {Cs!r}")
        if (not isinstance(validation, Real) or isinstance(validation, bool)
                or not 0.0 < validation < 1.0):
            raise ValueError(f"attack {NAME!r}: parameter 'validation' must be a number in "
                             f"(0, 1), got {validation!r}")
        if not isinstance(max_iter, Integral) or isinstance(max_iter, bool) or max_iter < 1:
            raise ValueError(f"attack {NAME!r}: parameter 'max_iter' must be an integer >= 1, "
                             f"got {max_iter!r}")
        if not isinstance(tol, Real) or isinstance(tol, bool) or not 0 < tol < 1:
            raise ValueError(f"attack {NAME!r}: parameter 'tol' must be a number in (0, 1), "
                             f"got {tol!r}")
        self.pool = pool
        self.Cs = Cs
        self.validation = validation
        self.max_iter = max_iter
        self.tol = tol

    def _features(self, images: "torch.Tensor", device: "torch.device") -> "torch.Tensor":
        import torch
        import torch.nn.functional as F

        images = images.to(device)
        if images.dim() == 4 and self.pool > 1:
            # ceil_mode: sizes that are not a multiple of `pool` keep their last partial cells.
            images = F.avg_pool2d(images, int(self.pool), ceil_mode=True)
        return images.reshape(len(images), -1).to(torch.float64)

    def run(self, view: AttackView, task: Task, ctx: Context) -> AttackResult:
        import torch

        from ppbench.nn import stratified_split
        from ppbench.nn.logistic import standardize

        labels = view.attack.labels[task.sensitive].to(ctx.device)
        num_classes = view.attack.num_classes(task.sensitive)
        features = self._features(view.attack.images, ctx.device)
        test_features = self._features(view.test.images, ctx.device)
        # Standardized with the whole attack split's statistics: unsupervised, so the
        # validation labels stay unseen.
        mean, scale = standardize(features)
        features = (features - mean) / scale
        test_features = (test_features - mean) / scale
        present = torch.unique(labels)  # sorted
        if len(present) < 2:
            # One class in train: logistic regression cannot fit; the only sensible guess is it.
            guess = int(present[0]) if len(present) else 0
            return AttackResult(predictions=torch.full((len(test_features),), guess, dtype=torch.long),
                                diagnostics={"train_accuracy": 1.0})
        fit_index, val_index = (index.to(ctx.device) for index in stratified_split(
            labels.cpu(), float(self.validation), ctx.generator(stream=2)))
        # Classes are fitted by their rank among those present (a class missing from the attack
        # split cannot be scored; predictions are then hard labels).
        ranks = torch.searchsorted(present, labels)
        return self._fit_and_predict(features, ranks, present, test_features, fit_index,
                                     val_index, num_classes, ctx)

    def _fit_and_predict(self, features: "torch.Tensor", ranks: "torch.Tensor",
                         present: "torch.Tensor", test_features: "torch.Tensor",
                         fit_index: "torch.Tensor", val_index: "torch.Tensor", num_classes: int,
                         ctx: Context) -> AttackResult:
        import torch

        from ppbench.nn.logistic import fit_logistic

        max_iter, tol, k = int(self.max_iter), float(self.tol), len(present)
        converged_all, most_iterations = True, 0
        best: tuple[float, float, float] | None = None  # (accuracy, -log loss, -C)
        chosen = None
        fit_ranks, val_ranks = ranks[fit_index], ranks[val_index]
        if len(torch.unique(val_ranks)) >= 2 and len(torch.unique(fit_ranks)) == k:
            # Increasing C along a warm-started path: each fit starts from the last solution.
            previous = None
            for C in sorted(float(c) for c in self.Cs):
                ctx.check_deadline()
                fit = fit_logistic(features[fit_index], fit_ranks, k, C, init=previous,
                                   max_iter=max_iter, tol=tol)
                previous = fit
                converged_all &= fit.converged
                most_iterations = max(most_iterations, fit.iterations)
                log_probabilities = torch.log_softmax(fit.logits(features[val_index]), dim=1)
                accuracy = float((log_probabilities.argmax(1) == val_ranks).double().mean())
                loss = float(-log_probabilities.gather(1, val_ranks[:, None]).mean())
                key = (accuracy, -loss, -C)  # ties go to the lower loss, then the smaller C
                if best is None or key > best:
                    best, chosen = key, fit
        C = -best[2] if best is not None else float(sorted(self.Cs)[len(self.Cs) // 2])
        # Refit on the whole attack split from the chosen solution: a few iterations.
        fit = fit_logistic(features, ranks, k, C, init=chosen, max_iter=max_iter, tol=tol)
        converged_all &= fit.converged
        most_iterations = max(most_iterations, fit.iterations)
        ctx.check_deadline()
        if not converged_all:
            warnings.warn(f"attack {NAME!r}: logistic regression did not converge within "
                          f"max_iter={max_iter} iterations (reported as converged=0)",
                          RuntimeWarning, stacklevel=2)
        probabilities = fit.probabilities(test_features)
        if k == num_classes:
            predictions = probabilities.float().cpu()
        else:
            # Some class is missing from the attack split: scores would not be N×K by class.
            predictions = present[probabilities.argmax(1)].cpu().long()
        diagnostics = {
            "train_accuracy": float((fit.logits(features).argmax(1) == ranks).double().mean()),
            "C": C,
            "converged": float(converged_all),
            "iterations": float(most_iterations),
        }
        if best is not None:
            diagnostics["val_accuracy"] = best[0]
        return AttackResult(predictions=predictions, diagnostics=diagnostics,
                            budget={"steps": float(most_iterations), "training_items": float(len(features))})


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(LinearProbe)
