"""A linear probe: logistic regression on (pooled, standardized) pixels of sanitized images.

A cheap second adaptive adversary with no architecture choices: it tells whether the sensitive
attribute is linearly readable from the sanitized pixels, and it is independent of torch training.

It is a converged attack, not one cut short by an iteration budget: the inverse regularisation
strength C is chosen on a stratified validation split carved from the attack split (the best
validation accuracy, ties to the lower log-loss), the probe is refitted on the whole attack split
with that C, and every fit runs L-BFGS until scikit-learn reports convergence (continuing from
where it stopped, up to ``max_iter`` iterations in all). Whether that happened is the
``converged`` diagnostic (1 or 0), and a probe that did not converge also warns.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, Sequence

from ppbench import Attack, AttackResult, AttackView, Context, Task, hookimpl

if TYPE_CHECKING:
    import numpy as np

NAME = "linear-probe"
DEFAULT_CS = (0.01, 0.1, 1.0, 10.0, 100.0)
# Below this many feature values, BLAS and OpenMP threads cost more in synchronisation than they
# save (and on a busy machine every parallel region can stall on a descheduled thread).
_SINGLE_THREAD_BELOW = 4_000_000
_ROUND_ITERATIONS = 500  # L-BFGS iterations per fit call; calls continue until converged


def _fit_until_converged(probe: Any, features: "np.ndarray", labels: "np.ndarray",
                         max_iter: int) -> tuple[bool, int]:
    """Fit ``probe`` (warm-started) in rounds until no ConvergenceWarning, or ``max_iter``
    iterations in all. Returns (converged, iterations)."""
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    iterations = 0
    while True:
        probe.max_iter = min(_ROUND_ITERATIONS, max_iter - iterations)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            probe.fit(features, labels)
        iterations += int(np.max(probe.n_iter_))
        if not any(issubclass(w.category, ConvergenceWarning) for w in caught):
            return True, iterations
        if iterations >= max_iter:
            return False, iterations


class LinearProbe(Attack):
    """Multinomial logistic regression on standardized, ``pool``×``pool`` average-pooled pixels
    (raw features for vectors) of the sanitized attack split, with C chosen from ``Cs`` on a
    ``validation`` fraction of it; returns class probabilities for the sanitized test split.

    Diagnostics: ``train_accuracy`` (refitted probe, whole attack split), ``val_accuracy`` (the
    chosen C's probe fitted without the validation part), ``C``, ``converged`` (1 when every
    fit converged within ``max_iter`` iterations) and ``iterations`` (the most any fit took).
    """

    name = NAME
    version = "2"
    description = ("Logistic regression on average-pooled, standardized pixels of sanitized train "
                   "images with the true sensitive label; C chosen on a validation split, fitted "
                   "to convergence.")
    threat_model = "sanitized-labelled"
    # Against a release it trains on the released set and predicts real people (ppbench.release).
    applies_to = frozenset({"transform", "release"})

    def __init__(self, pool: int = 2, Cs: Sequence[float] = DEFAULT_CS, validation: float = 0.2,
                 max_iter: int = 20000) -> None:
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
        self.pool = pool
        self.Cs = Cs
        self.validation = validation
        self.max_iter = max_iter

    def _features(self, images):
        import torch.nn.functional as F

        if images.dim() == 4 and self.pool > 1:
            # ceil_mode: sizes that are not a multiple of `pool` keep their last partial cells.
            images = F.avg_pool2d(images, int(self.pool), ceil_mode=True)
        return images.reshape(len(images), -1).double().cpu().numpy()

    def run(self, view: AttackView, task: Task, ctx: Context) -> AttackResult:
        import numpy as np
        import torch
        from sklearn.preprocessing import StandardScaler
        from threadpoolctl import threadpool_limits

        from ppbench.nn import stratified_split

        labels_tensor = view.attack.labels[task.sensitive]
        labels = labels_tensor.cpu().numpy()
        num_classes = view.attack.num_classes(task.sensitive)
        # Standardized with the whole attack split's statistics: unsupervised, so the
        # validation labels stay unseen.
        scaler = StandardScaler()
        features = scaler.fit_transform(self._features(view.attack.images))
        test_features = scaler.transform(self._features(view.test.images))
        if len(np.unique(labels)) < 2:
            # One class in train: logistic regression cannot fit; the only sensible guess is it.
            predictions = np.full(len(test_features), labels[0] if len(labels) else 0)
            return AttackResult(predictions=torch.as_tensor(predictions, dtype=torch.long),
                                diagnostics={"train_accuracy": 1.0})

        fit_index, val_index = (index.numpy() for index in stratified_split(
            labels_tensor, float(self.validation), ctx.generator(stream=2)))
        threads = 1 if features.size < _SINGLE_THREAD_BELOW else torch.get_num_threads()
        with threadpool_limits(limits=threads):
            return self._fit_and_predict(features, labels, test_features, fit_index, val_index,
                                         num_classes, ctx)

    def _fit_and_predict(self, features: "np.ndarray", labels: "np.ndarray",
                         test_features: "np.ndarray", fit_index: "np.ndarray",
                         val_index: "np.ndarray", num_classes: int, ctx: Context) -> AttackResult:
        import numpy as np
        import torch
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss

        max_iter = int(self.max_iter)
        converged_all, most_iterations = True, 0
        best: tuple[float, float, float] | None = None  # (accuracy, -log loss, C)
        chosen: Any = None
        if len(np.unique(labels[val_index])) >= 2 and len(np.unique(labels[fit_index])) >= 2:
            # Increasing C along a warm-started path: each fit starts from the last solution.
            probe = LogisticRegression(warm_start=True)
            for C in sorted(float(c) for c in self.Cs):
                ctx.check_deadline()
                probe.C = C
                converged, iterations = _fit_until_converged(
                    probe, features[fit_index], labels[fit_index], max_iter)
                converged_all &= converged
                most_iterations = max(most_iterations, iterations)
                probabilities = probe.predict_proba(features[val_index])
                accuracy = float(np.mean(probe.classes_[probabilities.argmax(1)] == labels[val_index]))
                loss = log_loss(labels[val_index], probabilities, labels=probe.classes_)
                key = (accuracy, -loss, -C)  # ties go to the lower loss, then the smaller C
                if best is None or key > best:
                    best = key
                    chosen = (C, probe.coef_.copy(), probe.intercept_.copy())
        C = chosen[0] if chosen is not None else float(sorted(self.Cs)[len(self.Cs) // 2])
        probe = LogisticRegression(C=C, warm_start=True)
        if chosen is not None and len(np.unique(labels)) == len(np.unique(labels[fit_index])):
            # Refit from the chosen solution (same classes): converges in a few iterations.
            probe.coef_, probe.intercept_ = chosen[1], chosen[2]
        converged, iterations = _fit_until_converged(probe, features, labels, max_iter)
        converged_all &= converged
        most_iterations = max(most_iterations, iterations)
        ctx.check_deadline()
        if not converged_all:
            warnings.warn(f"attack {NAME!r}: logistic regression did not converge within "
                          f"max_iter={max_iter} iterations (reported as converged=0)",
                          RuntimeWarning, stacklevel=2)
        probabilities = probe.predict_proba(test_features)
        if list(probe.classes_) == list(range(num_classes)):
            predictions = torch.as_tensor(probabilities, dtype=torch.float32)
        else:
            # Some class is missing from the attack split: scores would not be N×K by class.
            predictions = torch.as_tensor(probe.classes_[probabilities.argmax(1)], dtype=torch.long)
        diagnostics = {
            "train_accuracy": float(probe.score(features, labels)),
            "C": C,
            "converged": float(converged_all),
            "iterations": float(most_iterations),
        }
        if best is not None:
            diagnostics["val_accuracy"] = best[0]
        return AttackResult(predictions=predictions, diagnostics=diagnostics)


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(LinearProbe)
