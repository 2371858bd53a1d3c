"""Contract checks for plugin authors (in the spirit of scikit-learn's ``check_estimator``).

Call them from your plugin's tests::

    from ppbench.testing import check_sanitizer, check_attack
    def test_contract():
        check_sanitizer(MySanitizer(strength=0.5))
        check_attack(MyAttack())

Each raises ``AssertionError`` naming the first rule the plugin breaks. They run on a toy data set
whose channel brightness encodes the labels, so they take well under a second.
"""

from __future__ import annotations

import io
import math
from typing import Any

from .api import (SANITIZER_CAPABILITIES, Attack, AttackResult, AttackView, Context, Sanitizer,
                  Task)
from .data import Attribute, DatasetSplits, ImageSet

TOY_ATTRIBUTES = (Attribute("secret", ("no", "yes")), Attribute("keep", ("no", "yes")))
TOY_TASK = Task("toy", "secret", "secret", ("keep",))


def toy_splits(seed: int = 0, n_train: int = 240, n_test: int = 120, size: int = 8,
               n_attack: int | None = None) -> DatasetSplits:
    """Noise images; channel 0's brightness encodes ``secret`` and channel 1's encodes ``keep``."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> ImageSet:
        secret = torch.randint(0, 2, (n,), generator=g)
        keep = torch.randint(0, 2, (n,), generator=g)
        images = torch.rand(n, 3, size, size, generator=g) * 0.5
        images[:, 0] += 0.4 * secret.view(-1, 1, 1).float()
        images[:, 1] += 0.4 * keep.view(-1, 1, 1).float()
        return ImageSet(images.clamp(0, 1), {"secret": secret, "keep": keep},
                        {a.name: a for a in TOY_ATTRIBUTES})

    return DatasetSplits(train=make(n_train), attack=make(n_train if n_attack is None else n_attack),
                         test=make(n_test), aux=make(n_test))


def _context(seed: int = 0) -> Context:
    return Context(device="cpu", profile="quick", seed=seed)


def check_sanitizer(sanitizer: Sanitizer, splits: DatasetSplits | None = None, task: Task = TOY_TASK) -> None:
    """Parameters round-trip, fit on train only, same-shape finite output in [0, 1], the same
    output for the same seed, picklable fitted state, and handles for declared capabilities."""
    import torch

    name = type(sanitizer).__name__
    params = sanitizer.get_params()
    clone = type(sanitizer)(**params)
    assert clone.get_params() == params, f"{name}: get_params() does not round-trip through __init__"
    unknown = set(type(sanitizer).capabilities) - SANITIZER_CAPABILITIES
    assert not unknown, f"{name}: unknown capabilities {sorted(unknown)}"

    splits = splits or toy_splits()
    outputs = []
    for _ in range(2):
        fresh = type(sanitizer)(**params)
        ctx = _context(seed=7)
        ctx.seed_everything()
        fitted = fresh.fit(splits.train, task, ctx) or fresh
        assert isinstance(fitted, Sanitizer), f"{name}: fit() must return the sanitizer (or None)"
        with torch.no_grad():
            out = fitted.transform(splits.test.images, ctx)
        assert isinstance(out, torch.Tensor), f"{name}: transform() must return a tensor"
        assert out.shape == splits.test.images.shape, (
            f"{name}: transform() changed the shape {tuple(splits.test.images.shape)} -> {tuple(out.shape)}")
        assert out.dtype.is_floating_point, f"{name}: transform() must return floats"
        assert torch.isfinite(out).all(), f"{name}: transform() returned NaN or inf"
        if splits.test.is_image:
            assert out.min() >= 0 and out.max() <= 1, f"{name}: transformed images must lie in [0, 1]"
        outputs.append(out)
    assert torch.equal(outputs[0], outputs[1]), f"{name}: the same seed gave different outputs"
    buffer = io.BytesIO()
    torch.save(fitted, buffer)  # the runner caches fitted sanitizers with torch.save
    missing = set(type(fitted).capabilities) - {"release"} - set(fitted.handles())
    assert not missing, f"{name}: declares {sorted(missing)} but handles() lacks them"


def check_attack(attack: Attack, splits: DatasetSplits | None = None, task: Task = TOY_TASK,
                 handles: dict[str, Any] | None = None) -> AttackResult:
    """Runs on a view without test labels; predictions are one per test item, finite, in range.
    Returns the result so a test can also assert how well the attack did."""
    import torch

    name = type(attack).__name__
    params = attack.get_params()
    assert type(attack)(**params).get_params() == params, f"{name}: get_params() does not round-trip"
    splits = splits or toy_splits()
    grants = type(attack).requires
    view = AttackView(
        attack=splits.attack, test=splits.test.without_labels(),
        raw_train=splits.train if "raw_train" in grants else None,
        aux=splits.aux if "aux" in grants else None,
        oracle=(lambda x: x) if "oracle" in grants else None,
        handles=dict(handles or {}),
    )
    ctx = _context()
    ctx.seed_everything()
    result = attack.run(view, task, ctx)
    assert isinstance(result, AttackResult), f"{name}: run() must return an AttackResult"
    predictions = result.predictions
    n, k = len(splits.test), splits.test.num_classes(task.sensitive)
    assert isinstance(predictions, torch.Tensor), f"{name}: predictions must be a tensor"
    if predictions.dim() == 2:
        assert tuple(predictions.shape) == (n, k), f"{name}: class scores must be ({n}, {k})"
        assert torch.isfinite(predictions).all(), f"{name}: class scores contain NaN or inf"
    else:
        assert tuple(predictions.shape) == (n,), f"{name}: need {n} predicted labels"
        assert not predictions.dtype.is_floating_point, f"{name}: predicted labels must be integers"
        assert int(predictions.min()) >= 0 and int(predictions.max()) < k, f"{name}: labels out of range"
    for key, value in result.diagnostics.items():
        assert math.isfinite(float(value)), f"{name}: diagnostic {key!r} is not finite"
    return result
