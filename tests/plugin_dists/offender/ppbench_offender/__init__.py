"""Installed plugins that each break one rule of `ppbench check` (tests/test_author_kit.py)."""

import torch

from ppbench import Attack, AttackResult, Sanitizer, hookimpl


class InPlaceDarken(Sanitizer):
    """Darkens the images it is given in place, then returns a copy: the output is right, the
    caller's batch is not."""

    name = "inplace-darken"

    def transform(self, images, ctx):
        images.mul_(0.5)
        return images.clone()


class FragileConstructor(Sanitizer):
    """Its constructor raises for every configuration."""

    name = "fragile-constructor"

    def __init__(self, strength: float = 1.0):
        raise RuntimeError("cannot build the model")


class RawPeek(Attack):
    """Declares the standard adversary's threat model but asks for the raw train split."""

    name = "raw-peek"
    requires = frozenset({"raw_train"})
    threat_model = "sanitized-labelled"

    def run(self, view, task, ctx):
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


@hookimpl
def ppbench_register_sanitizers(register):
    register(InPlaceDarken)
    register(FragileConstructor)


@hookimpl
def ppbench_register_attacks(register):
    register(RawPeek)
