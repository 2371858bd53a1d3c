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
- :func:`resolve_requirements`: what an attack's ``requires`` (names, or alternatives of which any
  one will do) come to against a sanitizer and a data set: the grants its view carries, or why the
  cell is ``n/a``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, NamedTuple

from .api import (ALL_REQUIREMENTS, AUX, DISCRIMINATOR, GENERATOR, HONEST_REFERENCE, ORACLE,
                  RAW_TRAIN, RELEASE, SECRET_DECODER, TRANSFORM,
                  Attack, AttackResult,
                  AttackView, Context, DatasetSpec, DetectionResult, PluginContractError,
                  ReconstructionResult, Sanitizer, Task, UtilityMetric)
from .data import DatasetSplits, ImageSet, copy_image_set
from .detection import (build_detector_view, build_reference_detector_view, lend_detector_view,
                        lend_reference_detector_view, score_detection)
from .guards import output_images
from .membership import MembershipResult, build_membership_view, lend_membership_view, score_membership
from .reconstruction import ReconstructionTruth, reidentifier, score_attribute_attack, score_reconstruction
from .scoring import Scored
from .verification import (VerificationResult, build_verification_view, lend_verification_view,
                           score_verification)

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
    # Boards give its attacks a worst case of their own, beside the keyless attribute one rather
    # than merged into it: an attacker no auditor can be (the key holder of a subverted
    # sanitizer), or a question other than the attribute's (membership of the fit set).
    separate: bool = False
    # Whether a worst case of this model far above the keyless one flags the row as a sanitizer
    # that passes the audit and leaks its secret (the key holder's; see ppbench.boards.policy).
    flags: bool = False
    # An audit a sanitizer's authors commonly report as their only privacy check (a classifier
    # trained on raw images): a row it clears while another attack leaks is flagged, as a row
    # the spec's standard check clears is (ppbench.boards.policy).
    audit: bool = False
    # What an attack of this model may ask for in ``requires`` beyond its kind's standard view
    # (``ppbench check`` fails an attack that asks for more). None: not declared, not limited.
    grants: frozenset[str] | None = None


THREAT_MODELS: dict[str, ThreatModel] = {model.id: model for model in (
    ThreatModel("sanitized-labelled",
                "the sanitized attack split with the true sensitive labels: retrained on sanitized "
                "data (the papers' standard adversary)", "semi-informed", grants=frozenset()),
    ThreatModel("raw-trained",
                "raw labelled data only, applied unchanged to sanitized images (a naive audit)",
                "ignorant", audit=True, grants=frozenset({RAW_TRAIN, AUX})),
    ThreatModel("white-box",
                "the sanitized attack split with labels plus the sanitizer's exposed modules "
                "(discriminator, generator) or query access to it", "informed",
                grants=frozenset({DISCRIMINATOR, GENERATOR, ORACLE})),
    ThreatModel("key-holder", "the vendor's secret decoder for a payload hidden in sanitized images",
                "informed", separate=True, flags=True, grants=frozenset({SECRET_DECODER})),
    ThreatModel("membership",
                "raw candidates, half of them from the sanitizer's fit split, unlabelled, with what "
                "the attack requires (the release, the discriminator or generator, public aux "
                "data): tells who was in the fit set", "informed", separate=True,
                # Never raw_train: its items are the members the attack must find.
                grants=frozenset({RELEASE, DISCRIMINATOR, GENERATOR, ORACLE, AUX})),
    ThreatModel("distinguisher",
                "sanitized outputs and public raw data, no labels: tells sanitized items from raw "
                "ones (a detector)", "semi-informed", grants=frozenset({AUX, RAW_TRAIN})),
    ThreatModel("query-access",
                "query access to the fitted sanitizer (an oracle) and public raw data: learns to "
                "undo the sanitizer and rebuilds the raw images", "informed",
                grants=frozenset({ORACLE, AUX})),
    # Open-set re-identification (ppbench.verification): a recognizer trained on other people.
    ThreatModel("raw-enrolled",
                "a recognizer trained on raw images of other people, a raw gallery of the test "
                "identities (their own photographs) against sanitized probes", "ignorant",
                grants=frozenset()),
    ThreatModel("lazy-enrolled",
                "the raw-trained recognizer, with the gallery sanitized by the same sanitizer "
                "(the attacker sanitizes its own enrollment)", "lazy-informed", grants=frozenset()),
    ThreatModel("sanitized-recognizer",
                "a recognizer retrained on other people's images sanitized by the same "
                "sanitizer, with a sanitized gallery", "semi-informed", grants=frozenset()),
    ThreatModel("reference-distinguisher",
                "the sanitizer's outputs and those of the honest model it declares itself a "
                "variant of, for the same inputs, no labels: tells the two apart (steganalysis "
                "of a vendor's build)", "informed", grants=frozenset({HONEST_REFERENCE})),
)}


