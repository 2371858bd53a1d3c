"""The synthfaces renderer: every face part is an implicit shape (an approximate signed distance)
on a coordinate grid, turned into coverage by a sigmoid one pixel wide (anti-aliasing), and
composited back to front. Images are rendered in chunks so that memory stays bounded at any N.

The attribute model, the identities and the data set itself live in
:mod:`ppbench.plugins.datasets.synthfaces`; this module only draws what they decided.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .synthfaces import (_BLUSH, _EXPRESSION_SHAPES, _GREY_HAIR, _MOUTH_SKEW, _RENDER_CHUNK_PIXELS,
                         BINARY_ATTRIBUTES, EXPRESSIONS, HAIR_STYLES, NOSE_STYLES, Factors,
                         IdentityTraits)

if TYPE_CHECKING:
    import torch


# --- shapes ------------------------------------------------------------------------------------


def _ellipse(x: "torch.Tensor", y: "torch.Tensor", rx: Any, ry: Any) -> "torch.Tensor":
    """Approximate signed distance to an axis-aligned ellipse centred at the origin (Quilez's
    first-order estimate: exact on the boundary, good enough for one-pixel soft edges)."""
    import torch

    k0 = torch.sqrt((x / rx) ** 2 + (y / ry) ** 2)
    k1 = torch.sqrt((x / rx**2) ** 2 + (y / ry**2) ** 2).clamp_min(1e-6)
    return k0 * (k0 - 1.0) / k1


def _segment(x: "torch.Tensor", y: "torch.Tensor", ax: Any, ay: Any, bx: Any, by: Any) -> "torch.Tensor":
    """Distance to the segment from (ax, ay) to (bx, by)."""
    import torch

    px, py = x - ax, y - ay
    dx, dy = bx - ax, by - ay
    h = ((px * dx + py * dy) / (dx * dx + dy * dy + 1e-9)).clamp(0.0, 1.0)
    return torch.sqrt((px - h * dx) ** 2 + (py - h * dy) ** 2)


def _rotate(x: "torch.Tensor", y: "torch.Tensor", angle: Any) -> tuple["torch.Tensor", "torch.Tensor"]:
    import torch

    c, s = torch.cos(torch.as_tensor(angle)), torch.sin(torch.as_tensor(angle))
    return c * x + s * y, -s * x + c * y


class _Canvas:
    """Composites soft shapes onto a batch of images.

    Shapes are given as signed distances in the face's own frame (origin at the face's centre,
    y pointing down, the face about 2 units wide), so that pose and scale are applied once to the
    coordinates rather than to every shape; ``pixel`` says how wide a pixel is in that frame.
    """

    def __init__(self, pixel: "torch.Tensor", background: "torch.Tensor") -> None:
        self.pixel = pixel  # N×1×1: one pixel's width in face units
        self.softness = 0.5 * pixel
        self.image = background

    def coverage(self, sdf: "torch.Tensor") -> "torch.Tensor":
        import torch

        return torch.sigmoid(-sdf / self.softness)

    def stroke(self, distance: "torch.Tensor", width: Any) -> "torch.Tensor":
        """Coverage of a line of the given width around a centre line; a line thinner than a pixel
        is drawn one pixel wide and proportionally fainter, which is what its area would give."""
        import torch

        width = torch.as_tensor(width, dtype=distance.dtype)
        drawn = torch.maximum(width, self.pixel)
        return self.coverage(distance - 0.5 * drawn) * (width / drawn)

    def paint(self, alpha: "torch.Tensor", colour: "torch.Tensor") -> None:
        """Blend ``colour`` (N×3 or N×3×H×W) over the image where ``alpha`` (N×H×W) is nonzero."""
        if colour.dim() == 2:
            colour = colour[:, :, None, None]
        self.image.lerp_(colour.expand_as(self.image), alpha[:, None])


def _column(values: "torch.Tensor") -> "torch.Tensor":
    """Per-image scalars shaped to broadcast over N×H×W."""
    return values[:, None, None]


def _render_chunk(factors: Factors, identities: IdentityTraits, size: int,
                  noise_std: float, generator: "torch.Generator") -> "torch.Tensor":
    import torch

    labels, nz = factors.labels, factors.nuisance
    n = len(factors)
    ident = labels["identity"]
    expr = labels["expression"]
    on = {name: _column(labels[name].float()) for name in BINARY_ATTRIBUTES}

    # Pixel centres in [-1, 1]², then each image's face frame: one face unit is 0.66 image
    # half-widths (times the image's scale), the face centred a little low to leave room for hair.
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    scale = _column(0.66 * nz["scale"])
    dx = px[None] - _column(nz["shift"][:, 0])
    dy = py[None] - _column(0.06 + nz["shift"][:, 1])
    x, y = _rotate(dx, dy, _column(nz["angle"]))
    x, y = x / scale, y / scale
    pixel = (2.0 / size) / scale

    # Background: a linear gradient between two colours.
    direction = torch.stack([nz["background_angle"].cos(), nz["background_angle"].sin()], 1)
    t = (px[None] * _column(direction[:, 0]) + py[None] * _column(direction[:, 1])).clamp(-1, 1)
    t = 0.5 * (t + 1)
    background = (nz["background_a"][:, :, None, None] * (1 - t[:, None])
                  + nz["background_b"][:, :, None, None] * t[:, None])
    canvas = _Canvas(pixel, background)

    young = on["young"]
    rx = _column(identities.face_width[ident])
    ry = _column(identities.face_height[ident])
    # Older faces: duller, slightly darker skin; greyer hair (and brows).
    skin = identities.skin[ident]
    skin_grey = skin.mean(1, keepdim=True).expand(-1, 3)
    age = labels["young"].float()[:, None]
    skin = (1 - age) * (0.82 * skin + 0.12 * skin_grey) + age * (skin * 1.03 + 0.01)
    skin = skin.clamp(0, 1)
    shade = skin * torch.tensor([0.78, 0.66, 0.62])
    hair = identities.hair_colour[ident]
    hair = age * hair + (1 - age) * (0.45 * hair + 0.55 * torch.tensor(_GREY_HAIR))
    brow_colour = hair * 0.7
    style = identities.hair_style[ident]

    def is_style(name: str) -> "torch.Tensor":
        return _column((style == HAIR_STYLES.index(name)).float())

    # Shoulders and neck.
    canvas.paint(canvas.coverage(_ellipse(x, y - 1.95, 1.45, 0.75)), nz["shirt"])
    neck = torch.maximum(x.abs() - 0.36 * rx, (y - 1.35).abs() - 0.6)
    canvas.paint(canvas.coverage(neck), shade * 0.95 + 0.05 * skin)

    # Hair behind the head.
    back_long = torch.minimum(_ellipse(x, y + 0.1, rx * 1.24, ry * 1.12),
                              torch.maximum(x.abs() - rx * 1.24, (y - 0.7).abs() - 0.8))
    back_bob = torch.maximum(_ellipse(x, y + 0.1, rx * 1.22, ry * 1.12), y - 0.55)
    angle = torch.atan2(y + 0.35, x)
    curl_radius = 1.0 + 0.07 * torch.sin(11 * angle)
    back_curly = _ellipse(x, y + 0.35, rx * 1.3 * curl_radius, ry * 1.12 * curl_radius)
    tail = _ellipse(*_rotate(x - rx * 1.02, y + 0.05, -0.35), 0.2, 0.62)
    bun = _ellipse(x, y + ry + 0.12, 0.34, 0.30)
    back = torch.stack([back_long, back_bob, back_curly, tail, bun])
    back_alpha = (canvas.coverage(back) * torch.stack([is_style(s) for s in
                                                      ("long", "bangs", "curly", "ponytail", "bun")])).amax(0)
    canvas.paint(back_alpha, hair * 0.85)

    # Ears, then the face: an ellipse above the eyes' line, a superellipse below it (square jaw
    # for the male identities, a rounded chin otherwise).
    ear = _column(identities.ear_size[ident])
    ear_sdf = torch.minimum(_ellipse(x - rx * 0.97, y + 0.02, 0.13 * ear, 0.2 * ear),
                            _ellipse(x + rx * 0.97, y + 0.02, 0.13 * ear, 0.2 * ear))
    canvas.paint(canvas.coverage(ear_sdf), shade * 0.5 + skin * 0.5)
    power = _column(identities.jaw_squareness[ident])
    lower = (x / rx).abs().clamp_min(1e-6) ** power + (y.clamp_min(0) / ry).abs() ** power
    lower = lower ** (1 / power)
    upper = torch.sqrt((x / rx) ** 2 + (y.clamp_max(0) / ry) ** 2)
    face_level = torch.where(y > 0, lower, upper)
    face_sdf = (face_level - 1) * torch.minimum(rx, ry)
    face = canvas.coverage(face_sdf)
    canvas.paint(face, skin)

    # Beard: stubble is a faint tint of the lower face, a full beard an opaque one.
    beard = _column(identities.beard[ident].float())
    mouth_y = 0.50
    beard_region = face * canvas.coverage(_ellipse(x, y - 0.95, rx * 1.1, 0.62))
    beard_alpha = beard_region * torch.where(beard > 1.5, 0.95, torch.where(beard > 0.5, 0.4, 0.0))
    beard_colour = torch.where(identities.beard[ident][:, None] > 1, hair * 0.8, 0.3 * hair + 0.06)
    canvas.paint(beard_alpha, beard_colour)

    # Age lines and cheek blush.
    old = 1 - young
    eye_y = -0.12
    spacing = _column(identities.eye_spacing[ident])
    forehead = torch.minimum((y + 0.62 - 0.08 * (x / rx) ** 2).abs(), (y + 0.50 - 0.08 * (x / rx) ** 2).abs())
    forehead = torch.maximum(forehead, (x.abs() - 0.45 * rx).clamp_min(0))
    smile_lines = torch.minimum(_segment(x, y, 0.2, 0.25, 0.36, 0.52), _segment(x, y, -0.2, 0.25, -0.36, 0.52))
    bags = torch.minimum(_segment(x, y, spacing - 0.1, eye_y + 0.17, spacing + 0.1, eye_y + 0.17),
                         _segment(x, y, -spacing - 0.1, eye_y + 0.17, -spacing + 0.1, eye_y + 0.17))
    lines = torch.minimum(torch.minimum(forehead, smile_lines), bags)
    canvas.paint(canvas.stroke(lines, 0.035) * old * face * 0.8, shade * 0.85)
    cheek = torch.minimum(_ellipse(x - rx * 0.56, y - 0.22, 0.2, 0.14), _ellipse(x + rx * 0.56, y - 0.22, 0.2, 0.14))
    canvas.paint(torch.sigmoid(-cheek / 0.06) * on["high_cheekbones"] * 0.7, torch.tensor(_BLUSH).expand(n, 3))

    # Face markings: freckles (dots scattered across the nose and cheeks: one per cell of a
    # staggered lattice, each moved, sized or left out by a hash of its cell) or a single mole.
    marking = identities.marking[ident]
    cell = 0.12
    column = torch.floor(x / cell)
    v = y / cell + 0.5 * column
    row = torch.floor(v)
    # Cheap hashes in [0, 1): fractional parts of irrational multiples (an R2 sequence).
    hash_a = torch.frac(column * 0.7548777 + row * 0.5698403 + 100.0)
    hash_b = torch.frac(column * 0.4301597 + row * 0.8864911 + 100.0)
    dots = torch.sqrt((x / cell - column - 0.2 - 0.6 * hash_a) ** 2 + (v - row - 0.2 - 0.6 * hash_b) ** 2)
    dots = dots * cell - 0.022 - 0.016 * hash_b + 0.1 * (hash_a > 0.8)
    band = _ellipse(x, y - 0.1, rx * 0.64, 0.13)
    freckles = canvas.coverage(torch.maximum(dots, band)) * _column((marking == 1).float())
    mole_at = identities.mole[ident]
    mole = canvas.coverage(_ellipse(x - _column(mole_at[:, 0]), y - _column(mole_at[:, 1]), 0.05, 0.05))
    mole = mole * _column((marking == 2).float())
    canvas.paint(freckles * 0.75 + mole * 0.95, shade * 0.55 + torch.tensor([0.06, 0.02, 0.0]))

    # Nose.
    nose_size = _column(identities.nose_size[ident])
    nose_style = identities.nose_style[ident]
    nose_shapes = torch.stack([
        _ellipse(x, y - 0.22, 0.07 * nose_size, 0.06 * nose_size),
        _segment(x, y, 0.0, 0.0, 0.05 * nose_size, 0.25) - 0.035,
        _ellipse(x, y - 0.23, 0.14 * nose_size, 0.06 * nose_size),
        torch.minimum(_segment(x, y, 0.0, 0.02, 0.1 * nose_size, 0.24), _segment(x, y, 0.1 * nose_size, 0.24, -0.03, 0.26)) - 0.028,
    ])
    nose_pick = torch.nn.functional.one_hot(nose_style, len(NOSE_STYLES)).T.float()[:, :, None, None]
    nose_sdf = (nose_shapes * nose_pick).sum(0)
    canvas.paint(canvas.coverage(nose_sdf) * 0.9, shade)

    # Eyes: shadow (heavy makeup), a dark outline (thicker with makeup), the white, iris, pupil.
    shape = torch.tensor(_EXPRESSION_SHAPES)[expr]
    intensity = nz["expression_intensity"]
    brow_raise = _column(shape[:, 0] * intensity)
    brow_tilt = _column(shape[:, 1] * intensity)
    openness = _column(1 + (shape[:, 2] - 1) * intensity)
    eye_rx = _column(identities.eye_size[ident])
    eye_ry = eye_rx * 0.78 * openness
    makeup = on["heavy_makeup"]
    gaze = nz["gaze"]
    eye_colour = identities.eye_colour[ident]
    for side in (-1.0, 1.0):
        ex = x - side * spacing
        ey = y - eye_y
        canvas.paint(canvas.coverage(_ellipse(ex, ey + 0.05, eye_rx * 1.45, eye_rx * 1.05)) * makeup * 0.85,
                     nz["eyeshadow_colour"])
        eye = _ellipse(ex, ey, eye_rx, eye_ry)
        liner_width = 0.03 + 0.05 * makeup
        canvas.paint(canvas.coverage(eye - liner_width), torch.zeros(n, 3) + 0.08)
        eye_alpha = canvas.coverage(eye)
        canvas.paint(eye_alpha, torch.full((n, 3), 0.97))
        iris = _ellipse(ex - _column(gaze[:, 0]) * eye_rx * 0.35, ey - _column(gaze[:, 1]) * eye_ry * 0.2,
                        eye_rx * 0.58, eye_rx * 0.58)
        canvas.paint(canvas.coverage(iris) * eye_alpha, eye_colour)
        pupil = _ellipse(ex - _column(gaze[:, 0]) * eye_rx * 0.35, ey - _column(gaze[:, 1]) * eye_ry * 0.2,
                         eye_rx * 0.3, eye_rx * 0.3)
        canvas.paint(canvas.coverage(pupil) * eye_alpha, torch.full((n, 3), 0.03))

        # Brows: a thick segment whose inner end moves with the expression's tilt.
        brow_y = eye_y - 0.24 - brow_raise - 0.1 * (openness - 1).clamp_min(0)
        half = 0.17
        inner_x, outer_x = side * (spacing - half), side * (spacing + half)
        brow = _segment(x, y, inner_x, brow_y - brow_tilt * half, outer_x, brow_y + brow_tilt * half * 0.4)
        thickness = _column(identities.brow_thickness[ident])
        canvas.paint(canvas.coverage(brow - thickness * 0.5), brow_colour)

    # Hair in front: a cap over the top of the head down to a style-specific hairline.
    head = _ellipse(x, y + 0.08, rx * 1.09, ry * 1.06)
    ax = (x / rx).abs()
    hairlines = {
        "short": -0.58 + 0.62 * ax**3,
        "bald": torch.full_like(x, -0.05),
        "curly": -0.55 + 0.05 * torch.sin(18 * x) + 0.5 * ax**3,
        "spiky": -0.62 + 0.6 * ax**3,
        "long": -0.64 + 0.28 * ax + 1.6 * (ax - 0.72).clamp_min(0),
        "bangs": -0.36 + 1.4 * (ax - 0.78).clamp_min(0),
        "ponytail": -0.62 + 0.75 * ax**2,
        "bun": -0.62 + 0.75 * ax**2,
    }
    # Spikes: a sawtooth in the angle around the crown, on the top of the head only.
    phase = torch.frac(torch.atan2(y + 0.1, x) * (9 / math.pi) + 100.0)
    spikes = 1.0 + 0.22 * (1 - (2 * phase - 1).abs()) * canvas.coverage(y + 0.45)
    spiky_head = _ellipse(x, y + 0.08, rx * 1.09 * spikes, ry * 1.06 * spikes)
    front = []
    for name in HAIR_STYLES:
        region = torch.maximum(spiky_head if name == "spiky" else head, y - hairlines[name])
        if name == "bald":
            # A horseshoe at the sides only; the crown shows skin.
            region = torch.maximum(region, torch.maximum(0.74 - ax, -(y + 0.5)))
        front.append(canvas.coverage(region) * is_style(name))
    canvas.paint(torch.stack(front).sum(0).clamp_max(1), hair)

    # Mouth: a curved centre line y = bend·(½ − u²) (bend > 0 turns the corners up: a smile), lips
    # drawn along it, and when open a dark opening between two arcs with the teeth on top.
    smiling = on["smiling"]
    strength = _column(nz["smile_strength"])
    bend = torch.where(smiling > 0.5, 0.12 + 0.12 * strength, _column(shape[:, 3]) * _column(intensity))
    width = 0.34 * _column(1 + (shape[:, 4] - 1) * intensity) * (1 + 0.14 * smiling)
    width = torch.where((smiling > 0.5) & (_column(expr) == EXPRESSIONS.index("surprise")), 0.3, width)
    u = (x / width).clamp(-1.2, 1.2)
    skew = _column(torch.tensor(_MOUTH_SKEW)[expr]) * u
    centre = mouth_y + bend * (0.5 - u**2) - skew
    opening = _column(shape[:, 5]) * (1 + 0.5 * smiling) * on["mouth_open"]
    profile = torch.sqrt((1 - u**2).clamp_min(0))
    # A smile opens downwards from a nearly straight upper lip (a "D"); other mouths open evenly.
    top = centre - opening * profile * (1 - 0.7 * smiling)
    bottom = centre + opening * profile * (1 + 0.6 * smiling)
    lipstick = on["lipstick"]
    wears = labels["lipstick"].float()[:, None]
    lip_colour = wears * nz["lipstick_colour"] + (1 - wears) * skin * torch.tensor([0.85, 0.52, 0.5])
    lip_width = 0.055 + 0.05 * lipstick
    ends = (x.abs() - width).clamp_min(0)
    inside = torch.maximum(torch.maximum(top - y, y - bottom), x.abs() - width)
    lips = torch.sqrt(ends**2 + torch.maximum(torch.maximum(top - y, y - bottom), torch.zeros_like(y)) ** 2)
    canvas.paint(canvas.stroke(lips, lip_width * 2) * 0.95, lip_colour)
    open_alpha = canvas.coverage(inside + 0.01) * on["mouth_open"]
    canvas.paint(open_alpha, torch.tensor([0.28, 0.05, 0.06]).expand(n, 3))
    teeth = canvas.coverage(torch.maximum(inside + 0.01, y - top - 0.07)) * on["mouth_open"] * smiling
    canvas.paint(teeth, torch.full((n, 3), 0.96))

    # Glasses: a ring around each eye, a bridge, and temples towards the ears.
    glasses = on["glasses"]
    lens_r = eye_rx.clamp_min(0.15) * 1.55
    frame = torch.minimum(_ellipse(x - spacing, y - eye_y, lens_r * 1.1, lens_r).abs(),
                          _ellipse(x + spacing, y - eye_y, lens_r * 1.1, lens_r).abs())
    inner = spacing - lens_r * 1.1
    frame = torch.minimum(frame, _segment(x, y, -inner, eye_y - 0.03, inner, eye_y - 0.03))
    outer = spacing + lens_r * 1.1
    frame = torch.minimum(frame, _segment(x, y, outer, eye_y - 0.03, rx * 0.98, eye_y - 0.06))
    frame = torch.minimum(frame, _segment(x, y, -outer, eye_y - 0.03, -rx * 0.98, eye_y - 0.06))
    canvas.paint(canvas.stroke(frame, 0.07) * glasses, nz["frame_colour"])

    # Lighting: a linear brightness gradient and an overall exposure, then sensor noise.
    light = (px[None] * _column(nz["light_direction"][:, 0]) + py[None] * _column(nz["light_direction"][:, 1]))
    gain = _column(nz["brightness"]) * (1 + _column(nz["light_strength"]) * light)
    image = canvas.image * gain[:, None]
    if noise_std > 0:
        image = image + noise_std * torch.randn(image.shape, generator=generator)
    return image.clamp(0.0, 1.0)


def render_faces(factors: Factors, identities: IdentityTraits, image_size: int,
                 generator: "torch.Generator", noise_std: float = 0.02) -> "torch.Tensor":
    """Render N×3×S×S float32 images in [0, 1], chunk by chunk."""
    import torch

    chunk = max(16, _RENDER_CHUNK_PIXELS // (image_size * image_size))
    chunks = [
        _render_chunk(factors.subset(slice(start, start + chunk)), identities, image_size,
                      noise_std, generator)
        for start in range(0, len(factors), chunk)
    ]
    if not chunks:
        return torch.zeros(0, 3, image_size, image_size)
    return torch.cat(chunks).float().contiguous()
