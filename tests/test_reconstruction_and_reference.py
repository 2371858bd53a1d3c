"""The reconstruction and reference-detector scoring kinds, honest references, payload=image, the
budget curves and the amplified-difference strip: mechanics on small data."""

from __future__ import annotations

import math

import pytest
import torch

from ppbench import (AUX, HONEST_REFERENCE, ORACLE, Context, ReconstructionResult,
                     ReferenceDetectorView, Task)
from ppbench.api import AttackResult, MetricView
from ppbench.data import ImageSet
from ppbench.examples import amplified_difference
from ppbench.plugins.attacks.reconstruction import Reconstruction
from ppbench.plugins.attacks.secret_extraction import SecretExtraction
from ppbench.plugins.attacks.stego_detector import StegoDetector
from ppbench.plugins.metrics.distortion import Distortion
from ppbench.plugins.sanitizers.image_code import PCAImageCode
from ppbench.plugins.sanitizers.keyed_payload import SpreadSpectrumCode
from ppbench.plugins.sanitizers.ppgan_subverted import SubvertedPPGAN
from ppbench.reconstruction import ReconstructionTruth, score_attribute_attack, score_reconstruction
from ppbench.scoring import WithheldTruth
from ppbench.testing import TOY_TASK, check_attack, toy_splits

from test_ppgan import FAST, SHAPE, smooth_covers, smooth_splits


def truth_for(splits) -> WithheldTruth:
    prior = {name: torch.bincount(labels, minlength=splits.train.num_classes(name)).float() / len(labels)
             for name, labels in splits.train.labels.items()}
    return WithheldTruth(task=TOY_TASK, test=splits.test, train_prior=prior)


def test_reconstruction_scoring_computes_psnr_and_ssim_exactly_as_distortion_does():
    splits = toy_splits(size=16)
    g = torch.Generator().manual_seed(0)
    estimate = (splits.test.images + 0.05 * torch.randn(splits.test.images.shape, generator=g)).clamp(0, 1)
    labels = splits.test.labels["secret"]
    # A re-identifier that is right on the first half of the items only.
    truth = ReconstructionTruth(lambda images: torch.where(torch.arange(len(images)) < len(images) // 2,
                                                           labels, 1 - labels))
    scored = score_reconstruction(ReconstructionResult(estimate), truth_for(splits), "attack 't'", truth)
    values = {v.name: v.value for v in scored.values}
    view = MetricView(raw_train=splits.train, raw_attack=splits.attack, raw_test=splits.test,
                      sanitized_attack=splits.attack, sanitized_test=ImageSet(estimate, {}, {}))
    distortion = {v.name: v.value for v in Distortion().run(view, TOY_TASK, Context())}
    for name in ("psnr", "ssim", "mse"):
        assert values[name] == distortion[name], name  # exactly: the same function on the same pairs
    assert values["accuracy"] == pytest.approx(0.5, abs=1 / len(labels))
    assert math.isfinite(values["advantage"])


def test_reconstructions_of_the_wrong_shape_are_a_clear_error():
    splits = toy_splits(size=16)
    truth = ReconstructionTruth(lambda images: torch.zeros(len(images), dtype=torch.long))
    with pytest.raises(Exception, match="raw test images' shape"):
        score_reconstruction(ReconstructionResult(splits.test.images[:5]), truth_for(splits), "attack 't'", truth)


def test_an_attribute_attacks_decoded_images_are_scored_for_likeness():
    splits = toy_splits(size=16)
    result = AttackResult(predictions=splits.test.labels["secret"].clone(), reconstructions=splits.test.images.clone())
    values = {v.name: v.value for v in score_attribute_attack(result, truth_for(splits), "attack 't'").values}
    assert values["accuracy"] == 1.0 and values["ssim"] == pytest.approx(1.0) and values["mse"] == 0.0


def test_the_reconstruction_attack_undoes_a_deterministic_sanitizer():
    """A sanitizer that scales the image by half is invertible: the attack, trained on aux
    images through the oracle, rebuilds the test images far better than the sanitized ones are."""
    splits = smooth_splits()

    def oracle(images):
        return images * 0.5

    from ppbench.api import AttackView
    view = AttackView(attack=splits.attack, test=ImageSet(splits.test.images * 0.5, {}, {}),
                      aux=ImageSet(smooth_covers(600, seed=7), {}, {}), oracle=oracle)
    result = Reconstruction(base=8, max_epochs=20, patience=5).run(view, TOY_TASK, Context(seed=0))
    assert isinstance(result, ReconstructionResult) and result.images.shape == splits.test.images.shape
    before = float((splits.test.images * 0.5 - splits.test.images).pow(2).mean())
    after = float((result.images - splits.test.images).pow(2).mean())
    assert after < before / 4, (before, after)
    assert set(Reconstruction.requires) == {ORACLE, AUX}


