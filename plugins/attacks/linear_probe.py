"""A linear probe: logistic regression on (pooled, standardized) pixels of sanitized images.

A cheap second adaptive adversary with no architecture choices: it tells whether the sensitive
attribute is linearly readable from the sanitized pixels, and it is independent of torch training.
"""

from __future__ import annotations

from numbers import Integral, Real

from ppbench import Attack, AttackResult, AttackView, Context, Task, hookimpl


class LinearProbe(Attack):
    """Multinomial logistic regression on standardized, ``pool``×``pool`` average-pooled pixels
    (raw features for vectors) of the sanitized train split; predicts the sanitized test split."""

    name = "linear-probe"
    version = "1"
    description = ("Logistic regression on average-pooled, standardized pixels of sanitized train "
                   "images with the true sensitive label.")
    threat_model = "sanitized-labelled"

    def __init__(self, pool: int = 2, C: float = 1.0, max_iter: int = 200) -> None:
        if not isinstance(pool, Integral) or isinstance(pool, bool) or pool < 1:
            raise ValueError(f"attack 'linear-probe': parameter 'pool' must be an integer >= 1, "
                             f"got {pool!r}")
        if not isinstance(C, Real) or isinstance(C, bool) or not C > 0:
            raise ValueError(f"attack 'linear-probe': parameter 'C' must be a number > 0, got {C!r}")
        if not isinstance(max_iter, Integral) or isinstance(max_iter, bool) or max_iter < 1:
            raise ValueError(f"attack 'linear-probe': parameter 'max_iter' must be an integer >= 1, "
                             f"got {max_iter!r}")
        self.pool = pool
        self.C = C
        self.max_iter = max_iter

    def _features(self, images):
        import torch.nn.functional as F

        if images.dim() == 4 and self.pool > 1:
            # ceil_mode: sizes that are not a multiple of `pool` keep their last partial cells.
            images = F.avg_pool2d(images, int(self.pool), ceil_mode=True)
        return images.reshape(len(images), -1).double().cpu().numpy()

    def run(self, view: AttackView, task: Task, ctx: Context) -> AttackResult:
        import warnings

        import numpy as np
        import torch
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        labels = view.attack.labels[task.sensitive].cpu().numpy()
        scaler = StandardScaler()
        train_features = scaler.fit_transform(self._features(view.attack.images))
        test_features = scaler.transform(self._features(view.test.images))
        if len(np.unique(labels)) < 2:
            # One class in train: logistic regression cannot fit; the only sensible guess is it.
            predictions = np.full(len(test_features), labels[0] if len(labels) else 0)
            return AttackResult(predictions=torch.as_tensor(predictions, dtype=torch.long),
                                diagnostics={"train_accuracy": 1.0})
        probe = LogisticRegression(C=float(self.C), max_iter=int(self.max_iter),
                                   random_state=ctx.seed % 2**32)
        with warnings.catch_warnings():
            # max_iter is a deliberate time budget; an unconverged probe is still a valid attack.
            warnings.simplefilter("ignore", ConvergenceWarning)
            probe.fit(train_features, labels)
        ctx.check_deadline()
        predictions = torch.as_tensor(probe.predict(test_features), dtype=torch.long)
        train_accuracy = float(probe.score(train_features, labels))
        return AttackResult(predictions=predictions, diagnostics={"train_accuracy": train_accuracy})


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(LinearProbe)
