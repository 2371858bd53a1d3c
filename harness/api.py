"""The plugin contracts: what a data set, sanitizer, attack or utility metric is, and what it sees.

A plugin author needs only this module (re-exported from ``ppbench``):

- :class:`DatasetSpec` describes a data set, its attributes and its tasks;
- :class:`Sanitizer` is configured by constructor keyword arguments, optionally ``fit`` on the
  train split, and ``transform`` s batches of images into images of the same shape;
- :class:`Attack` declares what it ``requires`` and ``run`` s on an :class:`AttackView`, returning
  predictions of the sensitive attribute for the sanitized test split (the harness scores them; an
  attack never holds the test split's labels);
- :class:`UtilityMetric` measures what a sanitizer keeps, from a :class:`MetricView`.

Every call gets a :class:`Context`: device, profile, seed, time budget, progress bars, and a cache
for models that do not depend on the sanitizer.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Any, Callable, ClassVar, Collection, Iterable, Iterator, Literal,
                    Sequence, TypeVar)

from .data import Attribute, DatasetSplits, ImageSet
# Part of the contract plugins read (``ppbench.Profile``), defined beside it.
from .profiles import PROFILES, Profile, get_profile  # noqa: F401

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

# --- capabilities a sanitizer may expose, and the other grants an attack may require -------------

DISCRIMINATOR = "discriminator"  # a module scoring images (e.g. a GAN's real/fake or attribute head)
GENERATOR = "generator"  # a module synthesising images from noise and/or labels
SECRET_DECODER = "secret_decoder"  # a vendor's extractor for a payload hidden in sanitized images
RELEASE = "release"  # the sanitizer releases a synthetic surrogate data set instead of transforming
SANITIZER_CAPABILITIES = frozenset({DISCRIMINATOR, GENERATOR, SECRET_DECODER, RELEASE})

ORACLE = "oracle"  # query access to the fitted sanitizer's transform
RAW_TRAIN = "raw_train"  # the raw (unsanitized) train split with its labels
AUX = "aux"  # public raw data from the same distribution, disjoint from train and test
# The outputs of the payload-free model a sanitizer declares itself a variant of
# (``Sanitizer.honest_reference``), for the same inputs as its own.
HONEST_REFERENCE = "honest_reference"
DATA_GRANTS = frozenset({ORACLE, RAW_TRAIN, AUX, HONEST_REFERENCE})

ALL_REQUIREMENTS = SANITIZER_CAPABILITIES | DATA_GRANTS

# One entry of ``Attack.requires``: a grant's name, or alternatives of which any one will do. A
# tuple gives the order of preference (the first alternative that can be met is granted, and only
# that one); a frozenset has no order, so its alternatives are tried in alphabetical order, which
# keeps the grant the same in every process. ``ppbench.kinds.resolve_requirements`` resolves them.
Requirement = str | tuple[str, ...] | frozenset[str]

IMAGE = "image"
VECTOR = "vector"


class PluginContractError(ValueError):
    """A plugin broke the contract (bad parameters, wrong output shape, non-finite values...)."""


class NotApplicable(Exception):
    """Raised by an attack or a metric whose method does not apply to what it was given (e.g. a
    latent-recovery attack handed a generator that renders from images, not from a latent code):
    the cell is stored as ``n/a`` with this message, not as an error. Raise it before looking at
    anything the harness scores; it is a statement about the inputs' form, never about results."""


class CellTimeout(RuntimeError):
    """Raised inside a cell that has used up its time budget."""


# --- data sets and tasks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """Which attribute of a data set is sensitive and which are kept as utility."""

    dataset: str
    name: str
    sensitive: str
    utility: tuple[str, ...] = ()
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.dataset}:{self.name}"

    def as_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "name": self.name, "sensitive": self.sensitive,
                "utility": list(self.utility)}


Loader = Callable[..., DatasetSplits]