def flagging_threat_models() -> frozenset[str]:
    """The identifiers of the separate threat models whose worst case can flag a row."""
    return frozenset(model.id for model in THREAT_MODELS.values() if model.flags)


def audit_threat_models() -> frozenset[str]:
    """The identifiers of the threat models whose attacks are audits a row can pass
    (``ThreatModel.audit``)."""
    return frozenset(model.id for model in THREAT_MODELS.values() if model.audit)


def separate_threat_models() -> frozenset[str]:
    """The identifiers of the threat models that boards judge apart (``ThreatModel.separate``)."""
    return frozenset(model.id for model in THREAT_MODELS.values() if model.separate)


def threat_model(attack: type[Attack] | Attack) -> ThreatModel:
    """The attack's declared threat model; an unknown identifier is the plugin's error."""
    declared = attack.threat_model
    if isinstance(declared, ThreatModel):
        return declared
    try:
        return THREAT_MODELS[declared]
    except (KeyError, TypeError):
        raise ValueError(f"attack {attack.name!r} declares unknown threat_model {declared!r}; "
                         f"known: {sorted(THREAT_MODELS)} (or a ppbench.kinds.ThreatModel)") from None


# --- requirements --------------------------------------------------------------------------------

# Grants that every cell can meet: the raw train split always exists, and so does the fitted
# sanitizer's transform behind the oracle. Aux data and sanitizer capabilities depend on the cell.
_ALWAYS_AVAILABLE = frozenset({RAW_TRAIN, ORACLE})


class Resolution(NamedTuple):
    """What an attack's requirements come to in one cell."""

    # What the view carries: of each entry that can be met, its first alternative that can.
    granted: frozenset[str]
    unmet: str | None  # why the cell is n/a (naming what is missing); None when all are met


def requirement_alternatives(requires: Any, attack: str = "attack") -> tuple[tuple[str, ...], ...]:
    """Each entry of ``requires`` as its alternatives in order of preference, validated.

    A name is an entry of one alternative; a tuple (or list) keeps its order; a set or frozenset
    has none, so its names are taken in alphabetical order (iteration order would differ between
    processes, and with it the grant). Unknown names, an empty entry or a bare string (``"aux"``
    iterates as letters) raise :class:`~ppbench.api.PluginContractError` naming the attack.
    """
    example = "e.g. {'aux'} or {('aux', 'raw_train')}"
    if isinstance(requires, (str, bytes)) or not isinstance(requires, Iterable):
        raise PluginContractError(f"attack {attack!r}: requires must be a collection of "
                                  f"requirements ({example}), got {requires!r}")
    entries: set[tuple[str, ...]] = set()
    for entry in requires:
        if isinstance(entry, str):
            alternatives: tuple[Any, ...] = (entry,)
        elif isinstance(entry, (tuple, list)):
            alternatives = tuple(entry)
        elif isinstance(entry, (set, frozenset)):
            alternatives = tuple(sorted(entry, key=str))
        else:
            raise PluginContractError(f"attack {attack!r}: each entry of requires is a name or a "
                                      f"tuple of alternative names ({example}), got {entry!r}")
        if not alternatives:
            raise PluginContractError(f"attack {attack!r} requires an empty set of alternatives, "
                                      "which nothing can meet")
        unknown = [a for a in alternatives if not isinstance(a, str) or a not in ALL_REQUIREMENTS]
        if unknown:
            raise PluginContractError(
                f"attack {attack!r} requires unknown grants {unknown}; known: "
                f"{sorted(ALL_REQUIREMENTS)} (an entry may also be a tuple of them, any one of "
                "which will do)")
        entries.add(alternatives)
    # Sorted, so that messages and listings read the same whichever order a set iterates in.
    return tuple(sorted(entries))


def requirement_label(alternatives: tuple[str, ...]) -> str:
    """How listings and messages write an entry: ``aux`` or, for alternatives, ``aux|raw_train``."""
    return "|".join(alternatives)


