"""A third-party plugin distribution used by ppbench's own tests.

It is "installed" by putting its folder on sys.path (the ``.dist-info`` beside it declares the
entry point), exactly as pip would lay it out. It provides a tiny data set that builds in
milliseconds, well-behaved and deliberately faulty sanitizers and attacks, and a metric.
"""

from __future__ import annotations

import time

from ppbench import (DISCRIMINATOR, HONEST_REFERENCE, RELEASE, Attack, ImageSet, MembershipResult, DetectionResult, AttackResult, DatasetSpec, DatasetSplits, MetricValue,
                     Sanitizer, Task, UtilityMetric, hookimpl)
from ppbench.testing import TOY_ATTRIBUTES, toy_splits

# --- a tiny data set: channel 0's brightness encodes `secret`, channel 1's encodes `keep` --------


def load_tiny(profile, seed, n_train=240, n_attack=240, n_test=120, size=8):
    splits = toy_splits(seed, n_train, n_test, size, n_attack=n_attack)
    # No aux: aux-hungry attacks are n/a.
    return DatasetSplits(train=splits.train, attack=splits.attack, test=splits.test)


TINY = DatasetSpec(
    name="tiny",
    description="8×8 noise images whose channel brightness encodes two binary attributes",
    load=load_tiny,
    attributes=TOY_ATTRIBUTES,
    tasks=(Task("tiny", "secret", "secret", ("keep",)),),
    params={"n_train": 240, "n_attack": 240, "n_test": 120, "size": 8},
)


# --- sanitizers ----------------------------------------------------------------------------------


class Darken(Sanitizer):
    """Scales channel 0 towards zero; `strength=1` removes the secret entirely."""

    name = "darken"

    def __init__(self, strength: float = 0.5):
        self.strength = strength

    def fit(self, train, task, ctx):
        self.fitted_on = len(train)
        return self

    def transform(self, images, ctx):
        out = images.clone()
        out[:, 0] = out[:, 0] * (1 - self.strength)
        return out


class CrashingSanitizer(Sanitizer):
    name = "crashing-sanitizer"

    def fit(self, train, task, ctx):
        raise RuntimeError("deliberate failure in fit")

    def transform(self, images, ctx):
        return images


class ShapeChanger(Sanitizer):
    name = "shape-changer"

    def transform(self, images, ctx):
        return images[:, :, :4, :4]


class NaNSanitizer(Sanitizer):
    name = "nan-sanitizer"

    def transform(self, images, ctx):
        return images * float("nan")


class ExposesDiscriminator(Sanitizer):
    name = "with-discriminator"
    capabilities = frozenset({DISCRIMINATOR})

    def transform(self, images, ctx):
        return images

    def handles(self):
        return {DISCRIMINATOR: channel_zero_mean}


def channel_zero_mean(images):
    return images[:, 0].mean(dim=(1, 2))


# --- attacks -------------------------------------------------------------------------------------


class ThresholdAttack(Attack):
    """Learns a threshold on channel 0's mean from the sanitized attack split."""

    name = "threshold"

    def run(self, view, task, ctx):
        train_score = view.attack.images[:, 0].mean(dim=(1, 2))
        labels = view.attack.labels[task.sensitive]
        cut = (train_score[labels == 0].mean() + train_score[labels == 1].mean()) / 2
        test_score = view.test.images[:, 0].mean(dim=(1, 2))
        # Which raw items the adversary was handed: the harness must give it the attack split,
        # never the sanitizer's fit split (tests compare these with the data set's splits).
        first = view.attack.images[0, 1].flatten()[:4]
        return AttackResult((test_score > cut).long(),
                            budget={"training_items": float(len(view.attack))},
                            diagnostics={"test_labels_visible": float(len(view.test.labels)),
                                         "attack_items": float(len(view.attack)),
                                         **{f"first_pixel_{i}": float(v) for i, v in enumerate(first)}})


