"""ppbench.nn: network shapes, the shared training loop (early stopping), inference helpers, and
the reference classifiers."""

from __future__ import annotations

import io
import math

import pytest
import torch

from ppbench import Attribute, CellTimeout, Context, ImageSet, Profile
from ppbench.nn import (MLP, MultiHead, ResNet, SmallCNN, UNet, batch_slices, build_classifier,
                        fit_classifier, iterate_minibatches, predict_logits, reference_classifier,
                        reference_fit, stratified_split, train_classifier)
from ppbench.nn.training import accuracy

TINY = Profile("tiny", image_size=16, n_train=256, n_attack=256, n_test=128, n_aux=0,
               max_epochs=3, fit_epochs=1, batch_size=32, cell_time_limit=60.0)


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def tiny_context(seed: int = 0, **kwargs) -> Context:
    return Context(device="cpu", profile=TINY, seed=seed, **kwargs)


def brightness_images(n: int, seed: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images whose mean brightness encodes a binary label: linearly separable."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = 0.3 * torch.rand(n, 3, size, size, generator=g) + 0.2 + 0.4 * labels.view(-1, 1, 1, 1)
    return images.clamp(0, 1), labels


# --- shapes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("make", [
    lambda: SmallCNN(3, 5, width=8),
    lambda: ResNet(3, 5, blocks=(1, 1, 1, 1), width=8),
    lambda: ResNet(3, 5, blocks=(2, 2, 2, 2), width=8),
], ids=["smallcnn", "resnet10", "resnet18"])
def test_classifier_shapes(make, size):
    model = make().eval()
    x = torch.rand(2, 3, size, size)
    assert model(x).shape == (2, 5)
    assert model.features(x).shape == (2, model.num_features)


def test_resnet_block_counts():
    def count(model):
        return sum(1 for m in model.modules() if type(m).__name__ == "BasicBlock")

    assert count(ResNet(3, 2, blocks=(1, 1, 1, 1), width=8)) == 4  # ResNet-10
    assert count(ResNet(3, 2, blocks=(2, 2, 2, 2), width=8)) == 8  # ResNet-18


@pytest.mark.parametrize("size", [32, 64])
def test_unet_shape_and_range(size):
    unet = UNet(3, 3, base=4, depth=3).eval()
    with torch.no_grad():
        out = unet(torch.rand(2, 3, size, size))
    assert out.shape == (2, 3, size, size)
    assert float(out.min()) > 0 and float(out.max()) < 1  # sigmoid output


def test_unet_bottleneck_extra_channels():
    unet = UNet(3, 3, base=4, depth=3, extra_bottleneck_channels=2).eval()
    h, w = unet.bottleneck_size(32, 32)
    assert (h, w) == (4, 4)
    out = unet(torch.rand(2, 3, 32, 32), torch.randn(2, 2, h, w))
    assert out.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="bottleneck_extra"):
        unet(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="bottleneck_extra"):
        UNet(3, 3, base=4)(torch.rand(2, 3, 32, 32), torch.randn(2, 1, 4, 4))


def test_unet_odd_size():
    assert UNet(1, 1, base=4, depth=2).eval()(torch.rand(1, 1, 30, 30)).shape == (1, 1, 30, 30)


def test_mlp_and_multihead():
    mlp = MLP(2, 0, hidden=(16, 16))
    assert mlp(torch.randn(5, 2)).shape == (5, 16)
    model = MultiHead(mlp, {"a": 2, "b": 7})
    out = model(torch.randn(5, 2))
    assert set(out) == {"a", "b"} and out["a"].shape == (5, 2) and out["b"].shape == (5, 7)
    assert model.head_sizes == {"a": 2, "b": 7}


@pytest.mark.parametrize("kind,shape,expected", [
    ("auto", (3, 32, 32), SmallCNN), ("auto", (2,), MLP), ("resnet10", (3, 32, 32), ResNet),
    ("resnet18", (1, 64, 64), ResNet), ("mlp", (3, 8, 8), MLP),
])
def test_build_classifier(kind, shape, expected):
    model = build_classifier(kind, shape, 4, width=8).eval()
    assert isinstance(model, expected)
    assert model(torch.rand(2, *shape)).shape == (2, 4)
    multi = build_classifier(kind, shape, {"x": 3, "y": 2}, width=8).eval()
    assert isinstance(multi, MultiHead) and multi(torch.rand(2, *shape))["x"].shape == (2, 3)