@dataclass(frozen=True)
class DatasetSpec:
    """A data set plugin: ``load(profile=..., seed=..., **params)`` returns its splits.

    ``params`` holds the loader's keyword parameters with their defaults (e.g. ``n_identities`` for
    a generated set, ``root`` for one loaded from a local folder); a benchmark spec may override
    them. The same (profile, seed, params) must always give the same data.

    ``check(profile, tasks, params)``, optional, is for data read from local files: ``ppbench run``
    calls it before any work with the run's profile, tasks and merged parameters. It checks the
    files cheaply (layout and label files, no pixels decoded) and raises ``ValueError`` with one
    line naming what is missing or malformed, which the run reports as a spec error instead of
    an error in every cell; it returns notes for the user (e.g. splits scaled down to a small
    folder).

    ``revision(params)``, optional, is also for local files: a digest of what they hold now
    (:func:`ppbench.data_revision.folder_digest` of the folder), so that a store and the cache
    never serve results computed from files changed since (:mod:`ppbench.data_revision`).
    """

    name: str
    description: str
    load: Loader
    attributes: tuple[Attribute, ...]
    tasks: tuple[Task, ...]
    kind: Literal["image", "vector"] = IMAGE
    params: dict[str, Any] = field(default_factory=dict)
    version: str = "1"
    check: Callable[[Profile, Sequence[Task], dict[str, Any]], Sequence[str]] | None = None
    revision: Callable[[dict[str, Any]], str] | None = None

    def attribute_map(self) -> dict[str, Attribute]:
        return {a.name: a for a in self.attributes}

    def task(self, name: str) -> Task:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"data set {self.name} has no task {name}; its tasks: "
                       f"{', '.join(t.name for t in self.tasks) or 'none'}")


# --- parameters (scikit-learn's estimator contract) ----------------------------------------------


