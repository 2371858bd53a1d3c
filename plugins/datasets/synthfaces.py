"""synthfaces: procedural cartoon faces in the spirit of FERG, with CelebA-like attribute correlations.

Every image shows one of ``n_identities`` characters (default 50). Identities come in look-alike
groups of about three of one sex that share what a coarse view shows: skin tone, hair colour, hair
style and beard, drawn from palettes shared across groups, so that no colour gives an identity
away (at 50 identities each skin tone and each hair colour belongs to at least three identities,
as does each pairing of the two). Within a group the finer traits tell its members apart: face
shape (width, height, jaw), eye spacing, size and colour, nose style and size, brow weight, ear
size and face markings (none, freckles, or a mole at an identity's own spot). Identity is thus a
combination of many traits: a classifier reads it from raw images, while pixelation or a strong
blur leaves mostly the look-alike group. The binary ``male`` trait is balanced across identities
and shapes the jaw, the hair style and the brows; some male groups wear a beard. Each image then
draws an expression out of FERG's seven (anger, disgust, fear, joy, neutral, sadness, surprise) and
a set of binary attributes from a small generative model (a Bayesian network, below), and finally
nuisance: rotation, translation, scale, lighting gradient, background, clothes and pixel noise.

How each attribute shows in the image:

- ``smiling``: the mouth's corners turn up and the mouth widens;
- ``mouth_open``: a dark opening between the lips (teeth show when smiling);
- ``high_cheekbones``: pink blush on the cheeks;
- ``lipstick``: red, fuller lips;
- ``heavy_makeup``: coloured eye shadow and thick eyeliner;
- ``glasses``: frames around both eyes with a bridge and temples;
- ``young``: smooth, slightly brighter skin; not young: forehead and smile lines, eye bags,
  greyer hair and duller skin;
- ``male`` (a trait of the identity): squarer jaw, heavier brows, short/bald/curly/spiky hair,
  sometimes a beard;
- expression: brow height and tilt, eye openness, mouth curve and shape.

The generative model (``identity`` uniform; ``male`` a trait of the identity, half the identities)::

    expression ~ Categorical(EXPRESSION_WEIGHTS)
    smiling    ~ Bernoulli(SMILE_GIVEN_EXPRESSION[expression] × (MALE_SMILE_FACTOR if male else 1))
    high_cheekbones ~ Bernoulli(CHEEKBONES_GIVEN_SMILING[smiling])
    mouth_open ~ Bernoulli(MOUTH_OPEN_WHEN_SMILING if smiling else MOUTH_OPEN_GIVEN_EXPRESSION[expression])
    young      ~ Bernoulli(YOUNG_GIVEN_MALE[male])
    lipstick   ~ Bernoulli(LIPSTICK_MALE if male else LIPSTICK_GIVEN_YOUNG[young] ± LIPSTICK_SMILE_SHIFT)
    heavy_makeup ~ Bernoulli(MAKEUP_GIVEN_YOUNG[young] ± MAKEUP_SMILE_SHIFT if lipstick else MAKEUP_WITHOUT_LIPSTICK)
    glasses    ~ Bernoulli(GLASSES_GIVEN_YOUNG[young])

Its Pearson correlations approximate CelebA's (Martinsson et al. 2020, Table 4 for smiling; the
others follow the direction of their Table 3 and CelebA's well-known gender/makeup structure).
The targets below are checked on 20k loaded images by tests/test_datasets.py (tolerance ±0.05;
the model's exact values, measured on 400k draws, lie within ±0.015 of them):

    ==================  ===============  ======  ===================================
    attribute           attribute        target  source
    ==================  ===============  ======  ===================================
    smiling             high_cheekbones   +0.68  Table 4
    smiling             mouth_open        +0.53  Table 4 (mouth slightly open)
    smiling             lipstick          +0.18  Table 4
    smiling             heavy_makeup      +0.18  Table 4
    smiling             male              -0.14  Table 4 (gender)
    smiling             glasses           +0.00  Table 4 has -0.04; here glasses follow age only
    lipstick            male              -0.78  lipstick is worn almost only by women
    lipstick            heavy_makeup      +0.75  makeup comes with lipstick
    lipstick            young             +0.25  Table 3 (0.23-0.26)
    male                young             -0.25  CelebA's women are more often labelled young
    ==================  ===============  ======  ===================================

Other correlations of the model: male↔heavy_makeup −0.59, mouth_open↔high_cheekbones +0.35,
young↔glasses −0.21; every other pair lies within ±0.25. Class balance (approx.): smiling 43%,
mouth_open 43%, high_cheekbones 45%, male 50%, young 73%, lipstick 42%, heavy_makeup 32%,
glasses 10%; joy 30% and neutral 22% of the expressions. Smiling follows the expression: joy 83%
(97% for women, 70% for men), neutral 53%, surprise 43%, the others 3-7%.

Rendering, vectorised in torch, is :mod:`ppbench.plugins.datasets.synthfaces_render`. Loaded images
are 8-bit, as decoded photographs are: every pixel is a multiple of 1/255 (version 3; version 2
kept the renderer's continuous values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ppbench import (Attribute, DatasetSpec, DatasetSplits, ImageSet, Profile, Task, hookimpl,
                     quantize_8bit)

if TYPE_CHECKING:
    import torch

NAME = "synthfaces"

EXPRESSIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
BINARY_ATTRIBUTES = ("smiling", "mouth_open", "high_cheekbones", "male", "young", "lipstick",
                     "heavy_makeup", "glasses")
HAIR_STYLES = ("short", "bald", "curly", "spiky", "long", "bangs", "ponytail", "bun")
MALE_HAIR_STYLES = ("short", "bald", "curly", "spiky")
FEMALE_HAIR_STYLES = ("long", "bangs", "ponytail", "bun")
NOSE_STYLES = ("button", "long", "wide", "pointed")
MARKINGS = ("no markings", "freckles", "mole")
LOOKALIKE_GROUP_SIZE = 3

# --- the attribute model (see the module docstring for the correlations it produces) -------------

EXPRESSION_WEIGHTS = (0.10, 0.08, 0.08, 0.30, 0.22, 0.10, 0.12)
SMILE_GIVEN_EXPRESSION = (0.04, 0.06, 0.08, 0.97, 0.62, 0.04, 0.50)
MALE_SMILE_FACTOR = 0.72
CHEEKBONES_GIVEN_SMILING = (0.15, 0.83)
MOUTH_OPEN_GIVEN_EXPRESSION = (0.08, 0.08, 0.45, 0.06, 0.04, 0.05, 0.80)
MOUTH_OPEN_WHEN_SMILING = 0.72
YOUNG_GIVEN_MALE = (0.84, 0.62)
LIPSTICK_GIVEN_YOUNG = (0.62, 0.84)  # women only; indexed by young
LIPSTICK_SMILE_SHIFT = 0.07  # added when smiling, subtracted when not
LIPSTICK_MALE = 0.03
MAKEUP_GIVEN_YOUNG = (0.56, 0.74)  # with lipstick; indexed by young
MAKEUP_SMILE_SHIFT = (-0.04, 0.06)  # indexed by smiling
MAKEUP_WITHOUT_LIPSTICK = 0.03
GLASSES_GIVEN_YOUNG = (0.20, 0.06)

CORRELATION_TARGETS: dict[tuple[str, str], float] = {
    ("smiling", "high_cheekbones"): 0.68,
    ("smiling", "mouth_open"): 0.53,
    ("smiling", "lipstick"): 0.18,
    ("smiling", "heavy_makeup"): 0.18,
    ("smiling", "male"): -0.14,
    ("smiling", "glasses"): 0.0,
    ("lipstick", "male"): -0.78,
    ("lipstick", "heavy_makeup"): 0.75,
    ("lipstick", "young"): 0.25,
    ("male", "young"): -0.25,
}

# Per expression (FERG order): brow raise, brow tilt (+ = inner ends up), eye openness, mouth bend
# when not smiling (+ = corners up), mouth width, height of the opening when the mouth is open.
_EXPRESSION_SHAPES = (
    (-0.07, -0.40, 0.72, -0.10, 0.92, 0.09),  # anger
    (-0.04, -0.18, 0.55, -0.13, 0.85, 0.07),  # disgust
    (0.11, 0.38, 1.30, -0.07, 0.88, 0.13),  # fear
    (0.05, 0.00, 0.50, 0.04, 1.08, 0.12),  # joy
    (0.00, 0.00, 1.00, 0.00, 1.00, 0.08),  # neutral
    (0.02, 0.45, 0.68, -0.17, 0.90, 0.07),  # sadness
    (0.17, 0.05, 1.42, 0.00, 0.62, 0.19),  # surprise
)
# Disgust lifts one corner of the mouth; every other expression is symmetric.
_MOUTH_SKEW = (0.0, 0.09, 0.0, 0.0, 0.0, 0.0, 0.0)

# --- palettes (RGB in [0, 1]) --------------------------------------------------------------------

_SKIN_TONES = (
    (1.00, 0.88, 0.78), (0.98, 0.80, 0.66), (0.92, 0.72, 0.56), (0.84, 0.63, 0.46),
    (0.74, 0.52, 0.36), (0.60, 0.41, 0.28), (0.46, 0.31, 0.21), (0.97, 0.85, 0.62),
)
_HAIR_COLOURS = (
    (0.08, 0.07, 0.07), (0.32, 0.19, 0.10), (0.55, 0.35, 0.17), (0.62, 0.20, 0.10),
    (0.95, 0.82, 0.45), (0.88, 0.47, 0.16), (0.90, 0.90, 0.84), (0.20, 0.34, 0.78),
    (0.88, 0.42, 0.66), (0.18, 0.58, 0.34),
)
_EYE_COLOURS = ((0.30, 0.18, 0.08), (0.10, 0.08, 0.06), (0.20, 0.45, 0.80), (0.25, 0.55, 0.30),
                (0.45, 0.50, 0.55))
_LIPSTICK_COLOURS = ((0.82, 0.06, 0.14), (0.72, 0.04, 0.32), (0.92, 0.18, 0.22))
_EYESHADOW_COLOURS = ((0.55, 0.28, 0.72), (0.28, 0.42, 0.88), (0.15, 0.62, 0.62), (0.70, 0.45, 0.20))
_FRAME_COLOURS = ((0.06, 0.06, 0.08), (0.32, 0.18, 0.08), (0.55, 0.05, 0.10), (0.08, 0.12, 0.38))
_GREY_HAIR = (0.74, 0.74, 0.74)
_BLUSH = (0.97, 0.40, 0.48)

# Pixels per rendering chunk: small enough for the intermediates to stay in cache (measured: 4x
# faster at 64×64 than chunks of 1024 images), large enough to amortise per-op overhead.
_RENDER_CHUNK_PIXELS = 2**18
_STREAMS = {"identities": 0, "train": 1, "test": 2, "aux": 3, "attack": 4,
            "other_identities": 5, "other_images": 6}


# --- identities and per-image factors ------------------------------------------------------------


@dataclass
class IdentityTraits:
    """Fixed traits of each identity, one entry per identity (tensors of length n_identities)."""

    male: "torch.Tensor"  # bool
    look: "torch.Tensor"  # the look-alike group: identities in one share the coarse traits below
    face_width: "torch.Tensor"
    face_height: "torch.Tensor"
    jaw_squareness: "torch.Tensor"  # superellipse exponent of the lower face: 2 = round
    skin: "torch.Tensor"  # n×3, shared by the look-alike group
    hair_style: "torch.Tensor"  # index into HAIR_STYLES, shared by the look-alike group
    hair_colour: "torch.Tensor"  # n×3, shared by the look-alike group
    eye_spacing: "torch.Tensor"
    eye_size: "torch.Tensor"
    eye_colour: "torch.Tensor"  # n×3
    nose_style: "torch.Tensor"  # index into NOSE_STYLES
    nose_size: "torch.Tensor"
    brow_thickness: "torch.Tensor"
    ear_size: "torch.Tensor"
    marking: "torch.Tensor"  # index into MARKINGS
    mole: "torch.Tensor"  # n×2: where the mole sits (face units), for the identities that have one
    beard: "torch.Tensor"  # 0 none, 1 stubble, 2 full; shared by the look-alike group

    def __len__(self) -> int:
        return len(self.male)

    def describe(self, index: int) -> str:
        sex = "male" if bool(self.male[index]) else "female"
        return (f"identity {index} (look {int(self.look[index])}): {sex}, "
                f"{HAIR_STYLES[int(self.hair_style[index])]} hair, "
                f"{NOSE_STYLES[int(self.nose_style[index])]} nose, "
                f"{MARKINGS[int(self.marking[index])]}")


@dataclass
class Factors:
    """Everything drawn per image: the labels and the nuisance that the renderer needs."""

    labels: dict[str, "torch.Tensor"]
    nuisance: dict[str, "torch.Tensor"]

    def __len__(self) -> int:
        return len(self.labels["identity"])

    def subset(self, index: "torch.Tensor | slice") -> "Factors":
        return Factors({k: v[index] for k, v in self.labels.items()},
                       {k: v[index] for k, v in self.nuisance.items()})


def _generator(seed: int, stream: int) -> "torch.Generator":
    import torch

    generator = torch.Generator()
    generator.manual_seed((int(seed) * 1_000_003 + stream) % (2**63 - 1))
    return generator


def _spread_choice(n: int, pool_size: int, generator: "torch.Generator") -> "torch.Tensor":
    """n indices into a pool, all distinct while n <= pool_size, then every index repeats evenly."""
    import torch

    rounds = [torch.randperm(pool_size, generator=generator) for _ in range(-(-n // pool_size))]
    return torch.cat(rounds)[:n]


def _lookalike_groups(male: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
    """Each identity's look-alike group: identities of one sex dealt at random into groups of
    LOOKALIKE_GROUP_SIZE (one group larger when the count does not divide; a single group when
    there are fewer), numbered from 0."""
    import torch

    look = torch.empty(len(male), dtype=torch.long)
    first = 0
    for is_male in (True, False):
        members = torch.nonzero(male == is_male).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        groups = max(1, len(members) // LOOKALIKE_GROUP_SIZE)
        look[members] = first + torch.arange(len(members)) % groups
        first += groups
    return look


def _within_groups(look: "torch.Tensor", pool_size: int, generator: "torch.Generator") -> "torch.Tensor":
    """Per identity, an index into a pool, distinct within each look-alike group (up to the pool's
    size), so that look-alikes differ in this trait."""
    import torch

    picks = torch.empty(len(look), dtype=torch.long)
    for group in range(int(look.max()) + 1):
        members = torch.nonzero(look == group).flatten()
        picks[members] = _spread_choice(len(members), pool_size, generator)
    return picks


def _stratified(look: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
    """Per identity, a value in [0, 1) drawn so that the members of each look-alike group fall in
    distinct equal strata (one low, one middle, one high...): look-alikes are spread out."""
    import torch

    values = torch.empty(len(look))
    for group in range(int(look.max()) + 1):
        members = torch.nonzero(look == group).flatten()
        k = len(members)
        values[members] = (torch.randperm(k, generator=generator) + torch.rand(k, generator=generator)) / k
    return values


def make_identities(n_identities: int, seed: int, stream: int = _STREAMS["identities"]) -> IdentityTraits:
    """The identity traits for a seed. Every split of a data set shares them (``stream``: another
    population of people, e.g. the other identities of open-set re-identification).

    Identities come in look-alike groups of about three of the same sex. A group shares what a
    coarse view shows (skin tone, hair colour, hair style, beard), drawn from shared palettes so
    that every colour also belongs to other groups (at 50 identities, each skin tone and each hair
    colour belongs to at least three identities). Its members differ in the finer traits: face
    shape, eye spacing, size and colour, nose, brows, ears and face markings.
    """
    import torch

    if n_identities < 2:
        raise ValueError(f"synthfaces needs at least 2 identities, got {n_identities}")
    g = _generator(seed, stream)
    n = n_identities

    # Exactly half the identities (rounded down) are male, in a seeded order, so that the male
    # class stays balanced at any n and the attribute model's correlations hold.
    male = torch.zeros(n, dtype=torch.bool)
    male[torch.randperm(n, generator=g)[: n // 2]] = True

    # The coarse traits, one draw per look-alike group.
    look = _lookalike_groups(male, g)
    n_looks = int(look.max()) + 1
    look_male = torch.zeros(n_looks, dtype=torch.bool)
    look_male[look[male]] = True
    look_style = torch.empty(n_looks, dtype=torch.long)
    for is_male, pool in ((True, MALE_HAIR_STYLES), (False, FEMALE_HAIR_STYLES)):
        members = torch.nonzero(look_male == is_male).flatten()
        picks = _spread_choice(len(members), len(pool), g)
        look_style[members] = torch.tensor([HAIR_STYLES.index(pool[int(i)]) for i in picks],
                                           dtype=torch.long)
    look_skin = torch.tensor(_SKIN_TONES)[_spread_choice(n_looks, len(_SKIN_TONES), g)]
    look_hair = torch.tensor(_HAIR_COLOURS)[_spread_choice(n_looks, len(_HAIR_COLOURS), g)]
    look_width = 0.80 + 0.18 * torch.rand(n_looks, generator=g)
    look_height = 1.00 + 0.18 * torch.rand(n_looks, generator=g)
    beard_draw = torch.rand(n_looks, generator=g)
    look_beard = torch.where(look_male, (beard_draw > 0.45).long() + (beard_draw > 0.75).long(),
                             torch.zeros(n_looks, dtype=torch.long))

    # The fine traits, spread out within each group.
    def spread(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * _stratified(look, g)

    side = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    mole = torch.stack([side * spread(0.22, 0.55), spread(0.02, 0.40)], dim=1)
    return IdentityTraits(
        male=male,
        look=look,
        face_width=look_width[look] + spread(-0.025, 0.025) + 0.05 * male,
        face_height=look_height[look] + spread(-0.025, 0.025),
        jaw_squareness=torch.where(male, spread(2.8, 4.0), spread(1.9, 2.3)),
        skin=look_skin[look],
        hair_style=look_style[look],
        hair_colour=look_hair[look],
        eye_spacing=spread(0.29, 0.42),
        eye_size=spread(0.13, 0.19),
        eye_colour=torch.tensor(_EYE_COLOURS)[_within_groups(look, len(_EYE_COLOURS), g)],
        nose_style=_within_groups(look, len(NOSE_STYLES), g),
        nose_size=spread(0.8, 1.25),
        brow_thickness=torch.where(male, spread(0.065, 0.085), spread(0.04, 0.055)),
        ear_size=spread(0.8, 1.3),
        marking=_within_groups(look, len(MARKINGS), g),
        mole=mole,
        beard=look_beard[look],
    )


def _bernoulli(p: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
    import torch

    return torch.rand(p.shape, generator=generator) < p


def sample_attributes(n: int, identities: IdentityTraits, generator: "torch.Generator") -> dict[str, "torch.Tensor"]:
    """Draw identity, expression and the binary attributes of n images (int64 labels)."""
    import torch

    identity = torch.randint(len(identities), (n,), generator=generator)
    male = identities.male[identity]
    expression = torch.multinomial(torch.tensor(EXPRESSION_WEIGHTS), n, replacement=True,
                                   generator=generator)
    p_smile = torch.tensor(SMILE_GIVEN_EXPRESSION)[expression]
    p_smile = torch.where(male, p_smile * MALE_SMILE_FACTOR, p_smile)
    smiling = _bernoulli(p_smile, generator)
    high_cheekbones = _bernoulli(torch.tensor(CHEEKBONES_GIVEN_SMILING)[smiling.long()], generator)
    p_open = torch.where(smiling, torch.tensor(MOUTH_OPEN_WHEN_SMILING),
                         torch.tensor(MOUTH_OPEN_GIVEN_EXPRESSION)[expression])
    mouth_open = _bernoulli(p_open, generator)
    young = _bernoulli(torch.tensor(YOUNG_GIVEN_MALE)[male.long()], generator)
    p_lipstick = torch.tensor(LIPSTICK_GIVEN_YOUNG)[young.long()]
    p_lipstick = p_lipstick + LIPSTICK_SMILE_SHIFT * (2 * smiling.float() - 1)
    p_lipstick = torch.where(male, torch.tensor(LIPSTICK_MALE), p_lipstick)
    lipstick = _bernoulli(p_lipstick, generator)
    p_makeup = (torch.tensor(MAKEUP_GIVEN_YOUNG)[young.long()]
                + torch.tensor(MAKEUP_SMILE_SHIFT)[smiling.long()])
    p_makeup = torch.where(lipstick, p_makeup, torch.tensor(MAKEUP_WITHOUT_LIPSTICK))
    heavy_makeup = _bernoulli(p_makeup, generator)
    glasses = _bernoulli(torch.tensor(GLASSES_GIVEN_YOUNG)[young.long()], generator)
    labels = {
        "identity": identity, "expression": expression, "smiling": smiling,
        "mouth_open": mouth_open, "high_cheekbones": high_cheekbones, "male": male,
        "young": young, "lipstick": lipstick, "heavy_makeup": heavy_makeup, "glasses": glasses,
    }
    return {k: v.long() for k, v in labels.items()}


def sample_factors(n: int, identities: IdentityTraits, generator: "torch.Generator",
                   nuisance: float = 1.0) -> Factors:
    """Draw the labels and the per-image nuisance of n images.

    ``nuisance`` scales pose, scale, lighting and background variation (0 = a canonical studio).
    """
    import torch

    labels = sample_attributes(n, identities, generator)
    g = generator

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, *shape, generator=g)

    def centred(half_width: float, *shape: int) -> torch.Tensor:
        return nuisance * uniform(-half_width, half_width, *shape)

    def pick(palette: tuple[tuple[float, float, float], ...]) -> torch.Tensor:
        return torch.tensor(palette)[torch.randint(len(palette), (n,), generator=g)]

    # Backgrounds are muted (a grey level tinted by a random colour) so that the face stands out.
    def muted(saturation: float) -> torch.Tensor:
        grey = uniform(0.3, 0.85, 1)
        return (grey + saturation * (uniform(0.0, 1.0, 3) - 0.5)).clamp(0, 1)

    background_a = muted(0.45)
    background_b = background_a + nuisance * (muted(0.45) - background_a)
    light_angle = uniform(0.0, 2 * math.pi)
    nuisance_values = {
        "angle": centred(math.radians(12)),
        "shift": centred(0.08, 2),
        "scale": 1.0 + centred(0.09),
        "expression_intensity": uniform(0.65, 1.0),
        "smile_strength": uniform(0.55, 1.0),
        "gaze": centred(0.35, 2),
        "background_a": background_a,
        "background_b": background_b,
        "background_angle": uniform(0.0, 2 * math.pi),
        "shirt": uniform(0.1, 0.85, 3),
        "light_direction": torch.stack([light_angle.cos(), light_angle.sin()], dim=1),
        "light_strength": centred(0.22).abs(),
        "brightness": 1.0 + centred(0.12),
        "lipstick_colour": pick(_LIPSTICK_COLOURS),
        "eyeshadow_colour": pick(_EYESHADOW_COLOURS),
        "frame_colour": pick(_FRAME_COLOURS),
    }
    return Factors(labels, nuisance_values)


# --- the data set --------------------------------------------------------------------------------


def _attributes(n_identities: int) -> tuple[Attribute, ...]:
    descriptions = {
        "smiling": "mouth corners turned up",
        "mouth_open": "lips apart, dark opening visible",
        "high_cheekbones": "blush on the cheeks",
        "male": "identity-level gender trait (jaw, hair, brows, beard)",
        "young": "smooth bright skin; otherwise wrinkles and greying hair",
        "lipstick": "red lips",
        "heavy_makeup": "eye shadow and thick eyeliner",
        "glasses": "spectacle frames",
    }
    return (
        Attribute("identity", tuple(f"id{i}" for i in range(n_identities)), "the character shown"),
        Attribute("expression", EXPRESSIONS, "FERG's seven expressions"),
        *(Attribute(name, ("no", "yes"), descriptions[name]) for name in BINARY_ATTRIBUTES),
    )


# Utility attributes are the ones a perfect sanitizer could keep while hiding the sensitive one:
# an attribute that determines the sensitive one, or correlates with it strongly (|r| >= 0.4 under
# the attribute model), is left out, since keeping it would keep the secret.
TASKS = (
    # PPRL-VGAN's setting: hide who it is, keep the expression. male is a trait of the identity,
    # and lipstick/heavy_makeup reveal male (r = -0.78/-0.58), so they are not utility here.
    Task(NAME, "identity", "identity",
         ("expression", "smiling", "mouth_open", "high_cheekbones", "young", "glasses"),
         "hide who is shown; keep expression and per-image attributes"),
    # Martinsson et al.'s smiling task. expression largely determines smiling (joy ⇒ smiling),
    # high_cheekbones (r = 0.68) and mouth_open (r = 0.53) are proxies for it.
    Task(NAME, "smiling", "smiling",
         ("identity", "male", "young", "lipstick", "heavy_makeup", "glasses"),
         "hide the smile; keep who it is and the other attributes"),
    # Gender: identity determines it, lipstick and heavy_makeup are strong proxies.
    Task(NAME, "male", "male",
         ("expression", "smiling", "mouth_open", "high_cheekbones", "young", "glasses"),
         "hide gender; keep expression and per-image attributes"),
    # Lipstick: male (r = -0.78) and heavy_makeup (r = 0.75) are proxies; identity reveals male.
    Task(NAME, "lipstick", "lipstick",
         ("expression", "smiling", "mouth_open", "high_cheekbones", "young", "glasses"),
         "hide lipstick; keep expression and the other per-image attributes"),
    # Young: no attribute correlates with it beyond |r| = 0.26, so all the others are utility.
    Task(NAME, "young", "young",
         ("identity", "expression", "smiling", "mouth_open", "high_cheekbones", "male", "lipstick",
          "heavy_makeup", "glasses"),
         "hide age; keep everything else"),
)

DEFAULT_PARAMS: dict[str, Any] = {
    "n_identities": 50,
    "n_train": None,  # None: the profile's size
    "n_attack": None,
    "n_test": None,
    "n_aux": None,
    "image_size": None,
    "noise_std": 0.02,
    "nuisance": 1.0,
    # Open-set re-identification: people no other split shows, on whom an attacker trains its
    # recognizer (DatasetSplits.other_identities). 0 identities: no such split. A recognizer
    # learns more from images per person than from people (quick profile, TAR at 1% FAR on raw
    # faces: 200 × 20 images 0.56, 100 × 80 0.64, 200 × 40 0.72, 400 × 20 0.63).
    "n_other_identities": 200,
    "n_other": None,  # images of them; None: OTHER_IMAGES_PER_IDENTITY each
}


OTHER_IMAGES_PER_IDENTITY = 40


def load(profile: Profile, seed: int, n_identities: int = 50, n_train: int | None = None,
         n_attack: int | None = None, n_test: int | None = None, n_aux: int | None = None, image_size: int | None = None,
         noise_std: float = 0.02, nuisance: float = 1.0, n_other_identities: int = 200,
         n_other: int | None = None) -> DatasetSplits:
    """Generate the train, attack, test and aux splits: the same identities, independent images;
    and ``n_other`` images of ``n_other_identities`` other people (``other_identities``)."""
    # The renderer imports this module's constants: import it where it is used, not at the top.
    from .synthfaces_render import render_faces

    identities = make_identities(int(n_identities), seed)
    size = int(image_size or profile.image_size)
    attributes = {a.name: a for a in _attributes(int(n_identities))}
    sizes = {"train": n_train if n_train is not None else profile.n_train,
             "attack": n_attack if n_attack is not None else profile.n_attack,
             "test": n_test if n_test is not None else profile.n_test,
             "aux": n_aux if n_aux is not None else profile.n_aux}
    splits = {}
    for split, n in sizes.items():
        generator = _generator(seed, _STREAMS[split])
        factors = sample_factors(int(n), identities, generator, nuisance=float(nuisance))
        # Stored as 8-bit pixels, like the photographs this data set stands in for.
        images = quantize_8bit(render_faces(factors, identities, size, generator,
                                            noise_std=float(noise_std)))
        splits[split] = ImageSet(images, factors.labels, dict(attributes))
    others = None
    if int(n_other_identities) > 0:
        if int(n_other_identities) < 2:
            raise ValueError(f"synthfaces: n_other_identities must be 0 or at least 2, got {n_other_identities}")
        # Drawn from their own streams: the other splits are the same with or without them.
        strangers = make_identities(int(n_other_identities), seed, stream=_STREAMS["other_identities"])
        generator = _generator(seed, _STREAMS["other_images"])
        count = int(n_other if n_other is not None else OTHER_IMAGES_PER_IDENTITY * int(n_other_identities))
        factors = sample_factors(count, strangers, generator, nuisance=float(nuisance))
        images = quantize_8bit(render_faces(factors, strangers, size, generator,
                                            noise_std=float(noise_std)))
        own = Attribute("identity", tuple(f"other{i}" for i in range(int(n_other_identities))),
                        "a person no other split shows")
        others = ImageSet(images, {"identity": factors.labels["identity"]}, {"identity": own})
    return DatasetSplits(train=splits["train"], attack=splits["attack"], test=splits["test"],
                         aux=splits["aux"], other_identities=others)


@hookimpl
def ppbench_register_datasets(register) -> None:
    register(DatasetSpec(
        name=NAME,
        description="Procedural cartoon faces (FERG-like): identities, 7 expressions, 8 binary "
                    "attributes with CelebA-like correlations, pose/lighting/noise nuisance.",
        load=load,
        attributes=_attributes(DEFAULT_PARAMS["n_identities"]),
        tasks=TASKS,
        kind="image",
        params=dict(DEFAULT_PARAMS),
        version="3",
    ))
