"""Webster et al.'s surrogate GAN and the membership attacks: contracts and mechanics on small data
(the paper-scale trend is in tests/test_surrogate_claims.py)."""

from __future__ import annotations

import pytest
import torch

from ppbench import DISCRIMINATOR, GENERATOR, Context, LatentGenerator, NotApplicable, RealnessScorer
from ppbench.data import ImageSet
from ppbench.membership import MembershipView
from ppbench.plugins.attacks.dcr import DistanceToClosestRecord
from ppbench.plugins.attacks.latent_recovery import LatentRecovery
from ppbench.plugins.attacks.logan import LoganBlackbox, LoganWhitebox
from ppbench.plugins.sanitizers.surrogate_gan import SurrogateGAN
from ppbench.testing import TOY_TASK, check_sanitizer, toy_splits

FAST = {"epochs": 2, "width": 8, "latent_dim": 8, "discriminator_width": 8}


@pytest.mark.parametrize("arch", ["dcgan", "lsgan"])
def test_surrogate_gan_meets_the_sanitizer_contract_and_releases_labelled_faces(arch):
    check_sanitizer(SurrogateGAN(arch=arch, n_release=50, **FAST), toy_splits(size=16))


def test_surrogate_gan_exposes_its_handles_in_the_common_forms():
    splits = toy_splits(size=16)
    ctx = Context(seed=0)
    sanitizer = SurrogateGAN(n_release=30, **FAST).fit(splits.train, TOY_TASK, ctx)
    release = sanitizer.release(999, ctx)
    assert len(release) == 30 and set(release.labels) == {"secret", "keep"}
    handles = sanitizer.handles()
    assert isinstance(handles[DISCRIMINATOR], RealnessScorer) and isinstance(handles[GENERATOR], LatentGenerator)
    scores = handles[DISCRIMINATOR].realness(splits.test.images, ctx)
    assert scores.shape == (len(splits.test),) and torch.isfinite(scores).all()
    latents = handles[GENERATOR].sample_latent(5, torch.Generator().manual_seed(0))
    assert handles[GENERATOR].generate(latents, ctx).shape == (5, *splits.train.shape)


@pytest.mark.parametrize("bad", [{"arch": "wgan"}, {"n_release": 0}, {"epochs": -1}, {"steps": 0}, {"width": 1.5}, {"discriminator_lr": 0}])
def test_surrogate_gan_rejects_bad_parameters_naming_them(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SurrogateGAN(**bad)


def _view(splits, release=None, handles=None):
    candidates = torch.cat([splits.train.images[:40], splits.test.images[:40]])
    return MembershipView(candidates=candidates, n_members=40, release=release, handles=handles or {})


def test_dcr_finds_copied_records_and_logan_blackbox_scores_every_candidate():
    splits = toy_splits(size=16)
    copy = ImageSet(splits.train.images[:40].clone(), {})
    scores = DistanceToClosestRecord().run(_view(splits, release=copy), TOY_TASK, Context()).scores
    assert (scores[:40] == 0).all() and (scores[40:] < 0).all()
    blackbox = LoganBlackbox(epochs=1, width=8, latent_dim=8).run(_view(splits, release=copy), TOY_TASK, Context())
    assert blackbox.scores.shape == (80,) and torch.isfinite(blackbox.scores).all()


def test_white_box_attacks_refuse_handles_of_another_form_as_not_applicable():
    splits = toy_splits(size=16)
    with pytest.raises(NotApplicable, match="realness"):
        LoganWhitebox().run(_view(splits, handles={DISCRIMINATOR: lambda x: x.mean()}), TOY_TASK, Context())
    renderer = lambda images, target, ctx: images  # noqa: E731 - a transform's image-conditioned generator
    with pytest.raises(NotApplicable, match="latent codes"):
        LatentRecovery().run(_view(splits, handles={GENERATOR: renderer}), TOY_TASK, Context())


def test_latent_recovery_inverts_the_generator_and_scores_its_own_samples_higher():
    """Samples G(z) are reproduced exactly by a perfect inversion; real images are not."""
    splits = toy_splits(size=16)
    ctx = Context(seed=1)
    sanitizer = SurrogateGAN(**FAST).fit(splits.train, TOY_TASK, ctx)
    generator = sanitizer.handles()[GENERATOR]
    generated = generator.generate(generator.sample_latent(40, torch.Generator().manual_seed(5)), ctx)
    view = MembershipView(candidates=torch.cat([generated, splits.test.images[:40]]), n_members=40,
                          handles={GENERATOR: generator})
    result = LatentRecovery(n_samples=2000, width=8).run(view, TOY_TASK, ctx)
    assert result.scores[:40].mean() > result.scores[40:].mean()
    assert result.diagnostics["encoder_val_mse"] >= 0