class BatchThreshold(ThresholdAttack):
    """The threshold attack, batchable: ``run_batch`` logs how many views each call got (to
    ``log_file``) and fails on demand: on every call (``fail_batch``), or, run alone, on the
    views whose sanitized channel 0 is all zero, as darken(strength=1) leaves it (``fail_dark``)."""

    name = "batch-threshold"
    batchable = True

    def __init__(self, log_file: str = "", fail_batch: bool = False, fail_dark: bool = False):
        self.log_file = log_file
        self.fail_batch = fail_batch
        self.fail_dark = fail_dark

    def run(self, view, task, ctx):
        if self.fail_dark and float(view.test.images[:, 0].abs().max()) == 0.0:
            raise RuntimeError("nothing to see")
        return super().run(view, task, ctx)

    def run_batch(self, views, task, contexts):
        if self.log_file:
            with open(self.log_file, "a") as handle:
                handle.write(f"{len(views)} {' '.join(str(c.seed) for c in contexts)}\n")
        if self.fail_batch:
            raise RuntimeError("the batch failed")
        return [self.run(view, task, ctx) for view, ctx in zip(views, contexts)]


class CrashingAttack(Attack):
    name = "crashing-attack"

    def run(self, view, task, ctx):
        raise RuntimeError("deliberate failure in run")


class NaNAttack(Attack):
    name = "nan-attack"

    def run(self, view, task, ctx):
        import torch

        return AttackResult(torch.full((len(view.test), 2), float("nan")))


class WrongLengthAttack(Attack):
    name = "wrong-length-attack"

    def run(self, view, task, ctx):
        import torch

        return AttackResult(torch.zeros(len(view.test) - 1, dtype=torch.long))


class SleepyAttack(Attack):
    """Sleeps, then guesses 0; for time limits and for killing a run mid-way."""

    name = "sleepy"

    def __init__(self, seconds: float = 0.5, pid_file: str = ""):
        self.seconds = seconds
        self.pid_file = pid_file

    def run(self, view, task, ctx):
        import os

        import torch

        if self.pid_file:  # so that a test can kill the process running it mid-way
            with open(self.pid_file, "a") as handle:
                handle.write(f"{os.getpid()}\n")
        time.sleep(self.seconds)
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


class DiscriminatorAttack(Attack):
    name = "discriminator-attack"
    requires = frozenset({DISCRIMINATOR})
    threat_model = "white-box"

    def run(self, view, task, ctx):
        score = view.handles[DISCRIMINATOR](view.test.images)
        return AttackResult((score > score.median()).long())


class SeedEcho(Attack):
    """Predicts from a random draw of the context's generator: same seed, same numbers."""

    name = "seed-echo"

    def run(self, view, task, ctx):
        import torch

        return AttackResult(torch.randint(0, 2, (len(view.test),), generator=ctx.generator()))


# --- an honest model, a vendor's build of it, and a detector comparing the two ------------------


class SeededVeil(Sanitizer):
    """Adds a faint fixed pattern drawn from the fit seed: two fits agree only with equal seeds."""

    name = "seeded-veil"

    def __init__(self, amount: float = 0.05):
        self.amount = amount

    def fit(self, train, task, ctx):
        import torch

        self.veil = self.amount * torch.rand(train.images.shape[1:], generator=ctx.generator())
        return self

    def transform(self, images, ctx):
        return (images + self.veil).clamp(0, 1)


class StampedVeil(SeededVeil):
    """The vendor's build: the honest veil, plus a stamp in one pixel."""

    name = "stamped-veil"
    honest_reference = "seeded-veil"

    def __init__(self, amount: float = 0.05, stamp: float = 0.3):
        super().__init__(amount)
        self.stamp = stamp

    def transform(self, images, ctx):
        out = super().transform(images, ctx)
        out[:, 2, 0, 0] = self.stamp
        return out


class DanglingVendor(SeededVeil):
    name = "dangling-vendor"
    honest_reference = "no-such-sanitizer"


class ReferenceGap(Attack):
    """Scores candidates by their stamp pixel's nearness to the stamp; reports how far the pairs
    differ elsewhere."""

    name = "reference-gap"
    kind = "reference-detector"
    requires = frozenset({HONEST_REFERENCE})
    threat_model = "reference-distinguisher"

    def run(self, view, task, ctx):
        difference = (view.suspect.images - view.reference.images).abs()
        difference[:, 2, 0, 0] = 0
        return DetectionResult(scores=-(view.candidates[:, 2, 0, 0] - 0.3).abs(),
                               diagnostics={"paired_difference": float(difference.max())})


