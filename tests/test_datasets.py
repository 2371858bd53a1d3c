"""synthfaces: conventions, determinism, shared identities across splits, CelebA-like correlations,
and attributes that a classifier can actually read from the pixels."""

from __future__ import annotations

import pytest
import torch

from harness import get_profile
from harness.data import validate_splits
from harness.plugins import build_registry


@pytest.fixture(scope="module")
def synthfaces():
    return build_registry().dataset("synthfaces")


def load(spec, seed=0, **params):
    return spec.load(get_profile("quick"), seed=seed, **{**spec.params, **params})


def test_splits_follow_the_tensor_conventions(synthfaces):
    splits = load(synthfaces, n_train=300, n_test=200, n_aux=100)
    validate_splits(splits, synthfaces.attribute_map(), "synthfaces")
    assert splits.train.images.shape == (300, 3, 32, 32) and splits.aux.images.shape == (100, 3, 32, 32)
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


def test_more_identities_than_the_default_are_described_and_validated(synthfaces):
    splits = load(synthfaces, n_identities=12, n_train=400, n_test=50, n_aux=10)
    assert splits.train.attributes["identity"].num_classes == 12
    assert int(splits.train.labels["identity"].max()) == 11


def test_attribute_correlations_match_the_documented_celeba_targets():
    from plugins.datasets.synthfaces import CORRELATION_TARGETS, make_identities, sample_attributes

    identities = make_identities(8, seed=0)
    labels = sample_attributes(20000, identities, torch.Generator().manual_seed(0))
    for (first, second), target in CORRELATION_TARGETS.items():
        pair = torch.stack([labels[first].double(), labels[second].double()])
        measured = float(torch.corrcoef(pair)[0, 1])
        assert abs(measured - target) < 0.12, f"corr({first}, {second}) = {measured:.2f}, target {target}"


def test_identity_and_smile_are_readable_from_pixels_and_blur_hides_some(synthfaces):
    """A linear probe on raw pixels recovers who it is and (less well) the smile; blurring
    lowers the smile's accuracy. Learnable, not trivial."""
    from sklearn.linear_model import LogisticRegression

    splits = load(synthfaces, n_train=1500, n_test=500, n_aux=10)

    def probe(attribute, transform=lambda x: x):
        def features(images):
            return torch.nn.functional.avg_pool2d(transform(images), 2).flatten(1).numpy()

        model = LogisticRegression(max_iter=300).fit(features(splits.train.images), splits.train.labels[attribute])
        return model.score(features(splits.test.images), splits.test.labels[attribute])

    from plugins.sanitizers.baseline import Blur
    from harness import Context

    blur = Blur(sigma=3.0)
    ctx = Context(seed=0)
    assert probe("identity") > 0.9
    raw_smile = probe("smiling")
    assert raw_smile > 0.75
    assert probe("smiling", lambda x: blur.transform(x, ctx)) < raw_smile
