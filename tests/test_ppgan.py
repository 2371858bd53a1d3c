"""The identity-replacing PP-GAN, its subverted twin, the keyed payload and the attacks on it:
contracts and mechanics on small data (the claims on synthfaces live in test_ppgan_claims.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from ppbench import SECRET_DECODER, Context
from ppbench.plugins.attacks.residual_probe import ResidualProbe, srm_residuals
from ppbench.plugins.attacks.secret_extraction import SecretExtraction
from ppbench.plugins.sanitizers.keyed_payload import SpreadSpectrumCode
from ppbench.plugins.sanitizers.ppgan import PPGAN
from ppbench.plugins.sanitizers.ppgan_subverted import SubvertedPPGAN
from ppbench.testing import TOY_TASK, check_attack, check_sanitizer, toy_splits

SHAPE = (3, 16, 16)


def smooth_covers(n: int, seed: int = 0) -> torch.Tensor:
    """Face-like covers: smooth random fields (4×4 noise upsampled) in [0.1, 0.9]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    return 0.1 + 0.8 * torch.nn.functional.interpolate(coarse, size=SHAPE[1:], mode="bilinear",
                                                       align_corners=False)


@pytest.mark.parametrize("keyed", [True, False])
def test_the_key_holder_reads_every_payload_back(keyed):
    code = SpreadSpectrumCode("k1", SHAPE, 3, keyed=keyed)
    g = torch.Generator().manual_seed(1)
    payload = torch.randint(0, 8, (2000,), generator=g)
    nonce = torch.randint(0, 2 ** 16, (2000,), generator=g)
    stamped = code.embed(smooth_covers(2000), payload, nonce)
    decoded, read_nonce = code.extract(stamped)
    assert torch.equal(decoded, payload)
    if keyed:
        assert torch.equal(read_nonce, nonce)
    # Faint: the pattern's RMS per pixel is amplitude·sqrt(bits).
    rms = float((stamped - smooth_covers(2000)).pow(2).mean().sqrt())
    assert rms == pytest.approx(code.amplitude * (3 + 16 * keyed) ** 0.5, rel=0.1)


def test_a_wrong_key_reads_noise():
    payload = torch.randint(0, 8, (2000,), generator=torch.Generator().manual_seed(2))
    nonce = torch.randint(0, 2 ** 16, (2000,), generator=torch.Generator().manual_seed(3))
    stamped = SpreadSpectrumCode("right", SHAPE, 3).embed(smooth_covers(2000), payload, nonce)
    decoded, _ = SpreadSpectrumCode("wrong", SHAPE, 3).extract(stamped)
    assert float((decoded == payload).float().mean()) == pytest.approx(1 / 8, abs=0.04)


@pytest.mark.parametrize("keyed, learnable", [(False, True), (True, False)])
def test_only_the_naive_payload_is_learnable_without_the_key(keyed, learnable):
    """The matched keyless detector (a linear classifier on the residual) learns a fixed
    value→pattern map and nothing from a keyed, nonce-masked payload."""
    code = SpreadSpectrumCode("k2", SHAPE, 1, keyed=keyed)
    g = torch.Generator().manual_seed(4)
    payload = torch.randint(0, 2, (3000,), generator=g)
    nonce = torch.randint(0, 2 ** 16, (3000,), generator=g)
    stamped = code.embed(smooth_covers(3000, seed=5), payload, nonce)
    features = srm_residuals(stamped, ["kb"]).flatten(1).numpy()
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(features[:2000], payload[:2000].numpy())
    accuracy = float(np.mean(probe.predict(features[2000:]) == payload[2000:].numpy()))
    if learnable:
        assert accuracy > 0.95
    else:
        assert abs(accuracy - 0.5) < 0.05  # 1,000 test items: 3 standard errors


def test_payloads_that_do_not_fit_fail_clearly():
    code = SpreadSpectrumCode("k", SHAPE, 3)
    with pytest.raises(ValueError, match="fit 3 bits"):
        code.embed(smooth_covers(2), torch.tensor([0, 8]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="nonce"):
        code.embed(smooth_covers(2), torch.tensor([0, 1]))


def smooth_splits():
    """The toy splits at 16×16 with smooth covers (channel 0 still tells the secret): the uniform
    pixel noise of the contract checks' toy images drowns any faint payload, as no face does."""
    splits = toy_splits(size=16)
    for index, (_, split) in enumerate(splits.items()):
        cover = 0.7 * smooth_covers(len(split), seed=10 + index)
        cover[:, 0] += 0.3 * split.labels["secret"].view(-1, 1, 1).float()
        split.images = cover
    return splits


FAST = {"keep": "keep", "epochs": 1, "code_dim": 8, "width": 8, "discriminator_width": 8}


def test_ppgan_meets_the_sanitizer_contract_and_records_its_targets():
    check_sanitizer(PPGAN(**FAST))
    splits = toy_splits()
    sanitizer = PPGAN(**FAST).fit(splits.train, TOY_TASK, Context(seed=0))
    out = sanitizer.transform(splits.test.images, Context(seed=0))
    assert set(out.records) == {"replacement"} and out.records["replacement"].max() <= 1
    rendered = sanitizer.handles()["generator"](splits.test.images[:4], torch.tensor([0, 1, 0, 1]), Context())
    assert rendered.shape == (4, 3, 8, 8)


def test_ppgan_names_a_missing_kept_attribute():
    with pytest.raises(ValueError, match="keep='expression' is not an attribute"):
        PPGAN(epochs=1).fit(toy_splits().train, TOY_TASK, Context())


def test_the_subverted_model_meets_the_contract_and_its_decoder_reads_its_reader():
    params = {**FAST, "key": "abc"}
    check_sanitizer(SubvertedPPGAN(**params))
    splits = smooth_splits()
    ctx = Context(seed=0)
    sanitizer = SubvertedPPGAN(**params).fit(splits.train, TOY_TASK, ctx)
    out = sanitizer.transform(splits.test.images, ctx)
    from ppbench.nn import predict_logits
    read = predict_logits(sanitizer.source_reader, splits.test.images, ctx).argmax(dim=1)
    decoded = sanitizer.handles()[SECRET_DECODER](out.images, ctx)
    assert torch.equal(decoded["secret"], read)
    splits.test.images = out.images  # what the harness hands the attack: sanitized test images
    result = check_attack(SecretExtraction(), splits, handles=sanitizer.handles())
    assert torch.equal(result.predictions, read)


def test_the_subverted_model_takes_the_honest_models_parameters_and_no_others():
    assert SubvertedPPGAN(code_dim=8).get_params()["code_dim"] == 8
    with pytest.raises(ValueError, match="has no parameter colour"):
        SubvertedPPGAN(colour=1)


def test_secret_extraction_names_a_decoder_that_does_not_decode_the_secret():
    def decoder(images, ctx):
        return {"identity": torch.zeros(len(images), dtype=torch.long)}

    with pytest.raises(ValueError, match="sensitive attribute 'secret'"):
        check_attack(SecretExtraction(), toy_splits(), handles={SECRET_DECODER: decoder})


def test_the_residual_probe_meets_the_contract_and_reads_a_naive_payload():
    check_attack(ResidualProbe())
    splits = toy_splits(n_train=600, n_test=300, size=16)
    code = SpreadSpectrumCode("k3", SHAPE, 1, keyed=False)
    for split in (splits.attack, splits.test):
        split.images = code.embed(smooth_covers(len(split)), split.labels["secret"])
    result = check_attack(ResidualProbe(), splits)
    accuracy = float((result.predictions.argmax(dim=1) == splits.test.labels["secret"]).float().mean())
    assert accuracy > 0.95