# --- release mode and membership ----------------------------------------------------------------


class MemorisingFilter(Sanitizer):
    """Passes its fit images through untouched and adds noise to every other image: a learned
    filter that remembered its fit split exactly, the most a transform can leak of membership."""

    name = "memorising-filter"

    def fit(self, train, task, ctx):
        import torch

        self.remembered = {bytes(image.numpy().tobytes()) for image in train.images.to(torch.float32)}
        return self

    def transform(self, images, ctx):
        import torch

        out = images.clone()
        noise = 0.1 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
        for i, image in enumerate(images.to(torch.float32).cpu()):
            if bytes(image.numpy().tobytes()) not in self.remembered:
                out[i] = (out[i] + noise[i].to(out.device)).clamp(0, 1)
        return out


class CopyRelease(Sanitizer):
    """Releases its fit images verbatim, with their labels: the most a release can leak."""

    name = "copy-release"
    capabilities = frozenset({RELEASE})

    def fit(self, train, task, ctx):
        self.train = ImageSet(train.images.clone(), {k: v.clone() for k, v in train.labels.items()})
        return self

    def release(self, n, ctx):
        return self.train


class NoiseRelease(Sanitizer):
    """Releases noise images with random labels: nothing of its fit split."""

    name = "noise-release"
    capabilities = frozenset({RELEASE})

    def fit(self, train, task, ctx):
        self.shape = train.shape
        self.attributes = {name: train.num_classes(name) for name in train.labels}
        return self

    def release(self, n, ctx):
        import torch

        g = ctx.generator(1)
        return ImageSet(torch.rand(n, *self.shape, generator=g),
                        {name: torch.randint(0, k, (n,), generator=g) for name, k in self.attributes.items()})


class MemberSpy(Attack):
    """Writes down everything it was handed (to ``record_to``), then scores by brightness."""

    name = "member-spy"
    kind = "membership"
    threat_model = "membership"

    def __init__(self, record_to: str = ""):
        self.record_to = record_to

    def run(self, view, task, ctx):
        import gc
        import pickle
        import sys

        import torch

        seen = {"view_type": type(view).__name__, "fields": dict(vars(view)), "task": task,
                "modules": sorted(m for m in sys.modules if m.startswith("ppbench")),
                # Every tensor of one value per candidate that this process holds: a membership
                # vector could only hide among them.
                "per_candidate": [o.clone() for o in gc.get_objects() if isinstance(o, torch.Tensor)
                                  and o.dim() == 1 and len(o) == len(view.candidates)]}
        seen["fields"]["oracle"] = seen["fields"]["oracle"] is not None
        with open(self.record_to, "wb") as handle:
            pickle.dump(seen, handle)
        return MembershipResult(view.candidates[:, 0].mean(dim=(1, 2)).double())


# --- a metric ------------------------------------------------------------------------------------


class MeanAbsoluteChange(UtilityMetric):
    name = "mean-abs-change"

    def run(self, view, task, ctx):
        change = (view.sanitized_test.images - view.raw_test.images).abs().mean()
        return [MetricValue("mean_abs_change", float(change), better="lower", role="distortion",
                            primary=True)]


@hookimpl
def ppbench_register_datasets(register):
    register(TINY)


@hookimpl
def ppbench_register_sanitizers(register):
    for cls in (Darken, CrashingSanitizer, ShapeChanger, NaNSanitizer, ExposesDiscriminator,
                SeededVeil, StampedVeil, DanglingVendor, CopyRelease, NoiseRelease, MemorisingFilter):
        register(cls)


@hookimpl
def ppbench_register_attacks(register):
    for cls in (ThresholdAttack, CrashingAttack, NaNAttack, WrongLengthAttack, SleepyAttack,
                DiscriminatorAttack, SeedEcho, ReferenceGap, MemberSpy, BatchThreshold):
        register(cls)


@hookimpl
def ppbench_register_metrics(register):
    register(MeanAbsoluteChange)