def requirement_labels(requires: Collection[Any], attack: str = "attack") -> list[str]:
    """The entries of ``requires`` as ``ppbench list`` shows them (validated, sorted)."""
    return [requirement_label(entry) for entry in requirement_alternatives(requires, attack)]


def beyond_threat_model(attack: type[Attack] | Attack) -> str:
    """Why the attack's ``requires`` asks for more than its declared threat model grants
    (``ThreatModel.grants``), or '' when it does not: the harness never hands an attack a grant
    its threat model lacks, so such an attack is refused rather than given it."""
    name = getattr(attack, "name", type(attack).__name__)
    entries = requirement_alternatives(attack.requires, name)
    model = threat_model(attack)
    if model.grants is None:
        return ""
    beyond = sorted({alt for entry in entries for alt in entry} - model.grants)
    if not beyond:
        return ""
    holds = ", ".join(sorted(model.grants)) or "nothing beyond the sanitized attack and test splits"
    fits = sorted(m.id for m in THREAT_MODELS.values() if m.grants is not None and set(beyond) <= m.grants)
    return (f"attack {name!r} requires {', '.join(beyond)}, which its threat model {model.id!r} does "
            f"not grant (it holds: {holds}); drop the requirement or declare a threat model that "
            f"holds it" + (f" ({', '.join(fits)})" if fits else ""))


def resolve_requirements(requires: Collection[Any], *, has_aux: bool, capabilities: Collection[str],
                         attack: str = "attack", sanitizer: str | None = None,
                         dataset: str | None = None, has_reference: bool = False,
                         reference_problem: str | None = None, mode: str = TRANSFORM) -> Resolution:
    """Grant each entry of ``requires`` its first alternative that can be met, in the order given.

    ``has_aux``: the data set provides public aux data; ``capabilities``: what the fitted
    sanitizer declares (its ``handles()`` provide them); ``has_reference``: the sanitizer declares
    a registered honest reference (``reference_problem`` says why not, when it declares one that
    cannot be used); ``mode``: the sanitizer's (``transform`` or ``release``). ``raw_train`` can
    always be met, and so can ``oracle`` except on a release (there is no transform to query). An entry none of whose alternatives can be met makes the cell n/a: ``unmet`` then says
    which entries and why, naming ``sanitizer`` and ``dataset`` when given. Unknown names raise
    (see :func:`requirement_alternatives`).
    """
    capabilities = frozenset(capabilities)
    sanitizer_name = f"sanitizer {sanitizer!r}" if sanitizer else "the sanitizer"
    dataset_name = f"data set {dataset!r}" if dataset else "the data set"

    def available(name: str) -> bool:
        if name == AUX:
            return has_aux
        if name == HONEST_REFERENCE:
            return has_reference
        if name == ORACLE and mode == RELEASE:
            return False
        return name in _ALWAYS_AVAILABLE or name in capabilities

    def why_not(name: str) -> str:
        if name == AUX:
            return f"{dataset_name} has no public aux data"
        if name == ORACLE and mode == RELEASE:
            return f"{sanitizer_name} releases a surrogate data set and has no transform to query"
        if name == HONEST_REFERENCE:
            return reference_problem or (f"{sanitizer_name} declares no honest reference (a "
                                         "payload-free model it is a variant of)")
        return f"{sanitizer_name} does not expose {name}"

    granted: set[str] = set()
    unmet: list[tuple[str, ...]] = []
    for alternatives in requirement_alternatives(requires, attack):
        met = next((name for name in alternatives if available(name)), None)
        if met is None:
            unmet.append(alternatives)
        else:
            granted.add(met)
    if not unmet:
        return Resolution(frozenset(granted), None)
    wanted = " and ".join(requirement_label(entry) + (" (any one)" if len(entry) > 1 else "")
                          for entry in unmet)
    reasons = " and ".join(dict.fromkeys(why_not(name) for entry in unmet for name in entry))
    return Resolution(frozenset(granted), f"attack {attack!r} requires {wanted}, but {reasons}")


# --- scoring kinds -------------------------------------------------------------------------------


