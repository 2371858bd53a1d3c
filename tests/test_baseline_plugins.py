"""The baseline sanitizers, the three classifier attacks and the two built-in metrics."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from ppbench import Attribute, AttackView, Context, ImageSet, MetricView, Profile, Task
from ppbench.registry import build_registry
from ppbench.scoring import WithheldTruth, score_attribute
from ppbench.plugins.attacks.adversarial_classifier import AdversarialClassifier
from ppbench.plugins.attacks.fixed_classifier import FixedClassifier
from ppbench.plugins.attacks.linear_probe import LinearProbe
from ppbench.image_quality import psnr, ssim
from ppbench.plugins.metrics.distortion import Distortion
from ppbench.plugins.metrics.fixed_utility import FixedUtility
from ppbench.plugins.sanitizers.baseline import Blackout, Blur, Identity, Noise, Pixelate

TINY = Profile("tiny", image_size=8, n_train=400, n_attack=400, n_test=200, n_aux=0,
               max_epochs=3, fit_epochs=1, batch_size=32, cell_time_limit=120.0)
TASK = Task("toy", "bright", sensitive="bright", utility=("parity",))
ATTRIBUTES = {"bright": Attribute("bright", ("dark", "bright")),
              "parity": Attribute("parity", ("flat", "contrasted"))}


pytestmark = pytest.mark.usefixtures("single_torch_thread")


def context(seed: int = 0) -> Context:
    return Context(device="cpu", profile=TINY, seed=seed)


def toy_split(n: int, seed: int) -> ImageSet:
    """Mean brightness encodes ``bright``; a left-right contrast encodes ``parity``."""
    g = torch.Generator().manual_seed(seed)
    bright = torch.randperm(n, generator=g) % 2
    parity = torch.randperm(n, generator=g) % 2
    images = 0.2 * torch.rand(n, 3, 8, 8, generator=g) + 0.2 + 0.4 * bright.view(-1, 1, 1, 1)
    left_minus_right = torch.cat([torch.ones(4), -torch.ones(4)]).view(1, 1, 1, 8)
    images = images + 0.15 * parity.view(-1, 1, 1, 1) * left_minus_right
    return ImageSet(images.clamp(0, 1), {"bright": bright, "parity": parity}, dict(ATTRIBUTES))


@pytest.fixture(scope="module")
def raw():
    return toy_split(400, seed=1), toy_split(200, seed=2)


def sample_images(n: int = 8, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- sanitizers -----------------------------------------------------------------------------------

ALL_SANITIZERS = [Identity(), Blackout(), Blur(), Blur(sigma=0.5), Pixelate(), Pixelate(block=3),
                  Noise(), Noise(std=0.0)]


@pytest.mark.parametrize("sanitizer", ALL_SANITIZERS, ids=repr)
@pytest.mark.parametrize("size", [16, 15])
def test_sanitizers_keep_shape_dtype_and_range(sanitizer, size):
    images = sample_images(size=size)
    out = sanitizer.transform(images, context())
    assert out.shape == images.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert out.data_ptr() != images.data_ptr()  # never hands back the raw tensor itself


def test_identity_and_blackout():
    images = sample_images()
    assert torch.equal(Identity().transform(images, context()), images)
    assert torch.count_nonzero(Blackout().transform(images, context())) == 0
    vectors = torch.randn(5, 2)
    assert torch.count_nonzero(Blackout().transform(vectors, context())) == 0


def high_frequency_energy(images: torch.Tensor) -> float:
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    return float(dx.pow(2).mean() + dy.pow(2).mean())


def test_blur_removes_more_high_frequencies_with_larger_sigma():
    images = sample_images(size=32)
    energies = [high_frequency_energy(images)]
    energies += [high_frequency_energy(Blur(sigma=s).transform(images, context())) for s in (0.5, 1, 2, 4)]
    assert all(a > b for a, b in zip(energies, energies[1:])), energies
    # a sigma far larger than the image is clipped to the image and still works
    assert Blur(sigma=100).transform(images, context()).shape == images.shape


@pytest.mark.parametrize("size", [(16, 16), (15, 20)])
@pytest.mark.parametrize("sigma", [0.7, 2.0, 50.0])
def test_blur_equals_a_reflect_padded_separable_convolution(size, sigma):
    import torch.nn.functional as F

    from ppbench.plugins.sanitizers.baseline import gaussian_kernel1d

    images = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    radius = min(math.ceil(3 * sigma), size[0] - 1, size[1] - 1)
    kernel = gaussian_kernel1d(sigma, radius)
    planes = images.reshape(6, 1, *size)
    planes = F.conv2d(F.pad(planes, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    planes = F.conv2d(F.pad(planes, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    expected = planes.reshape(images.shape)
    assert torch.allclose(Blur(sigma=sigma).transform(images, context()), expected, atol=1e-6)


def test_blur_preserves_constant_images():
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(Blur(sigma=2).transform(flat, context()), flat, atol=1e-6)


@pytest.mark.parametrize("size,block", [(16, 4), (15, 4), (10, 3)])
def test_pixelate_is_piecewise_constant_cell_means(size, block):
    images = sample_images(size=size)
    out = Pixelate(block=block).transform(images, context())
    for top in range(0, size, block):
        for left in range(0, size, block):
            cell_in = images[..., top:top + block, left:left + block]
            cell_out = out[..., top:top + block, left:left + block]
            expected = cell_in.mean(dim=(-2, -1), keepdim=True).expand_as(cell_out)
            assert torch.allclose(cell_out, expected, atol=1e-6)


def test_noise_is_deterministic_per_seed_and_batch_invariant():
    images = sample_images(n=10)
    a = Noise(std=0.2).transform(images, context(seed=3))
    b = Noise(std=0.2).transform(images, context(seed=3))
    c = Noise(std=0.2).transform(images, context(seed=4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    in_batches = torch.cat([Noise(std=0.2).transform(images[:4], context(seed=3)),
                            Noise(std=0.2).transform(images[4:], context(seed=3))])
    assert torch.equal(a, in_batches)
    # distinct items get distinct noise, and its scale is std
    vectors = torch.zeros(2000, 2) + torch.arange(2000).view(-1, 1) * 1e-3
    noisy = Noise(std=0.5).transform(vectors, context())
    assert abs(float((noisy - vectors).std()) - 0.5) < 0.03
    assert float(noisy.min()) < 0  # vectors are not clamped


@pytest.mark.parametrize("make,message", [
    (lambda: Blur(sigma=0), "'blur'.*'sigma'"),
    (lambda: Blur(sigma=-1.0), "'blur'.*'sigma'"),
    (lambda: Blur(sigma=float("nan")), "'blur'.*'sigma'"),
    (lambda: Pixelate(block=0), "'pixelate'.*'block'"),
    (lambda: Pixelate(block=2.5), "'pixelate'.*'block'"),
    (lambda: Noise(std=-0.1), "'noise'.*'std'"),
    (lambda: AdversarialClassifier(arch="vgg"), "'adversarial-classifier'.*'arch'"),
    (lambda: AdversarialClassifier(max_epochs=0), "'adversarial-classifier'.*'max_epochs'"),
    (lambda: AdversarialClassifier(patience=0), "'adversarial-classifier'.*'patience'"),
    (lambda: AdversarialClassifier(validation=1.0), "'adversarial-classifier'.*'validation'"),
    (lambda: AdversarialClassifier(average=1.0), "'adversarial-classifier'.*'average'"),
    (lambda: AdversarialClassifier(lr=0), "'adversarial-classifier'.*'lr'"),
    (lambda: LinearProbe(pool=0), "'linear-probe'.*'pool'"),
    (lambda: LinearProbe(Cs=[]), "'linear-probe'.*'Cs'"),
    (lambda: LinearProbe(Cs=[1.0, -1.0]), "'linear-probe'.*'Cs'"),
    (lambda: LinearProbe(validation=0.0), "'linear-probe'.*'validation'"),
    (lambda: FixedUtility(epsilon_max=0), "'fixed-utility'.*'epsilon_max'"),
    (lambda: FixedUtility(distance="l3"), "'fixed-utility'.*'distance'"),
])
def test_bad_parameters_name_the_plugin_and_parameter(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_image_only_sanitizers_declare_and_check_it():
    assert Blur.inputs == Pixelate.inputs == frozenset({"image"})
    with pytest.raises(ValueError, match="'blur'"):
        Blur().transform(torch.rand(4, 2), context())


def test_params_round_trip():
    assert Blur(sigma=3.0).get_params() == {"sigma": 3.0}
    assert Pixelate(block=8).get_params() == {"block": 8}
    assert AdversarialClassifier().get_params() == {
        "arch": "auto", "max_epochs": None, "patience": None, "validation": 0.2, "lr": 2e-3,
        "width": None, "average": 0.98}
    assert LinearProbe(Cs=[0.1, 1.0]).get_params()["Cs"] == [0.1, 1.0]


# --- attacks --------------------------------------------------------------------------------------


def attack_view(raw, sanitizer) -> AttackView:
    train, test = raw
    ctx = context()
    # The raw train split doubles as the attack split here: these tests check attacks, not splits.
    sanitized_attack = train.with_images(sanitizer.transform(train.images, ctx))
    sanitized_test = test.without_labels().with_images(sanitizer.transform(test.images, ctx))
    return AttackView(attack=sanitized_attack, test=sanitized_test, raw_train=train)


def truth(raw, task: Task = TASK) -> WithheldTruth:
    train, test = raw
    return WithheldTruth(task=task, test=test, train_prior={a: train.class_frequencies(a) for a in train.labels})


def leakage(raw, attack, sanitizer, ctx: Context | None = None) -> float:
    """The primary figure: the normalized advantage, 0 at chance and 1 for a perfect attack."""
    result = attack.run(attack_view(raw, sanitizer), TASK, ctx or context())
    scored = score_attribute(result, truth(raw), attack.name)
    return next(v.value for v in scored.values if v.primary)


FAST_ADVERSARY = AdversarialClassifier(max_epochs=6, width=8)


@pytest.mark.parametrize("attack", [FAST_ADVERSARY, LinearProbe()], ids=repr)
def test_adaptive_attacks_read_identity_and_fail_on_blackout(raw, attack):
    assert leakage(raw, attack, Identity()) > 0.8
    assert abs(leakage(raw, attack, Blackout())) < 0.05  # a constant input gives a constant guess


def test_adversarial_classifier_returns_probabilities_and_diagnostics(raw):
    result = FAST_ADVERSARY.run(attack_view(raw, Identity()), TASK, context())
    assert result.predictions.shape == (200, 2)
    assert torch.allclose(result.predictions.sum(1), torch.ones(200), atol=1e-5)
    assert {"train_accuracy", "val_accuracy", "epochs", "best_epoch"} <= set(result.diagnostics)
    assert 0.9 < result.diagnostics["train_accuracy"] <= 1.0
    assert 0.9 < result.diagnostics["val_accuracy"] <= 1.0
    assert result.diagnostics["best_epoch"] >= 1
    assert result.diagnostics["best_epoch"] <= result.diagnostics["epochs"] <= 6
    scored = by_name(score_attribute(result, truth(raw), "adversarial-classifier").values)
    assert scored["auc"].value > 0.95  # scores, not just labels, reach the harness


def test_adversarial_classifier_stops_early_and_can_train_fixed_epochs(raw):
    view = attack_view(raw, Identity())
    stopped = AdversarialClassifier(max_epochs=40, patience=2, width=8).run(view, TASK, context())
    assert stopped.diagnostics["epochs"] < 40  # an easy task converges long before the cap
    fixed = AdversarialClassifier(max_epochs=2, validation=0.0, width=8).run(view, TASK, context())
    assert fixed.diagnostics["epochs"] == 2 and "val_accuracy" not in fixed.diagnostics


def test_adversarial_classifier_resnet10(raw):
    assert leakage(raw, AdversarialClassifier(arch="resnet10", width=8, max_epochs=4), Identity()) > 0.8


def test_linear_probe_converges_and_chooses_c(raw):
    probe = LinearProbe(Cs=[0.001, 1.0])
    result = probe.run(attack_view(raw, Identity()), TASK, context())
    assert result.predictions.shape == (200, 2)
    assert torch.allclose(result.predictions.sum(1), torch.ones(200, dtype=torch.float32), atol=1e-5)
    diagnostics = result.diagnostics
    assert diagnostics["converged"] == 1.0 and diagnostics["C"] in (0.001, 1.0)
    assert diagnostics["val_accuracy"] > 0.9 and diagnostics["train_accuracy"] > 0.9


def test_linear_probe_reports_an_unconverged_fit(raw):
    with pytest.warns(RuntimeWarning, match="did not converge"):
        result = LinearProbe(Cs=[100.0], max_iter=1).run(attack_view(raw, Identity()), TASK, context())
    assert result.diagnostics["converged"] == 0.0


def test_fixed_classifier_reads_identity_but_not_blackout(raw):
    assert FixedClassifier.requires == frozenset({"raw_train"})
    assert leakage(raw, FixedClassifier(), Identity()) > 0.8
    assert abs(leakage(raw, FixedClassifier(), Blackout())) < 0.05


def blobs(n: int, seed: int, std: float = 0.5) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    points = torch.tensor([[-1.0, 1.0], [1.0, -1.0]])[labels] + std * torch.randn(n, 2, generator=g)
    return ImageSet(points, {"s": labels}, {"s": Attribute("s", ("0", "1"))})


def test_attacks_work_on_vectors():
    train, test = blobs(400, seed=0), blobs(200, seed=1)
    task = Task("blobs", "s", sensitive="s")
    view = AttackView(attack=train, test=test.without_labels(), raw_train=train)
    for attack in (AdversarialClassifier(max_epochs=10), LinearProbe(), FixedClassifier()):
        predictions = attack.run(view, task, context()).predictions
        guesses = predictions.argmax(1) if predictions.dim() == 2 else predictions
        assert float((guesses == test.labels["s"]).float().mean()) > 0.9


def test_adversarial_classifier_reaches_the_bayes_accuracy_on_gaussians2d():
    """Two Gaussians N((−1, 1), 0.7²I) and N((1, −1), 0.7²I): the Bayes rule x₁ < x₂ is right with
    probability Φ(√2 / 0.7) ≈ 0.978. A converged adversary must not be significantly below it."""
    from ppbench.api import get_profile
    from ppbench.plugins.datasets.gaussians2d import load
    from ppbench.scoring import wilson_interval

    splits = load(get_profile("quick"), seed=0)
    task = Task("gaussians2d", "s", sensitive="s")
    view = AttackView(attack=splits.attack, test=splits.test.without_labels())
    ctx = Context(device="cpu", profile="quick", seed=0)
    result = AdversarialClassifier().run(view, task, ctx)
    truth_s = splits.test.labels["s"]
    correct = int((result.predictions.argmax(1) == truth_s).sum())
    n = len(truth_s)
    bayes = 0.5 * (1 + math.erf(math.sqrt(2) / 0.7 / math.sqrt(2)))
    assert bayes == pytest.approx(0.978, abs=5e-4)
    low, high = wilson_interval(correct, n)
    assert low <= bayes <= high, (correct / n, low, high)
    # The Bayes rule on the same points: sample noise hits both alike.
    bayes_rule = (splits.test.images[:, 0] > splits.test.images[:, 1]).long()
    assert correct / n >= float((bayes_rule == truth_s).float().mean()) - 0.01


# --- metrics --------------------------------------------------------------------------------------


def test_ssim_and_psnr_reference_values():
    images = sample_images(n=4, size=32)
    assert torch.allclose(ssim(images, images), torch.ones(4), atol=1e-5)
    noise = sample_images(n=4, size=32, seed=9)
    assert float(ssim(images, noise).max()) < 0.1
    a = torch.full((2, 3, 8, 8), 0.5)
    assert torch.allclose(psnr(a, a + 0.1), torch.full((2,), 20.0), atol=1e-3)  # MSE 0.01 -> 20 dB
    assert float(psnr(a, a).max()) == pytest.approx(100.0)  # capped, finite


def test_ssim_drops_with_blur():
    images = sample_images(n=4, size=32)
    mild = ssim(images, Blur(sigma=0.5).transform(images, context())).mean()
    strong = ssim(images, Blur(sigma=3).transform(images, context())).mean()
    assert float(strong) < float(mild) < 1


def metric_view(raw, sanitizer) -> MetricView:
    train, test = raw
    ctx = context()
    return MetricView(raw_train=train, raw_attack=train, raw_test=test,
                      sanitized_attack=train.with_images(sanitizer.transform(train.images, ctx)),
                      sanitized_test=test.with_images(sanitizer.transform(test.images, ctx)))


def by_name(values):
    return {v.name: v for v in values}


def test_distortion_metric(raw):
    identity = by_name(Distortion().run(metric_view(raw, Identity()), TASK, context()))
    assert identity["mse"].value == 0 and identity["mse"].primary and identity["mse"].better == "lower"
    assert identity["ssim"].value == pytest.approx(1.0, abs=1e-5)
    assert identity["psnr"].value == pytest.approx(100.0)
    blurred = by_name(Distortion().run(metric_view(raw, Blur(sigma=2)), TASK, context()))
    assert blurred["mse"].value > 0 and blurred["ssim"].value < 1 and blurred["psnr"].value < 100
    assert sum(v.primary for v in blurred.values()) == 1


def test_distortion_metric_on_vectors():
    points = torch.zeros(10, 2)
    data = ImageSet(points, {})
    view = MetricView(data, data, data, data, data.with_images(points + torch.tensor([0.3, 0.4])))
    values = by_name(Distortion().run(view, Task("t", "t", "s"), context()))
    assert values["l1"].value == pytest.approx(0.7) and values["l2"].value == pytest.approx(0.5)
    assert values["mse"].value == pytest.approx(0.125) and "ssim" not in values


def counting_store(builds: list[dict]):
    cache: dict = {}

    def store(name, build, key):
        cache_key = (name, repr(sorted(key.items())))
        if cache_key not in cache:
            builds.append(dict(key))
            cache[cache_key] = build()
        return cache[cache_key]

    return store


def test_fixed_utility_is_chance_corrected_balanced_accuracy(raw):
    builds: list[dict] = []
    ctx = Context(device="cpu", profile=TINY, seed=0, shared_store=counting_store(builds))
    identity = by_name(FixedUtility().run(metric_view(raw, Identity()), TASK, ctx))
    blackout = by_name(FixedUtility().run(metric_view(raw, Blackout()), TASK, ctx))
    noise = by_name(FixedUtility().run(metric_view(raw, Noise(std=0.05)), TASK, ctx))
    assert len(builds) == 1 and builds[0]["attribute"] == "parity"  # one model, every cell
    primary = identity["utility"]
    assert primary.primary and primary.role == "utility" and primary.chance == 0.0
    assert sum(v.primary for v in identity.values()) == 1
    # The budget behind the figure: one reference per kept attribute, on the raw train split.
    assert identity["budget:reference_models"].value == 1 and identity["budget:reference_models"].role == "budget"
    assert identity["budget:training_items"].value == len(raw[0])
    # identity keeps everything the raw data has: its utility is the ceiling
    assert primary.value == pytest.approx(identity["ceiling"].value) and primary.value > 0.8
    assert identity["bacc:parity"].value == pytest.approx(identity["mean_bacc"].value)
    assert primary.value == pytest.approx(2 * identity["bacc:parity"].value - 1)  # K = 2
    assert primary.ci_low <= primary.value <= primary.ci_high <= 1.0
    # a black image gets one constant answer: balanced accuracy exactly 1/K, utility exactly 0
    assert blackout["utility"].value == pytest.approx(0.0, abs=1e-12)
    assert blackout["bacc:parity"].value == pytest.approx(0.5, abs=1e-12)
    assert blackout["ceiling"].value == pytest.approx(identity["ceiling"].value)
    assert blackout["utility"].value < noise["utility"].value <= primary.value + 0.05
    # a 95% bootstrap interval over the test items, seeded from the context
    blurred = by_name(FixedUtility().run(metric_view(raw, Blur(sigma=1.0)), TASK, ctx))["utility"]
    assert blurred.ci_low < blurred.value < blurred.ci_high
    assert 0.02 < blurred.ci_high - blurred.ci_low < 0.5
    again = by_name(FixedUtility().run(metric_view(raw, Blur(sigma=1.0)), TASK, ctx))["utility"]
    assert (again.ci_low, again.ci_high) == (blurred.ci_low, blurred.ci_high)


def test_reference_classifiers_are_shared_across_tasks_and_with_the_attack(raw):
    """The classifier of an attribute is trained once, whichever task or plugin asks for it."""
    builds: list[dict] = []
    ctx = Context(device="cpu", profile=TINY, seed=0, shared_store=counting_store(builds))
    reverse = Task("toy", "parity", sensitive="parity", utility=("bright",))
    also_parity = Task("toy", "other", sensitive="bright", utility=("parity",))
    FixedUtility().run(metric_view(raw, Identity()), TASK, ctx)  # builds parity
    FixedUtility().run(metric_view(raw, Identity()), reverse, ctx)  # builds bright
    FixedUtility().run(metric_view(raw, Blur()), also_parity, ctx)  # parity again: cached
    FixedClassifier().run(attack_view(raw, Identity()), TASK, ctx)  # bright: cached
    FixedClassifier().run(attack_view(raw, Identity()), reverse, ctx)  # parity: cached
    assert [b["attribute"] for b in builds] == ["parity", "bright"]


def test_fixed_utility_synthetic_score_is_the_elementwise_mean_l1():
    points = torch.randn(100, 2)
    data = ImageSet(points, {})
    shifted = data.with_images(points + torch.tensor([0.5, -0.5]))
    view = MetricView(data, data, data, data, shifted)
    task = Task("gaussians2d", "s", sensitive="s")
    values = by_name(FixedUtility().run(view, task, context()))
    utility = values["utility"]
    assert utility.primary and values["distance"].value == pytest.approx(0.5)  # F.l1_loss
    assert utility.value == pytest.approx(0.75)  # 1 − 0.5 / epsilon_max, epsilon_max = 2
    assert utility.ci_low == pytest.approx(0.75) and utility.ci_high == pytest.approx(0.75)
    at_budget = MetricView(data, data, data, data, data.with_images(points + 2.0))
    at_budget_value = by_name(FixedUtility().run(at_budget, task, context()))["utility"].value
    assert at_budget_value == pytest.approx(0.0, abs=1e-6)
    # the paper's text: the Euclidean norm per item
    l2 = by_name(FixedUtility(distance="l2").run(view, task, context()))["utility"]
    assert l2.value == pytest.approx(1 - math.sqrt(0.5) / 2, abs=1e-6)


def test_fixed_utility_synthetic_score_on_images_is_one_minus_mae():
    images = torch.full((10, 3, 4, 4), 0.5)
    data = ImageSet(images, {})
    view = MetricView(data, data, data, data, data.with_images(images + 0.1))
    values = by_name(FixedUtility().run(view, Task("x", "s", sensitive="s"), context()))
    assert values["utility"].value == pytest.approx(0.9)


# --- registration ---------------------------------------------------------------------------------


def test_registered_through_entry_points():
    registry = build_registry()
    assert {"identity", "blackout", "blur", "pixelate", "noise"} <= set(registry.names("sanitizers"))
    assert {"adversarial-classifier", "fixed-classifier", "linear-probe"} <= set(registry.names("attacks"))
    assert {"fixed-utility", "distortion"} <= set(registry.names("metrics"))
    for kind in ("sanitizers", "attacks", "metrics"):
        for name in registry.names(kind):
            obj = registry.get(kind, name).obj
            if obj.__module__.startswith("plugins."):
                assert obj.summary() and obj.version


def test_plugin_modules_do_not_import_torch():
    modules = ["ppbench.plugins.sanitizers.baseline", "ppbench.plugins.attacks.adversarial_classifier",
               "ppbench.plugins.attacks.fixed_classifier", "ppbench.plugins.attacks.linear_probe",
               "ppbench.plugins.metrics.fixed_utility", "ppbench.plugins.metrics.distortion"]
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the contract checks every plugin author runs -------------------------------------------------


@pytest.mark.parametrize("sanitizer", [Identity(), Blackout(), Blur(sigma=1.5), Pixelate(block=3),
                                       Noise(std=0.2)], ids=repr)
def test_sanitizers_pass_the_contract_checks(sanitizer):
    from ppbench.testing import check_sanitizer

    check_sanitizer(sanitizer)


@pytest.mark.parametrize("attack", [AdversarialClassifier(max_epochs=2, width=8), FixedClassifier(),
                                    LinearProbe()], ids=repr)
def test_attacks_pass_the_contract_checks(attack):
    from ppbench.testing import check_attack

    check_attack(attack)