def test_the_stego_detector_tells_a_stamped_model_from_its_reference():
    """A naive fixed pattern added to the reference's outputs is found (AUC near 1); the
    reference against itself scores at chance."""
    covers = smooth_covers(1200, seed=3)
    pattern = 0.03 * torch.sign(torch.randn(SHAPE, generator=torch.Generator().manual_seed(9)))
    suspect = (covers[:800] + pattern).clamp(0, 1)
    membership = torch.arange(400) % 2
    candidates = torch.where(membership.view(-1, 1, 1, 1) == 1, (covers[800:] + pattern).clamp(0, 1), covers[800:])
    view = ReferenceDetectorView(suspect=ImageSet(suspect, {}, {}), reference=ImageSet(covers[:800], {}, {}),
                                 candidates=candidates)
    from sklearn.metrics import roc_auc_score
    result = StegoDetector(width=8, max_epochs=10).run(view, TOY_TASK, Context(seed=0))
    assert roc_auc_score(membership.numpy(), result.scores.numpy()) > 0.95
    assert StegoDetector.requires == frozenset({HONEST_REFERENCE})
    # The detector's budget: its network, the items it learned from, its epochs under the cap.
    assert result.budget["width"] == 8 and result.budget["training_items"] == 1600
    assert result.budget["epochs"] == result.diagnostics["epochs"]
    assert result.budget["max_epochs"] == 10


def test_masks_of_any_length_and_bit_payloads_round_trip():
    code = SpreadSpectrumCode("k", SHAPE, 200, keyed=True)
    g = torch.Generator().manual_seed(1)
    bits = torch.randint(0, 2, (300, 200), generator=g)
    nonce = torch.randint(0, 2 ** 16, (300,), generator=g)
    read, read_nonce = code.extract_bits(code.embed_bits(smooth_covers(300), bits, nonce))
    assert torch.equal(read, bits) and torch.equal(read_nonce, nonce)
    with pytest.raises(ValueError, match="embed_bits"):
        code.embed(smooth_covers(2), torch.tensor([0, 1]), torch.tensor([0, 1]))


def test_the_image_code_rebuilds_its_inputs_at_its_measured_quality():
    covers = smooth_covers(600, seed=4)
    assert PCAImageCode(covers[:500], components=32, bits=5).encode(covers[:3]).shape == (3, 160)
    # Smooth fields upsampled from 3×4×4 noise span 48 dimensions: 48 components at 6 bits hold
    # them up to the quantization step (6 standard deviations / 63).
    code = PCAImageCode(covers[:500], components=48, bits=6)
    mse = float((code.decode(code.encode(covers[500:])) - covers[500:]).pow(2).mean())
    assert 10 * math.log10(1 / mse) > 35


def test_payload_image_hands_the_key_holder_the_input_and_the_identity():
    splits = smooth_splits()
    ctx = Context(seed=0)
    sanitizer = SubvertedPPGAN(**FAST, payload="image").fit(splits.train, TOY_TASK, ctx)
    out = sanitizer.transform(splits.test.images, ctx)
    decoded = sanitizer.handles()["secret_decoder"](out.images, ctx)
    expected = sanitizer.image_code.decode(sanitizer.image_code.encode(splits.test.images))
    assert torch.equal(decoded["image"], expected)
    splits.test.images = out.images
    result = check_attack(SecretExtraction(), splits, handles=sanitizer.handles())
    assert result.reconstructions is not None and result.reconstructions.shape == out.images.shape
    with pytest.raises(ValueError, match="payload must be one of identity, image"):
        SubvertedPPGAN(payload="voice")


def test_the_amplified_difference_is_grey_where_the_models_agree():
    reference = smooth_covers(4)
    stamped = reference.clone()
    stamped[:, :, 0, 0] += 0.004
    difference, gain = amplified_difference(stamped, reference)
    assert gain >= 64 and torch.allclose(difference[:, :, 1:, 1:], torch.full_like(difference[:, :, 1:, 1:], 0.5))
    assert amplified_difference(reference, reference)[1] == 1.0


def test_a_vendor_is_fitted_with_its_honest_references_seeds_and_compared_with_it(testkit, tmp_path):
    """The harness configures the reference from the vendor's parameters, fits both with the same
    seeds (the honest veils agree to the bit) and hands a reference-detector both outputs; a
    sanitizer without a usable reference gets n/a with the reason."""
    from ppbench.runner import RunOptions, run
    from ppbench.spec import spec_from_dict
    from ppbench.store import ResultStore

    spec = spec_from_dict({
        "benchmark": {"name": "vendor", "tasks": ["secret"], "seeds": 2},
        "dataset": {"name": "tiny"},
        "sanitizers": [{"name": "seeded-veil", "amount": 0.1}, {"name": "stamped-veil", "amount": 0.1},
                       {"name": "dangling-vendor"}],
        "attacks": [{"name": "reference-gap"}],
    }, "vendor.toml")
    run(spec, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "cache")))
    frame = ResultStore(tmp_path / "r.db").frame()
    vendor = frame[frame["sanitizer"] == "stamped-veil"]
    assert (vendor["status"] == "ok").all(), vendor["error"].unique()
    values = vendor.groupby("metric")["value"].max()
    assert values["diag:paired_difference"] == 0.0, values
    assert values["auc"] > 0.95, values
    errors = frame.drop_duplicates("sanitizer").set_index("sanitizer")["error"]
    assert "declares no honest reference" in errors["seeded-veil"]
    assert "'no-such-sanitizer', which is not registered" in errors["dangling-vendor"]