@dataclass
class ViewInputs:
    """Everything a view builder may draw from. The builder hands on the standard view and, of
    the rest, exactly ``granted``: what :func:`resolve_requirements` granted the configured
    ``attack`` in this cell (for alternatives, the one that was met, nothing more)."""

    attack: Attack  # the configured instance: its requirements may depend on its parameters
    sanitizer: Sanitizer
    raw: DatasetSplits
    sanitized_attack: ImageSet
    sanitized_test: ImageSet
    ctx: Context
    granted: frozenset[str]
    # A seed for what the view builder draws and withholds (e.g. which candidates are sanitized),
    # derived from what no plugin is given (the cell's key and, in a sealed run, the salt).
    secret_seed: int = 0
    task: Task | None = None
    # The honest reference's fit (its sanitized attack and test splits), when granted.
    reference: Any = None
    # A release-mode sanitizer's surrogate set (ppbench.release), else None.
    release: ImageSet | None = None
    # A seed shared by the membership cells of one (data, seed), drawn like ``secret_seed`` from
    # what no plugin is given: every membership attack on every sanitizer of the data sees the
    # same candidates (ppbench.membership).
    membership_seed: int = 0
    # The data set's other identities sanitized by the fitted sanitizer (ppbench.verification).
    sanitized_other_identities: ImageSet | None = None
    # The run's canaries (``canaries = N`` in the spec; ppbench.membership.Canaries), else None:
    # only membership candidate sets hold them.
    canaries: Any = None


@dataclass(frozen=True)
class AttackKind:
    """One scoring kind. ``build_view`` returns the attack's view and what the harness withholds
    for scoring; ``lend`` copies a view for a sandbox (no shared tensors, no callables);
    ``score(result, truth, source, withheld)``. ``columns`` are the value names a board shows per
    attack, the ``primary`` first; when ``ranked``, the primary is the leakage figure that the
    worst case over attacks and the ranking use, else the board shows it beside the ranking."""

    name: str
    description: str
    result_type: type
    build_view: Callable[[ViewInputs], tuple[Any, Any]]
    lend: Callable[[Any], Any]
    score: Callable[..., Scored]
    primary: str
    columns: tuple[str, ...]
    chance_note: str
    ranked: bool = True
    # The figures a board shows after the primary one, when the cells stored them.
    board_values: tuple[str, ...] = ("accuracy",)
    # The value that joins the worst case over attacks, when the primary is not on the
    # advantage scale (0 at chance, 1 for a perfect attack): a TAR's chance is its FAR.
    ranked_value: str = ""

    @property
    def worst_case_value(self) -> str:
        return self.ranked_value or self.primary


def _attribute_view(inputs: ViewInputs) -> tuple[AttackView, None]:
    granted = inputs.granted
    sanitizer, ctx = inputs.sanitizer, inputs.ctx

    def oracle(images: "torch.Tensor") -> "torch.Tensor":
        # The images only: a sanitizer's records describe its output's secret.
        return output_images(sanitizer.transform(images.to(ctx.device), ctx))

    handles = sanitizer.handles()
    return AttackView(
        attack=inputs.sanitized_attack,
        # The test split travels without any labels: the attack predicts, the harness scores.
        test=inputs.sanitized_test.without_labels(),
        raw_train=inputs.raw.train if RAW_TRAIN in granted else None,
        aux=inputs.raw.aux if AUX in granted else None,
        oracle=oracle if ORACLE in granted else None,
        handles={k: v for k, v in handles.items() if k in granted},
    ), None


def _lend_attribute_view(view: AttackView) -> AttackView:
    """A copy for a sandbox; the sandbox rebuilds the oracle and the handles from the fitted
    sanitizer, which travels only when one of them is granted."""
    return replace(view, attack=copy_image_set(view.attack), test=copy_image_set(view.test),
                   raw_train=copy_image_set(view.raw_train), aux=copy_image_set(view.aux),
                   oracle=None, handles={})


def _reconstruction_view(inputs: ViewInputs) -> tuple[AttackView, ReconstructionTruth]:
    view, _ = _attribute_view(inputs)
    if inputs.task is None:
        raise PluginContractError("a reconstruction view needs the cell's task")
    return view, reidentifier(inputs, inputs.task.sensitive)


