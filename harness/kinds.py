"""The tables of what ppbench knows how to handle, each kind described in exactly one place.

- :data:`PLUGIN_KINDS`: data sets, sanitizers, attacks and metrics: the hook that registers each,
  the base class a registered object must have, and how ``ppbench list`` titles it. The hookspecs
  and the registry are generated from this table.
- :data:`THREAT_MODELS`: what an attack is granted, as identifiers with a description and the
  attacker's knowledge level (the VoicePrivacy levels: ignorant, lazy-informed, semi-informed,
  informed).
- :data:`ATTACK_KINDS`: for each scoring kind, the view an attack receives, the result type it
  returns, how the harness alone scores it, and the figures a leaderboard shows. Adding a scoring
  kind (membership, reconstruction...) means adding one entry here; the runner, the store and the
  leaderboards read this table and special-case none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .api import (AUX, ORACLE, RAW_TRAIN, Attack, AttackResult, AttackView, Context, DatasetSpec,
                  Sanitizer, UtilityMetric)
from .data import DatasetSplits, ImageSet
from .scoring import Scored, score_attribute

if TYPE_CHECKING:
    import torch

# --- plugin kinds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PluginKind:
    """One kind of plugin: registered through ``hook(register)`` as instances or subclasses of
    ``base``."""

    name: str  # plural, the registry's key: "sanitizers"
    singular: str
    hook: str
    base: type
    title: str  # heading in `ppbench list`
    registers: str  # what register() takes, for the hook's docstring and errors
    instances: bool = False  # data sets register a DatasetSpec instance; the others a class


PLUGIN_KINDS: dict[str, PluginKind] = {kind.name: kind for kind in (
    PluginKind("datasets", "dataset", "ppbench_register_datasets", DatasetSpec, "Data sets",
               "a DatasetSpec", instances=True),
    PluginKind("sanitizers", "sanitizer", "ppbench_register_sanitizers", Sanitizer, "Sanitizers",
               "a subclass of ppbench.Sanitizer"),
    PluginKind("attacks", "attack", "ppbench_register_attacks", Attack, "Attacks",
               "a subclass of ppbench.Attack"),
    PluginKind("metrics", "metric", "ppbench_register_metrics", UtilityMetric, "Utility metrics",
               "a subclass of ppbench.UtilityMetric"),
)}


# --- threat models -------------------------------------------------------------------------------

KNOWLEDGE_LEVELS = ("ignorant", "lazy-informed", "semi-informed", "informed")


@dataclass(frozen=True)
class ThreatModel:
    """What an attacker holds. ``knowledge`` is its level; boards group attacks by it."""

    id: str
    description: str
    knowledge: str


THREAT_MODELS: dict[str, ThreatModel] = {model.id: model for model in (
    ThreatModel("sanitized-labelled",
                "the sanitized attack split with the true sensitive labels: retrained on sanitized "
                "data (the papers' standard adversary)", "semi-informed"),
    ThreatModel("raw-trained",
                "raw labelled data only, applied unchanged to sanitized images (a naive audit)",
                "ignorant"),
    ThreatModel("white-box",
                "the sanitized attack split with labels plus the sanitizer's exposed modules "
                "(discriminator, generator) or query access to it", "informed"),
    ThreatModel("key-holder", "the vendor's secret decoder for a payload hidden in sanitized images",
                "informed"),
)}


def threat_model(attack: type[Attack]) -> ThreatModel:
    """The attack's declared threat model; an unknown identifier is the plugin's error."""
    declared = attack.threat_model
    if isinstance(declared, ThreatModel):
        return declared
    try:
        return THREAT_MODELS[declared]
    except (KeyError, TypeError):
        raise ValueError(f"attack {attack.name!r} declares unknown threat_model {declared!r}; "
                         f"known: {sorted(THREAT_MODELS)} (or a ppbench.kinds.ThreatModel)") from None


# --- scoring kinds -------------------------------------------------------------------------------


@dataclass
class ViewInputs:
    """Everything a view builder may draw from; the builder hands on only what the attack's
    requirements grant."""

    attack: type[Attack]
    sanitizer: Sanitizer
    raw: DatasetSplits
    sanitized_attack: ImageSet
    sanitized_test: ImageSet
    ctx: Context


@dataclass(frozen=True)
class AttackKind:
    """One scoring kind. ``columns`` are the value names a board shows per attack, the ``primary``
    first: the leakage figure that the worst case over attacks and the ranking use."""

    name: str
    description: str
    result_type: type
    build_view: Callable[[ViewInputs], Any]
    score: Callable[..., Scored]
    primary: str
    columns: tuple[str, ...]
    chance_note: str


def _attribute_view(inputs: ViewInputs) -> AttackView:
    requires = inputs.attack.requires
    sanitizer, ctx = inputs.sanitizer, inputs.ctx

    def oracle(images: "torch.Tensor") -> "torch.Tensor":
        return sanitizer.transform(images.to(ctx.device), ctx)

    handles = sanitizer.handles()
    return AttackView(
        attack=inputs.sanitized_attack,
        # The test split travels without any labels: the attack predicts, the harness scores.
        test=inputs.sanitized_test.without_labels(),
        raw_train=inputs.raw.train if RAW_TRAIN in requires else None,
        aux=inputs.raw.aux if AUX in requires else None,
        oracle=oracle if ORACLE in requires else None,
        handles={k: v for k, v in handles.items() if k in requires},
    )


ATTACK_KINDS: dict[str, AttackKind] = {kind.name: kind for kind in (
    AttackKind(
        name="attribute",
        description="predict the sensitive attribute of every sanitized test item",
        result_type=AttackResult,
        build_view=_attribute_view,
        score=score_attribute,
        primary="advantage",
        columns=("advantage", "balanced_accuracy", "accuracy", "auc"),
        chance_note=("balanced accuracy: chance is exactly 1/K whatever the class balance; "
                     "accuracy: chance is the largest class frequency of the train split (the "
                     "known prior), never the test sample's"),
    ),
)}


def attack_kind(attack: type[Attack]) -> AttackKind:
    try:
        return ATTACK_KINDS[attack.kind]
    except (KeyError, TypeError):
        raise ValueError(f"attack {attack.name!r} declares unknown kind {attack.kind!r}; "
                         f"known: {sorted(ATTACK_KINDS)}") from None