class Configurable:
    """Constructor keyword arguments are the configuration, stored under the same names."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """The constructor's keyword parameters and their defaults (``inspect.Parameter.empty``
        for a required one)."""
        signature = inspect.signature(cls.__init__)
        return {
            p.name: p.default
            for p in list(signature.parameters.values())[1:]
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }

    def get_params(self) -> dict[str, Any]:
        params = {}
        for key in self.param_defaults():
            if not hasattr(self, key):
                raise PluginContractError(
                    f"{type(self).__name__} ({self.name!r}) must store constructor argument "
                    f"{key!r} as self.{key}")
            params[key] = getattr(self, key)
        return params

    @classmethod
    def summary(cls) -> str:
        if cls.description:
            return cls.description.strip().splitlines()[0]
        doc = inspect.getdoc(cls) or ""
        return doc.splitlines()[0] if doc else ""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


# --- the run context -----------------------------------------------------------------------------


class Context:
    """What the harness hands every ``fit``, ``transform``, ``run``: device, profile, seed, budget.

    ``shared(name, build, **key)`` returns a value computed once per (data set, seed, profile,
    ``name``, ``key``) and cached on disk: use it for models that do not depend on the sanitizer
    (classifiers trained on raw data), so that every sanitizer's cell, and every task, reuses them.
    Put into ``key`` whatever the value depends on (e.g. the attribute, the task if it matters).
    """

    def __init__(
        self,
        *,
        device: "torch.device | str" = "cpu",
        profile: Profile | str = "quick",
        seed: int = 0,
        time_limit: float | None = None,
        show_progress: bool = False,
        shared_store: Callable[[str, Callable[[], Any], dict[str, Any]], Any] | None = None,
        shared_seed: int = 0,
        label: str = "",
    ) -> None:
        import torch

        self.device = torch.device(device)
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.seed = int(seed)
        self.started = time.monotonic()
        self.deadline = None if time_limit is None else self.started + float(time_limit)
        self.show_progress = show_progress
        self.label = label
        self._shared_store = shared_store
        self._shared_seed = int(shared_seed)

    def generator(self, stream: int = 0, device: "torch.device | str | None" = None) -> "torch.Generator":
        """A generator seeded from this context's seed; distinct ``stream`` s are independent."""
        import torch

        g = torch.Generator(device=device or "cpu")
        g.manual_seed((self.seed * 1_000_003 + stream) % (2**63 - 1))
        return g

    def seed_everything(self) -> None:
        """Seed torch's global generators, for code that cannot take a generator (init, dropout)."""
        import random

        import torch

        random.seed(self.seed)
        torch.manual_seed(self.seed % (2**63 - 1))

    def time_left(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            spent = time.monotonic() - self.started
            raise CellTimeout(f"time limit exceeded after {spent:.0f}s ({self.label or 'cell'})")

    def progress(self, iterable: Iterable[T], desc: str = "", total: int | None = None,
                 unit: str = "it") -> Iterator[T]:
        """Iterate with a progress bar (when enabled) and a deadline check at every step."""
        if self.show_progress:
            from tqdm.auto import tqdm

            from .progress import bar_label

            iterable = tqdm(iterable, desc=bar_label(self.label, desc), total=total, unit=unit,
                            leave=False, dynamic_ncols=True)
        for item in iterable:
            self.check_deadline()
            yield item

    def shared(self, name: str, build: Callable[[], T], **key: Any) -> T:
        """``build()`` runs with a seed derived from (name, key) rather than from the cell, so the
        cached value is the same whichever cell happens to build it first."""
        import hashlib
        import json

        digest = hashlib.sha256(json.dumps([self._shared_seed, name, key], sort_keys=True,
                                           default=str).encode()).hexdigest()
        cell_seed = self.seed

        def seeded_build() -> T:
            self.seed = int(digest[:15], 16)
            self.seed_everything()
            try:
                return build()
            finally:
                self.seed = cell_seed

        if self._shared_store is None:
            return seeded_build()
        return self._shared_store(name, seeded_build, key)


# --- sanitizers ----------------------------------------------------------------------------------

TRANSFORM = "transform"  # a sanitizer that transforms every image it is given
# RELEASE (the capability) names the other mode: a sanitizer that publishes a synthetic data set.
SANITIZER_MODES = frozenset({TRANSFORM, RELEASE})


@dataclass
class Sanitized:
    """What ``transform`` may return instead of a bare tensor: the sanitized ``images`` and
    per-item ``records``, tensors whose first dimension is the batch's (e.g. ``{"replacement":
    s_prime}``, the value a generator drew for each item and rendered in its place).

    Records are the sanitizer's own account of what it did. The harness keeps them with the
    sanitized splits and lends them to metrics (``MetricView.records``), which may need them (a
    fool rate compares a classifier's guess with the drawn value); it withholds them from every
    attack, the oracle's answers included, since they describe the output's secret."""

    images: "torch.Tensor"
    records: dict[str, "torch.Tensor"] = field(default_factory=dict)


class Sanitizer(Configurable):
    """A transform that should remove the task's sensitive attribute and keep the rest.

    Subclasses set ``name`` (unique across plugins), ``description``, and ``capabilities`` they
    expose to white-box attacks (through :meth:`handles`). ``inputs`` says which kinds of data set
    it applies to. ``fit`` sees the train split only; ``transform`` must return a float tensor of
    the input's shape with finite values (and, for images, in [0, 1]), or a :class:`Sanitized`
    holding that tensor and per-item records.
    """

    capabilities: ClassVar[frozenset[str]] = frozenset()
    inputs: ClassVar[frozenset[str]] = frozenset({IMAGE, VECTOR})
    # The registered name of the same model without a hidden payload, when this sanitizer is a
    # variant of one (a vendor's build of a published model). The harness then configures that
    # sanitizer with the parameters of this one that it takes, and fits and applies both with
    # the same seeds, so that the two differ by exactly what this one adds; payload detectors
    # (``requires = {"honest_reference"}``) compare the two outputs.
    honest_reference: ClassVar[str | None] = None

    def fit(self, train: ImageSet, task: Task, ctx: Context) -> "Sanitizer":
        return self

    def transform(self, images: "torch.Tensor", ctx: Context) -> "torch.Tensor | Sanitized":
        raise NotImplementedError(f"sanitizer {self.name!r} must implement transform()")

    def release(self, n: int, ctx: Context) -> ImageSet:
        """Release mode (capability ``release``), instead of ``transform``: after ``fit``, return
        a synthetic surrogate data set, images of the data's shape in [0, 1] with a label for every
        attribute of the task (sensitive and utility), e.g. D' = {(G(z), C(G(z)))}. ``n`` is the
        size the harness asks for (the fit split's); a sanitizer with a size parameter of its own
        may return another number of items. See ``ppbench.release``."""
        raise NotImplementedError(f"sanitizer {self.name!r} declares 'release' but does not "
                                  "implement release()")

    @classmethod
    def mode(cls) -> str:
        """``release`` for a sanitizer that publishes a surrogate data set, else ``transform``."""
        return RELEASE if RELEASE in cls.capabilities else TRANSFORM

    def handles(self) -> dict[str, Any]:
        """White-box objects for the declared capabilities, e.g. ``{"discriminator": module}``."""
        return {}


# --- attacks -------------------------------------------------------------------------------------


@dataclass
class AttackView:
    """Exactly what an attack's threat model grants it.

    ``attack``: the attack split, sanitized by the fitted sanitizer, with its true labels: the
    papers' standard adversary trains here. It is disjoint from the sanitizer's fit split, so a
    sanitizer that memorises its fit set cannot hand the attacker a train/test shift.
    ``test``: the sanitized test split with no labels at all; the attack predicts, the harness
    scores. The other fields are ``None`` unless the attack requires them and the sanitizer or
    data set provides them: ``raw_train`` is the sanitizer's raw fit split with labels.
    """

    attack: ImageSet
    test: ImageSet
    raw_train: ImageSet | None = None
    aux: ImageSet | None = None
    oracle: Callable[["torch.Tensor"], "torch.Tensor"] | None = None
    handles: dict[str, Any] = field(default_factory=dict)


@dataclass
class AttackResult:
    """An attack's guess of the sensitive attribute of every sanitized test item, in order.

    ``predictions``: int64 class indices (N,) or class scores (N×K; the arg-max is the guess).
    ``diagnostics``: optional extra figures (e.g. train accuracy), stored but not ranked.
    """

    predictions: "torch.Tensor"
    diagnostics: dict[str, float] = field(default_factory=dict)
    # The attack budget that produced the figures, recorded with them (``ppbench show`` prints
    # it): see :data:`BUDGET_FIELDS` for the names the built-ins use.
    budget: dict[str, float] = field(default_factory=dict)
    # Optional estimates of the raw test images, in order (N×C×H×W in [0, 1]): what a decoded
    # payload reconstructs. The harness scores them against the raw test images by PSNR and SSIM
    # (exactly as the distortion metric does), beside the attribute.
    reconstructions: "torch.Tensor | None" = None


@dataclass
class ReconstructionResult:
    """A ``reconstruction`` attack's estimate of every raw test image, in the test split's order:
    a float tensor of the test images' shape, values in [0, 1]. The harness scores it against the
    raw test images (PSNR, SSIM) and by how often a fixed classifier trained on raw images reads
    the sensitive attribute from it (re-identification)."""

    images: "torch.Tensor"
    diagnostics: dict[str, float] = field(default_factory=dict)
    # The attack budget that produced the figures, recorded with them (``ppbench show`` prints
    # it): see :data:`BUDGET_FIELDS` for the names the built-ins use.
    budget: dict[str, float] = field(default_factory=dict)


@dataclass
class ReferenceDetectorView:
    """What a ``reference-detector`` attack gets: tell a sanitizer's outputs from those of the
    honest model it declares itself a variant of (``Sanitizer.honest_reference``).

    ``suspect``: the sanitized attack split (no labels); ``reference``: the same raw items through
    the honest reference, in the same order (no labels), as an auditor who can query both models
    would hold them. ``candidates``: test items, half the suspect's outputs and half the
    reference's, from disjoint items, shuffled; which is which the harness alone knows, and it
    scores the attack's :class:`DetectionResult` by AUC."""

    suspect: ImageSet
    reference: ImageSet
    candidates: "torch.Tensor"


@dataclass
class DetectorView:
    """What a ``detector`` attack gets: tell sanitized items from raw ones.

    ``sanitized``: the sanitized attack split (no labels); ``raw``: raw items of the granted kind
    (``aux`` or ``raw_train``, whichever the attack's ``requires`` obtained; ``None`` if neither).
    ``candidates``: a shuffled mix of sanitized and raw test items, half each, from disjoint
    items; which is which the harness alone knows, and it scores the attack's answer by AUC.
    """

    sanitized: ImageSet
    raw: ImageSet | None
    candidates: "torch.Tensor"


@dataclass
class DetectionResult:
    """A detector's score for every candidate, in order: higher means more likely sanitized."""

    scores: "torch.Tensor"
    diagnostics: dict[str, float] = field(default_factory=dict)
    # The attack budget that produced the figures, recorded with them (``ppbench show`` prints
    # it): see :data:`BUDGET_FIELDS` for the names the built-ins use.
    budget: dict[str, float] = field(default_factory=dict)


class Attack(Configurable):
    """Tries to recover what the sanitizer should have removed.

    ``kind`` is the scoring kind (``ppbench.kinds.ATTACK_KINDS``): ``attribute`` attacks predict the
    sensitive attribute of every sanitized test item and the harness scores the predictions;
    ``detector`` attacks get a :class:`DetectorView`, score each candidate and return a
    :class:`DetectionResult`, scored by AUC (shown beside the ranking, not part of its worst case);
    ``reference-detector`` attacks get a :class:`ReferenceDetectorView` (the sanitizer's outputs
    beside its honest reference's) and return a :class:`DetectionResult` scored the same way;
    ``reconstruction`` attacks get an :class:`AttackView` and return a
    :class:`ReconstructionResult`, scored by PSNR and SSIM against the raw test images and by the
    re-identification advantage of a fixed raw-trained classifier (ranked like an attribute).
    ``requires`` lists sanitizer capabilities (``discriminator``...) and data grants (``oracle``,
    ``raw_train``, ``aux``, ``honest_reference``); when one is not available the cell is recorded as ``n/a``. An entry
    may be a tuple of alternatives, any one of which will do: ``{("aux", "raw_train")}`` is met by
    public aux data when the data set has some, else by the raw train split, and the view grants
    the first alternative that can be met, in the order given. The harness reads ``requires`` from
    the configured instance, so an attack may set it in ``__init__`` from its parameters (e.g.
    ``self.requires = {source}``); a class attribute serves every configuration.
    ``threat_model`` is an identifier from ``ppbench.kinds.THREAT_MODELS`` (or a
    ``ppbench.kinds.ThreatModel``): what the attacker holds, shown by ``ppbench list`` and the
    leaderboards.
    """

    kind: ClassVar[str] = "attribute"
    # The sanitizer modes the attack's method means something against (see ``ppbench.release``):
    # against a release, an attribute attack's ``view.attack`` is the released surrogate set with
    # its released labels and ``view.test`` the real test split, so "trains on the view's attack
    # split, predicts its test split" answers "can the sensitive attribute of real people be
    # inferred from the release?". An attack that ignores the sanitized split (one trained on raw
    # data only) measures nothing about a release and keeps the default. Membership attacks ask
    # who was in the fit set, a question for either mode: they apply to both whatever this says,
    # and what they need is in ``requires``.
    applies_to: ClassVar[frozenset[str]] = frozenset({TRANSFORM})
    # Not a ClassVar: an instance may set its own from its parameters (the harness reads the
    # configured instance's). Any collection of entries will do: a set, a frozenset, a list.
    requires: Collection[Requirement] = frozenset()
    threat_model: ClassVar[Any] = "sanitized-labelled"
    # True: the harness may hand this attack several cells at once, through ``run_batch``: the
    # same configuration against several sanitizer configurations of one (task, seed), e.g. to
    # train their small classifiers together on a GPU (``--batch-attacks``).
    batchable: ClassVar[bool] = False

    def run(self, view: AttackView, task: Task, ctx: Context) -> AttackResult:
        raise NotImplementedError(f"attack {self.name!r} must implement run()")

    def run_batch(self, views: Sequence[AttackView], task: Task,
                  contexts: Sequence[Context]) -> list[AttackResult]:
        """One result per view, each what ``run(views[i], task, contexts[i])`` returns (up to
        float rounding): each cell keeps its own context and seed. The default runs them one
        after the other; a batchable attack overrides it to share the work."""
        return [self.run(view, task, ctx) for view, ctx in zip(views, contexts)]


# --- utility metrics -----------------------------------------------------------------------------

# "reported": a figure the leaderboard shows in its own column beside its metric's primary one,
# never ranked (e.g. surrogate-utility's gap C − C'); "diagnostic": stored, not shown.
# "budget": what the figures of a cell cost the attacker or the metric (epochs, models...),
# recorded with them (``budget:<name>``) and shown by ``ppbench show``, never ranked.
Role = Literal["leakage", "utility", "distortion", "reported", "diagnostic", "budget"]

# The budget names the built-in plugins record (a plugin may add its own; numbers only), so that
# a figure can be reproduced and compared at equal budget: users of membership-inference toolkits
# report numbers they cannot reproduce because this was missing.
BUDGET_FIELDS = {
    "epochs": "training epochs run (after early stopping)",
    "max_epochs": "the cap on training epochs",
    "steps": "optimiser steps",
    "width": "the trained network's width",
    "embedding_dim": "an embedding's dimension",
    "reference_models": "models trained on raw data that the figure relies on",
    "shadow_models": "shadow or reference models of a membership attack",
    "training_items": "items the attacker trained on",
    "queries": "queries to the sanitizer (an oracle)",
}


@dataclass(frozen=True)
class MetricValue:
    """One figure of a cell. ``better`` is the direction that is better *for the sanitizer*."""

    name: str
    value: float
    better: Literal["higher", "lower"] = "higher"
    role: Role = "utility"
    primary: bool = False
    ci_low: float | None = None
    ci_high: float | None = None
    chance: float | None = None

    @classmethod
    def budget(cls, name: str, value: float) -> "MetricValue":
        """One figure of what the metric's own training cost (``budget:<name>``; names as in
        ``BUDGET_FIELDS``), stored and shown by ``ppbench show``, never ranked: an attack's
        result records the same in its ``budget`` field."""
        return cls(f"budget:{name}", float(value), role="budget")


@dataclass
class MetricView:
    """A utility metric is the harness's own instrument: it sees raw and sanitized data with their
    labels, except the sensitive attribute's on the test splits (a metric measures what is kept;
    the sanitizer never sees this view). ``raw_train`` is the sanitizer's fit split;
    ``raw_attack``/``sanitized_attack`` and ``raw_test``/``sanitized_test`` are the same items
    before and after sanitization. ``records`` holds what the sanitizer recorded per item while
    sanitizing each split (see :class:`Sanitized`), by split (``"attack"``, ``"test"``) and name,
    in the splits' order; empty for a sanitizer that records nothing.

    For a release-mode sanitizer nothing is transformed: ``release`` holds the released surrogate
    set with its labels, ``sanitized_attack`` is the same set and ``sanitized_test`` the raw test
    split (the pair an attribute attack trains and predicts on)."""

    raw_train: ImageSet
    raw_attack: ImageSet
    raw_test: ImageSet
    sanitized_attack: ImageSet
    sanitized_test: ImageSet
    records: dict[str, dict[str, "torch.Tensor"]] = field(default_factory=dict)
    release: ImageSet | None = None


class UtilityMetric(Configurable):
    """Measures what a sanitizer keeps. Exactly one returned value should be ``primary``: the
    figure a leaderboard shows and ranks on (role ``utility``) or reports (role ``distortion``).

    ``requires_records`` names the per-item records (:class:`Sanitized`) the metric reads; with a
    sanitizer that does not record them its cells are ``n/a``, with the reason."""

    requires_records: ClassVar[Collection[str]] = frozenset()
    # The sanitizer modes the metric measures something on (see ``Attack.applies_to``); a metric
    # of transformed images (distortion, a raw classifier on sanitized images) keeps the default.
    applies_to: ClassVar[frozenset[str]] = frozenset({TRANSFORM})

    def run(self, view: MetricView, task: Task, ctx: Context) -> list[MetricValue]:
        raise NotImplementedError(f"metric {self.name!r} must implement run()")