def test_build_classifier_errors():
    with pytest.raises(ValueError, match="unknown classifier kind"):
        build_classifier("vit", (3, 32, 32), 2)
    with pytest.raises(ValueError, match="needs C×H×W images"):
        build_classifier("cnn", (2,), 2)


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_classifier("cnn", (3, 16, 16), 2, width=8, seed=5)
    after = torch.rand(1)
    b = build_classifier("cnn", (3, 16, 16), 2, width=8, seed=5)
    assert torch.equal(before, after)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


# --- batching -------------------------------------------------------------------------------------


def test_batch_slices_merge_a_trailing_singleton():
    assert batch_slices(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_slices(9, 4) == [(0, 4), (4, 9)]
    assert batch_slices(1, 4) == [(0, 1)]


def test_iterate_minibatches_covers_every_item_each_epoch():
    ctx = tiny_context()
    seen: dict[int, list[int]] = {}
    for epoch, index in iterate_minibatches(10, 3, ctx, epochs=2):
        seen.setdefault(epoch, []).extend(index.tolist())
    assert sorted(seen) == [0, 1]
    assert all(sorted(items) == list(range(10)) for items in seen.values())
    assert seen[0] != seen[1]  # reshuffled


def test_iterate_minibatches_checks_the_deadline():
    ctx = tiny_context(time_limit=0.0)
    with pytest.raises(CellTimeout):
        for _ in iterate_minibatches(10, 3, ctx, epochs=1):
            pass


# --- training and inference -----------------------------------------------------------------------


def test_training_learns_a_separable_problem_and_reduces_the_loss():
    ctx = tiny_context()
    x_train, y_train = brightness_images(256, seed=1)
    x_test, y_test = brightness_images(128, seed=2)
    model = build_classifier("cnn", (3, 16, 16), 2, width=8, seed=0)
    history: list[dict[str, float]] = []
    train_classifier(model, x_train, y_train, ctx, history=history)
    assert len(history) >= 1 and len(history) <= TINY.max_epochs
    assert history[-1]["loss"] < history[0]["loss"]
    assert {"val_loss", "val_accuracy"} <= set(history[-1])
    assert not model.training
    assert accuracy(predict_logits(model, x_test, ctx), y_test) > 0.9


def test_mlp_learns_gaussian_blobs():
    ctx = tiny_context()
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(512) % 2
    centres = torch.tensor([[-1.0, 1.0], [1.0, -1.0]])
    points = centres[labels] + 0.5 * torch.randn(512, 2, generator=g)
    model = build_classifier("auto", (2,), 2, seed=0)
    train_classifier(model, points[:384], labels[:384], ctx, max_epochs=10, lr=1e-2)
    assert accuracy(predict_logits(model, points[384:], ctx), labels[384:]) > 0.9


def test_multihead_training_and_dict_predictions():
    ctx = tiny_context()
    x, y = brightness_images(256, seed=3)
    other = 1 - y  # a second head that is just as learnable
    model = build_classifier("cnn", (3, 16, 16), {"bright": 2, "dark": 2}, width=8, seed=0)
    result = fit_classifier(model, x, {"bright": y, "dark": other}, ctx)
    assert {"accuracy:bright", "accuracy:dark", "val_accuracy:bright"} <= set(result.history[-1])
    assert set(result.val_accuracies) == {"bright", "dark"}
    logits = predict_logits(model, x, ctx, batch_size=50)
    assert set(logits) == {"bright", "dark"} and logits["bright"].shape == (256, 2)
    assert accuracy(logits["dark"], other) > 0.9


def test_training_is_deterministic_for_a_seed():
    x, y = brightness_images(128, seed=4)

    def run(seed):
        ctx = tiny_context(seed)
        model = build_classifier("cnn", (3, 16, 16), 2, width=8, seed=seed)
        train_classifier(model, x, y, ctx, max_epochs=1, generator=ctx.generator())
        return predict_logits(model, x, ctx)

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_targets_must_match_the_images():
    model = build_classifier("cnn", (3, 16, 16), 2, width=8)
    with pytest.raises(ValueError, match="labels for 10 images"):
        train_classifier(model, torch.rand(10, 3, 16, 16), torch.zeros(9, dtype=torch.long), tiny_context())


@pytest.mark.parametrize("option,value", [("max_epochs", 0), ("patience", 0), ("validation", 1.0),
                                          ("validation", -0.1), ("monitor", "f1"), ("lr", 0.0),
                                          ("average", 1.0)])
def test_fit_options_are_validated(option, value):
    model = build_classifier("mlp", (2,), 2)
    with pytest.raises(ValueError, match=option):
        fit_classifier(model, torch.randn(20, 2), torch.arange(20) % 2, tiny_context(), **{option: value})


def test_predict_logits_restores_the_training_mode():
    model = build_classifier("cnn", (3, 16, 16), 2, width=8).train()
    predict_logits(model, torch.rand(5, 3, 16, 16), tiny_context())
    assert model.training


# --- early stopping -------------------------------------------------------------------------------


def test_stratified_split_keeps_class_proportions_and_rare_classes():
    labels = torch.cat([torch.zeros(90), torch.ones(8), torch.full((2,), 2), torch.full((1,), 3)]).long()
    train, val = stratified_split(labels, 0.2, torch.Generator().manual_seed(0))
    assert sorted(torch.cat([train, val]).tolist()) == list(range(len(labels)))  # a partition
    counts = torch.bincount(labels[val], minlength=4).tolist()
    assert counts == [18, 2, 1, 0]  # 20% of 90; at least 2 of 8; 1 of 2; a singleton stays in train
    again = stratified_split(labels, 0.2, torch.Generator().manual_seed(0))
    assert torch.equal(again[1], val)


def circles(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points inside vs outside a circle: not linearly separable, needs several epochs."""
    g = torch.Generator().manual_seed(seed)
    points = 2.4 * torch.rand(n, 2, generator=g) - 1.2
    return points, (points.norm(dim=1) > 0.85).long()


def test_early_stopping_stops_before_max_epochs_and_restores_the_best_weights():
    ctx = tiny_context()
    x, y = brightness_images(128, seed=6)
    model = build_classifier("cnn", (3, 16, 16), 2, width=8, seed=0)
    result = fit_classifier(model, x, y, ctx, max_epochs=40, patience=2)
    assert result.stopped_early and result.epochs < 40
    assert result.epochs == result.best_epoch + 1 + 2  # stopped `patience` epochs after the best
    best = result.history[result.best_epoch]
    assert all(entry["val_loss"] > best["val_loss"] - 1e-3 for entry in result.history)
    assert len(result.val_index) == round(0.2 * 64) * 2  # 20% of each class
    # The returned model is the best epoch's, with the statistics it was validated with.
    logits = predict_logits(model, x[result.val_index], ctx)
    assert accuracy(logits, y[result.val_index]) == pytest.approx(best["val_accuracy"])
    loss = float(torch.nn.functional.cross_entropy(logits, y[result.val_index]))
    assert loss == pytest.approx(best["val_loss"], rel=1e-4)
    assert result.val_accuracy == pytest.approx(best["val_accuracy"])
    assert loss != pytest.approx(result.history[-1]["val_loss"], rel=1e-3)  # not the last epoch's


def test_an_under_trained_classifier_is_worse_than_a_converged_one():
    ctx = tiny_context()
    x, y = circles(1024, seed=0)
    x_test, y_test = circles(1000, seed=1)

    def test_accuracy(**options):
        model = build_classifier("mlp", (2,), 2, seed=0)
        result = fit_classifier(model, x, y, ctx, batch_size=32, **options)
        return accuracy(predict_logits(model, x_test, ctx), y_test), result

    one_epoch, _ = test_accuracy(max_epochs=1, validation=None)
    converged, result = test_accuracy(max_epochs=100, patience=5)
    assert result.epochs > 5
    assert converged > 0.95 and converged > one_epoch + 0.1, (one_epoch, converged)


def test_validation_none_trains_exactly_max_epochs_on_everything():
    ctx = tiny_context()
    x, y = brightness_images(64, seed=7)
    model = build_classifier("cnn", (3, 16, 16), 2, width=8, seed=0)
    result = fit_classifier(model, x, y, ctx, max_epochs=2, validation=None)
    assert result.epochs == 2 and not result.stopped_early
    assert len(result.train_index) == 64 and len(result.val_index) == 0
    assert "val_loss" not in result.history[-1] and math.isnan(result.val_accuracy)
    assert 0.5 <= result.train_accuracy <= 1.0


def test_weight_averaging_is_what_gets_returned():
    ctx = tiny_context()
    x, y = circles(512, seed=2)
    plain = build_classifier("mlp", (2,), 2, seed=0)
    averaged = build_classifier("mlp", (2,), 2, seed=0)
    fit_classifier(plain, x, y, ctx, max_epochs=3, validation=None, average=None)
    fit_classifier(averaged, x, y, ctx, max_epochs=3, validation=None, average=0.9)
    differs = [not torch.equal(a, b) for a, b in zip(plain.parameters(), averaged.parameters())]
    assert all(differs)


# --- the shared reference classifiers -------------------------------------------------------------


def raw_split(n: int = 256, seed: int = 5) -> ImageSet:
    x, y = brightness_images(n, seed=seed)
    parity = (torch.arange(n) // 2) % 2
    return ImageSet(x, {"bright": y, "parity": parity},
                    {"bright": Attribute("bright", ("dark", "bright")),
                     "parity": Attribute("parity", ("even", "odd"))})


def safe_store(builds: list[dict]):
    """A shared store that round-trips values through torch.save and the safe torch.load."""
    cache: dict[tuple, object] = {}

    def store(name, build, key):
        cache_key = (name, repr(sorted(key.items())))
        if cache_key not in cache:
            builds.append(dict(key))
            buffer = io.BytesIO()
            torch.save(build(), buffer)  # what an on-disk store does...
            buffer.seek(0)
            cache[cache_key] = torch.load(buffer, weights_only=True)  # ...and the safe way back
        return cache[cache_key]

    return store


def test_reference_classifier_is_cached_once_per_attribute_and_loads_safely():
    builds: list[dict] = []
    ctx = tiny_context(shared_store=safe_store(builds))
    raw = raw_split()
    first = reference_classifier(raw, "bright", ctx)
    second = reference_classifier(raw, "bright", ctx)
    assert len(builds) == 1 and builds[0]["attribute"] == "bright"
    assert "task" not in builds[0] and builds[0]["n_train"] == 256
    assert isinstance(first, SmallCNN) and not first.training  # one model per attribute
    assert next(first.parameters()).device.type == "cpu"
    assert first is not second
    for pa, pb in zip(first.parameters(), second.parameters()):
        assert torch.equal(pa, pb)
    logits = predict_logits(first, raw.images, ctx)
    assert logits.shape == (256, 2)
    assert accuracy(logits, raw.labels["bright"]) > 0.9
    fit = reference_fit(raw, "bright", ctx)
    assert len(builds) == 1 and fit.val_accuracy > 0.9 and fit.epochs >= 1
    reference_classifier(raw, "parity", ctx)
    assert [b["attribute"] for b in builds] == ["bright", "parity"]


def test_reference_classifier_rejects_missing_labels():
    with pytest.raises(KeyError, match="no labels"):
        reference_classifier(raw_split(), "smiling", tiny_context())


@pytest.mark.parametrize("num_classes, C, d", [(2, 0.1, 40), (2, 10.0, 40), (4, 1.0, 40),
                                               (4, 1.0, 300), (2, 10.0, 1100)])
def test_logistic_regression_reaches_scikit_learns_optimum(num_classes, C, d):
    """The torch probe solves scikit-learn's lbfgs problem: the same optimum, to the solvers'
    tolerances (the binomial model for two classes, the softmax for more), with Newton steps for
    small problems and L-BFGS for large ones."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from ppbench.nn.logistic import fit_logistic, standardize

    generator = torch.Generator().manual_seed(num_classes)
    n = 600
    centres = torch.randn(num_classes, d, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    features = centres[labels] * 0.4 + torch.randn(n, d, generator=generator, dtype=torch.float64)
    mean, scale = standardize(features)
    features = (features - mean) / scale
    fit = fit_logistic(features, labels, num_classes, C, tol=1e-8)
    assert fit.converged
    reference = LogisticRegression(C=C, tol=1e-10, max_iter=100000).fit(features.numpy(), labels.numpy())
    expected = reference.predict_proba(features.numpy())
    assert np.abs(fit.probabilities(features).numpy() - expected).max() < 1e-5
    weight = fit.weight.numpy()
    assert np.abs(weight - reference.coef_).max() < 1e-4 * max(1.0, np.abs(reference.coef_).max())


def test_logistic_regression_reports_a_fit_it_cut_short():
    from ppbench.nn.logistic import fit_logistic

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(200, 30, generator=generator, dtype=torch.float64)
    labels = (features[:, 0] > 0).long()
    short = fit_logistic(features, labels, 2, 100.0, max_iter=2)
    assert not short.converged and short.iterations <= 2
    full = fit_logistic(features, labels, 2, 100.0, init=short)
    assert full.converged


@pytest.mark.parametrize("kind", ["8bit", "half", "float"])
def test_device_resident_images_give_the_hosts_batches_bit_for_bit(kind):
    from ppbench.nn.resident import ResidentImages, compact_exactly
    from ppbench.pixels import quantize_8bit

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(50, 3, 4, 4, generator=generator)
    images = {"8bit": quantize_8bit(images), "half": images.half().float(), "float": images}[kind]
    stored, scale = compact_exactly(images)
    assert stored.dtype == {"8bit": torch.uint8, "half": torch.float16, "float": torch.float32}[kind]
    kept = ResidentImages(stored, scale, images.shape)
    index = torch.randperm(50, generator=generator)[:17]
    assert len(kept) == 50 and kept.dim() == 4
    assert kept[index].dtype == torch.float32 and torch.equal(kept[index], images[index])


def _toy_classification(seed: int, n: int = 192):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = torch.rand(n, 3, 8, 8, generator=generator)
    images[:, 0] += 0.3 * labels[:, None, None]  # a learnable signal in channel 0
    return images.clamp(0, 1), labels


@pytest.mark.parametrize("options", [{"max_epochs": 6, "patience": 2, "batch_size": 32},
                                     {"max_epochs": 12, "patience": 1, "batch_size": 32}],
                         ids=["all-run-to-the-end", "one-stops-early"])
def test_classifiers_trained_together_match_the_same_classifiers_trained_alone(single_torch_thread,
                                                                               options):
    """Three SmallCNNs folded into one grouped network: the same epochs, the same best epoch, the
    same predictions and logits within 1% of their scale, as three separate fits."""
    from ppbench.api import Context
    from ppbench.nn import SmallCNN, fit_classifier, predict_logits, seeded
    from ppbench.nn.stacked import can_stack, fit_classifiers

    labels = _toy_classification(0)[1]
    sets = [_toy_classification(seed)[0] for seed in (1, 2, 3)]
    contexts = [Context(profile="quick", seed=seed) for seed in (11, 12, 13)]

    def models():
        built = []
        for ctx in contexts:
            with seeded(ctx.seed):
                built.append(SmallCNN(3, 2, width=4))
        return built

    alone = [fit_classifier(model, images, labels, ctx, generator=ctx.generator(stream=1), **options)
             for model, images, ctx in zip(models(), sets, contexts)]
    together_models = models()
    assert can_stack(together_models)
    together = fit_classifiers(together_models, sets, [labels] * 3, contexts,
                               generators=[ctx.generator(stream=1) for ctx in contexts], **options)
    if options["patience"] == 1:  # the case where a model leaves the network mid-way
        assert len({one.epochs for one in alone}) > 1
    probe = torch.rand(40, 3, 8, 8, generator=torch.Generator().manual_seed(9))
    for one, joint, ctx in zip(alone, together, contexts):
        assert (joint.epochs, joint.best_epoch, joint.stopped_early) == (one.epochs, one.best_epoch,
                                                                          one.stopped_early)
        assert torch.equal(joint.val_index, one.val_index)
        assert joint.val_loss == pytest.approx(one.val_loss, abs=1e-4)
        # Grouped kernels sum in another order; training amplifies that rounding a little.
        joint_logits, one_logits = predict_logits(joint.model, probe, ctx), predict_logits(one.model, probe, ctx)
        assert float((joint_logits - one_logits).abs().max()) < 0.01 * float(one_logits.abs().max())
        assert torch.equal(joint_logits.argmax(1), one_logits.argmax(1))


def test_models_that_do_not_fold_are_fitted_one_after_the_other():
    from ppbench.api import Context
    from ppbench.nn import SmallCNN
    from ppbench.nn.stacked import can_stack, fit_classifiers

    assert not can_stack([SmallCNN(3, 2, width=4), SmallCNN(3, 2, width=8)])
    assert not can_stack([SmallCNN(3, 2, width=4)])
    images, labels = _toy_classification(0, n=64)
    contexts = [Context(seed=1), Context(seed=2)]
    results = fit_classifiers([SmallCNN(3, 2, width=4), SmallCNN(3, 2, width=8)], [images, images],
                              [labels, labels], contexts, max_epochs=1)
    assert len(results) == 2 and all(r.epochs == 1 for r in results)
