"""synthfaces: conventions, determinism, shared identities across splits, CelebA-like correlations,
identities that no single colour gives away, and attributes that a classifier can actually read
from the pixels (identity less so once the image is coarsened)."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
import torch

from ppbench import get_profile
from ppbench.data import validate_splits
from ppbench.registry import build_registry

# Rendering and the probes work on small tensors, and the machine may be shared.
pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module")
def synthfaces():
    return build_registry().dataset("synthfaces")


def load(spec, seed=0, **params):
    """The data set at the quick profile; a tiny attack split unless one is asked for."""
    return spec.load(get_profile("quick"), seed=seed, **{**spec.params, "n_attack": 10, **params})


def test_splits_follow_the_tensor_conventions(synthfaces):
    splits = load(synthfaces, n_train=300, n_test=200, n_aux=100)
    validate_splits(splits, synthfaces.attribute_map(), "synthfaces")
    size = get_profile("quick").image_size
    assert splits.train.images.shape == (300, 3, size, size)
    assert splits.aux.images.shape == (100, 3, size, size)
    assert load(synthfaces, n_train=8, n_test=4, n_aux=2, image_size=64).train.images.shape == (8, 3, 64, 64)
    names = {a.name for a in synthfaces.attributes}
    assert {"identity", "expression", "smiling", "mouth_open", "glasses", "lipstick", "young"} <= names
    assert synthfaces.attribute_map()["expression"].classes == (
        "anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
    assert {"identity", "smiling"} <= {t.name for t in synthfaces.tasks}


def test_same_seed_same_faces_other_seed_other_faces(synthfaces):
    a, b = load(synthfaces, n_train=64, n_test=32, n_aux=8), load(synthfaces, n_train=64, n_test=32, n_aux=8)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels["smiling"], b.test.labels["smiling"])
    c = load(synthfaces, seed=1, n_train=64, n_test=32, n_aux=8)
    assert not torch.equal(a.train.images, c.train.images)
    # Splits are independent draws, not copies of each other.
    assert not torch.equal(a.train.images[:32], a.test.images)


def test_other_identity_counts_are_described_and_validated(synthfaces):
    splits = load(synthfaces, n_identities=12, n_train=400, n_test=50, n_aux=10)
    validate_splits(splits, {**synthfaces.attribute_map(), **splits.train.attributes}, "synthfaces")
    assert splits.train.attributes["identity"].num_classes == 12
    assert int(splits.train.labels["identity"].max()) == 11
    assert load(synthfaces, n_identities=2, n_train=20, n_test=4, n_aux=2).train.attributes["identity"].num_classes == 2


def test_attribute_correlations_match_the_documented_celeba_targets(synthfaces):
    """Measured on the labels the loader hands out (20k images, rendered tiny to stay fast). The
    model's exact values lie within 0.015 of the targets and the sampling error at 20k is ~0.007."""
    from ppbench.plugins.datasets.synthfaces import CORRELATION_TARGETS

    labels = load(synthfaces, n_train=20000, n_test=16, n_aux=16, image_size=8).train.labels
    for (first, second), target in CORRELATION_TARGETS.items():
        pair = torch.stack([labels[first].double(), labels[second].double()])
        measured = float(torch.corrcoef(pair)[0, 1])
        assert abs(measured - target) < 0.05, f"corr({first}, {second}) = {measured:.2f}, target {target}"
    # Smiling follows the expression: joy is mostly a smile, anger and sadness nearly never.
    smile_rate = {e: float(labels["smiling"][labels["expression"] == i].float().mean())
                  for i, e in enumerate(synthfaces.attribute_map()["expression"].classes)}
    assert smile_rate["joy"] > 0.75 and smile_rate["anger"] < 0.1 and smile_rate["sadness"] < 0.1


@pytest.fixture(scope="module")
def probe_splits(synthfaces):
    """A few thousand images of the default data set (50 identities) at 32×32, the size at which
    its identity traits were designed (the quick profile renders smaller, to save CPU time)."""
    return load(synthfaces, n_train=2000, n_test=1000, n_aux=10, image_size=32)