ATTACK_KINDS: dict[str, AttackKind] = {kind.name: kind for kind in (
    AttackKind(
        name="attribute",
        description="predict the sensitive attribute of every sanitized test item",
        result_type=AttackResult,
        build_view=_attribute_view,
        lend=_lend_attribute_view,
        score=score_attribute_attack,
        primary="advantage",
        columns=("advantage", "balanced_accuracy", "accuracy", "auc", "worst_decile"),
        chance_note=("balanced accuracy: chance is exactly 1/K whatever the class balance; "
                     "accuracy: chance is the largest class frequency of the train split (the "
                     "known prior), never the test sample's"),
    ),
    AttackKind(
        name="detector",
        description="tell sanitized test items from raw ones (scored by AUC, beside the ranking)",
        result_type=DetectionResult,
        build_view=build_detector_view,
        lend=lend_detector_view,
        score=score_detection,
        primary="auc",
        columns=("auc", "detection_advantage"),
        chance_note="AUC: chance is 0.5 (sanitized and raw candidates cannot be told apart)",
        ranked=False,
    ),
    AttackKind(
        name="reconstruction",
        description=("rebuild every raw test image from its sanitized version; scored by PSNR and "
                     "SSIM against the raw images and by the re-identification advantage of a "
                     "fixed raw-trained classifier of the sensitive attribute (ranked)"),
        result_type=ReconstructionResult,
        build_view=_reconstruction_view,
        lend=_lend_attribute_view,
        score=score_reconstruction,
        primary="advantage",
        columns=("advantage", "balanced_accuracy", "accuracy", "psnr", "ssim"),
        chance_note=("re-identification: a fixed classifier trained on raw images reads the "
                     "reconstructions; its advantage is 0 at chance (1/K)"),
    ),
    AttackKind(
        name="reference-detector",
        description=("tell the sanitizer's outputs from its honest reference's (scored by AUC, "
                     "beside the ranking)"),
        result_type=DetectionResult,
        build_view=build_reference_detector_view,
        lend=lend_reference_detector_view,
        score=score_detection,
        primary="auc",
        columns=("auc", "detection_advantage"),
        chance_note="AUC: chance is 0.5 (the two models' outputs cannot be told apart)",
        ranked=False,
    ),
    AttackKind(
        name="verification",
        description=("open-set re-identification: embed a gallery of the test identities and the "
                     "sanitized test images with a recognizer trained on other people; scored by "
                     "TAR at 1% FAR (ranked), TAR at 0.1% FAR, EER and rank-1 identification"),
        result_type=VerificationResult,
        build_view=build_verification_view,
        lend=lend_verification_view,
        score=score_verification,
        primary="tar_at_1pct_far",
        columns=("tar_at_1pct_far", "advantage", "tar_at_0.1pct_far", "eer", "rank1", "worst_decile"),
        chance_note=("verification: TAR at a FAR has chance equal to that FAR (0.01), the EER 0.5, "
                     "rank-1 identification 1/(identities in the gallery); the worst case takes "
                     "its advantage (TAR − FAR) / (1 − FAR) at 1% FAR, 0 at chance"),
        board_values=("rank1", "eer"),
        ranked_value="advantage",
    ),
    AttackKind(
        name="membership",
        description=("score raw candidates, half of them from the sanitizer's fit split, by how "
                     "likely each was a member; scored by Webster et al.'s Algorithm-1 accuracy, "
                     "AUC and TPR at low FPR (ranked in the membership group)"),
        result_type=MembershipResult,
        build_view=build_membership_view,
        lend=lend_membership_view,
        score=score_membership,
        primary="advantage",
        columns=("advantage", "accuracy", "auc", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr",
                 "canary_tpr_at_1pct_fpr", "canary_tpr_at_0.1pct_fpr", "canary_auc"),
        chance_note=("membership: Algorithm-1 accuracy has chance exactly 0.5 (as many members "
                     "as non-members, as many called members); its advantage 2·acc − 1 is "
                     "TPR − FPR at that threshold, 0 at chance; TPR at 1% FPR has chance 0.01; "
                     "with canaries, canary TPR at 1% FPR (the FPR over the canary non-members) "
                     "has chance 0.01 and canary AUC 0.5"),
        # The canary figure shows only where cells stored it (a spec with ≥ 100 canaries).
        board_values=("accuracy", "tpr_at_1pct_fpr", "canary_tpr_at_1pct_fpr"),
    ),
)}


def attack_kind(attack: type[Attack] | Attack) -> AttackKind:
    try:
        return ATTACK_KINDS[attack.kind]
    except (KeyError, TypeError):
        raise ValueError(f"attack {attack.name!r} declares unknown kind {attack.kind!r}; "
                         f"known: {sorted(ATTACK_KINDS)}") from None