def linear_probe(splits, attribute, transform=lambda images: images):
    """Test accuracy of a multinomial logistic regression on standardized 2×2-pooled pixels
    (a fixed C and 100 L-BFGS iterations, which score within 0.01 of 300 iterations here:
    a cheap probe, a lower bound on what is readable)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    def features(images):
        return torch.nn.functional.avg_pool2d(transform(images), 2).flatten(1).numpy()

    scaler = StandardScaler().fit(features(splits.train.images))
    # One BLAS thread: on a shared machine, threads that wait on each other cost far more than
    # they save on matrices this small.
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=0.1, max_iter=100)
        model.fit(scaler.transform(features(splits.train.images)), splits.train.labels[attribute])
    return model.score(scaler.transform(features(splits.test.images)), splits.test.labels[attribute])


def test_identity_is_readable_from_pixels_and_coarse_obfuscations_hide_much_of_it(probe_splits):
    """Among 50 identities (chance 0.02), a linear probe reads who it is from the raw pixels;
    pixelating with 8-pixel blocks or blurring with σ = 3 leaves the coarse look (skin, hair,
    beard), which look-alikes share, and loses much of the finer traits that tell them apart.
    Measured at seed 0: raw 0.78, blur(1.5) 0.73, pixelate(4) 0.69, blur(3) 0.55, pixelate(8) 0.42."""
    from ppbench import Context
    from ppbench.plugins.sanitizers.baseline import Blur, Pixelate

    ctx = Context(seed=0)
    raw = linear_probe(probe_splits, "identity")
    blurred = linear_probe(probe_splits, "identity", lambda x: Blur(sigma=3.0).transform(x, ctx))
    pixelated = linear_probe(probe_splits, "identity", lambda x: Pixelate(block=8).transform(x, ctx))
    assert raw > 0.6, raw
    assert blurred < raw - 0.12, (raw, blurred)
    assert pixelated < raw - 0.2, (raw, pixelated)
    # Coarsened, the look still shows: far above chance, not nothing.
    assert pixelated > 0.15 and blurred > 0.15, (pixelated, blurred)


def test_smile_is_readable_from_pixels_and_blur_hides_some(probe_splits):
    from ppbench import Context
    from ppbench.plugins.sanitizers.baseline import Blur

    raw = linear_probe(probe_splits, "smiling")
    assert raw > 0.75
    assert linear_probe(probe_splits, "smiling", lambda x: Blur(sigma=3.0).transform(x, Context(seed=0))) < raw


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_skin_tone_or_hair_colour_is_unique_to_one_identity(synthfaces, seed):
    """With the default 50 identities every colour is shared (by at least 3 identities), so that
    no single colour reveals who it is; look-alikes differ in their finer traits."""
    from ppbench.plugins.datasets.synthfaces import make_identities

    n = synthfaces.params["n_identities"]
    assert n == 50 and synthfaces.attribute_map()["identity"].num_classes == 50
    identities = make_identities(n, seed)
    for trait in ("skin", "hair_colour"):
        users = Counter(map(tuple, getattr(identities, trait).tolist()))
        assert min(users.values()) >= 3, (trait, users)
    pairs = Counter(zip(map(tuple, identities.skin.tolist()), map(tuple, identities.hair_colour.tolist())))
    assert min(pairs.values()) >= 3
    assert int(identities.male.sum()) == n // 2
    for look in identities.look.unique():
        members = torch.nonzero(identities.look == look).flatten()
        assert len(members) >= 3 and len(set(identities.male[members].tolist())) == 1
        # Distinct eye colour, nose and face shape within the group: told apart up close.
        assert len(set(map(tuple, identities.eye_colour[members].tolist()))) == len(members)
        assert len(set(identities.nose_style[members].tolist())) == len(members)
        assert len(set(identities.face_width[members].tolist())) == len(members)


def test_registered_through_the_entry_points():
    registry = build_registry()
    for name, kind in (("synthfaces", "image"), ("gaussians2d", "vector")):
        spec = registry.dataset(name)
        assert spec.kind == kind and registry.source("datasets", name).plugin == name
        assert not [f for f in registry.failures if f.plugin == name]
        for task in spec.tasks:
            assert task.sensitive not in task.utility


def test_discovery_does_not_import_torch():
    """``ppbench list`` imports every plugin module: the data sets must defer torch to load()."""
    import subprocess
    import sys

    code = ("import sys, ppbench.plugins.datasets.synthfaces, ppbench.plugins.datasets.gaussians2d; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_splits_are_distinct_draws_of_the_same_identities(synthfaces):
    splits = load(synthfaces, n_identities=8, n_train=400, n_attack=200, n_test=200, n_aux=200)
    for _, split in splits.items():
        assert set(split.labels["identity"].tolist()) == set(range(8))
        assert set(split.labels["expression"].tolist()) == set(range(7))
    flat = {name: split.images.flatten(1) for name, split in splits.items()}
    assert float(torch.cdist(flat["train"], flat["test"]).min()) > 0
    assert float(torch.cdist(flat["train"], flat["aux"]).min()) > 0
    assert float(torch.cdist(flat["train"], flat["attack"]).min()) > 0
    # Each split draws from its own stream: resizing one split leaves the others as they were.
    small_train = load(synthfaces, n_train=10, n_test=10, n_aux=10)
    assert torch.equal(small_train.test.images, load(synthfaces, n_train=50, n_test=10, n_aux=3).test.images)


def test_every_attribute_visibly_changes_the_face():
    """Render the same draws with one attribute switched off and on: every face changes."""
    from ppbench.plugins.datasets.synthfaces import (BINARY_ATTRIBUTES, EXPRESSIONS, Factors,
                                                     make_identities, sample_factors)
    from ppbench.plugins.datasets.synthfaces_render import render_faces

    identities = make_identities(8, seed=0)
    factors = sample_factors(128, identities, torch.Generator().manual_seed(0))

    def render_with(**overrides):
        labels = {**factors.labels, **{k: torch.full_like(factors.labels[k], v) for k, v in overrides.items()}}
        return render_faces(Factors(labels, factors.nuisance), identities, 32,
                            torch.Generator().manual_seed(1), noise_std=0.0)

    for attribute in BINARY_ATTRIBUTES:
        if attribute == "male":  # a trait of the identity, not switchable per image
            continue
        change = (render_with(**{attribute: 1}) - render_with(**{attribute: 0})).abs().flatten(1)
        # Every face changes somewhere by a visible step; the faintest case seen (bronze eye
        # shadow on a tan face) moves its most changed pixel by 0.025.
        assert float(change.amax(1).min()) > 0.02, attribute
        assert float(change.mean()) > 0.002, attribute
    faces = [render_with(expression=i, smiling=0, mouth_open=0) for i in range(len(EXPRESSIONS))]
    for i in range(len(faces)):
        for j in range(i):
            difference = (faces[i] - faces[j]).abs().flatten(1).mean(1)
            assert float(difference.min()) > 5e-4, (EXPRESSIONS[i], EXPRESSIONS[j])


def test_render_grid_writes_a_small_png(tmp_path):
    from PIL import Image

    from ppbench.plugins.datasets.synthfaces_grid import render_grid

    path = tmp_path / "grid.png"
    render_grid(str(path), n_identities=3, n_columns=4, image_size=16, upscale=2)
    with Image.open(path) as image:
        assert image.size == (4 * 16 * 2, 3 * 16 * 2)
    # The first rows of a larger data set.
    render_grid(str(path), n_identities=12, n_rows=2, n_columns=3, image_size=16, upscale=1)
    with Image.open(path) as image:
        assert image.size == (3 * 16, 2 * 16) and image.mode == "P"


def test_gaussians2d_follows_the_vector_conventions():
    spec = build_registry().dataset("gaussians2d")
    splits = spec.load(get_profile("quick"), seed=0, **spec.params)
    validate_splits(splits, spec.attribute_map(), "gaussians2d")
    assert splits.train.images.shape == (get_profile("quick").n_train, 2)
    assert splits.test.images.shape == (2560, 2) and splits.train.images.dtype == torch.float32
    other = spec.load(get_profile("quick"), seed=1, **spec.params)
    assert not torch.equal(other.train.images, splits.train.images)


def test_synthfaces_other_identities_are_other_people_and_change_no_other_split():
    """Open-set re-identification needs people the recognizer never saw in training: the other
    identities are drawn from their own streams, so no one of them is a test identity, and the
    train, attack and test splits are the same with or without them."""
    from ppbench.plugins.datasets.synthfaces import _STREAMS, load, make_identities

    profile = get_profile("quick")
    sizes = dict(n_train=40, n_attack=40, n_test=40, n_aux=8)
    with_others = load(profile, seed=3, n_other_identities=30, n_other=90, **sizes)
    without = load(profile, seed=3, n_other_identities=0, **sizes)
    assert without.other_identities is None
    others = with_others.other_identities
    assert len(others) == 90 and others.attributes["identity"].num_classes == 30
    assert set(others.labels["identity"].tolist()) <= set(range(30))
    for split in ("train", "attack", "test"):
        assert torch.equal(getattr(with_others, split).images, getattr(without, split).images)
    # Their traits are nobody's among the data set's own 50 people.
    own = make_identities(50, 3)
    strangers = make_identities(30, 3, stream=_STREAMS["other_identities"])
    own_faces = torch.stack([own.face_width, own.face_height, own.eye_spacing, own.nose_size], 1)
    strange_faces = torch.stack([strangers.face_width, strangers.face_height, strangers.eye_spacing,
                                 strangers.nose_size], 1)
    assert torch.cdist(strange_faces.float(), own_faces.float()).min() > 0
