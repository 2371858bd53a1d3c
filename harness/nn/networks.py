"""The small network zoo that every built-in plugin composes.

Every classifier here (:class:`SmallCNN`, :class:`ResNet`, :class:`MLP`) has the same shape:
``features(x)`` gives an N×``num_features`` embedding and ``forward`` applies a linear ``head``
to it. With ``num_outputs=0`` the head is the identity, so the network is a trunk that
:class:`MultiHead` can share between several attributes.

Sizes are chosen for small inputs (16×16 to 32×32 on the CPU, 64×64 for the paper's scale): no
stride-2 stem and no max-pool before the residual stages, and adaptive average pooling at the end
(global for the ResNets, to a 4×4 grid for :class:`SmallCNN`), so the same network accepts either
size.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _head(num_features: int, num_outputs: int) -> nn.Module:
    return nn.Linear(num_features, num_outputs) if num_outputs > 0 else nn.Identity()


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """Conv (no bias: BatchNorm's shift replaces it), BatchNorm, ReLU; padding keeps the size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Four 3×3 conv blocks (BatchNorm, ReLU), 2×2 max-pool after the first three, then average
    pooling to a ``grid``×``grid`` map that is flattened, and a linear head. Channels: width,
    2·width, 4·width, 4·width; ``num_features`` = 4·width·grid².

    ``grid=1`` is global average pooling. The default 4 keeps coarse position (on 32×32 inputs the
    last map is 4×4 already; on 64×64 it is 8×8, averaged to 4×4): attributes such as a smile
    are read at a known place in an aligned face, and after a strong blur little else is left.
    Measured on synthfaces, smiling, blur(σ=3), 1,600 training items with early stopping: the
    grid-4 head stops after 11-16 epochs where global pooling needs 18-27, at equal accuracy.

    The default width (32) and the trainer's defaults (:func:`~ppbench.nn.fit_classifier`) are
    chosen by the measurements in :mod:`ppbench.plugins.attacks.adversarial_classifier`: with
    early stopping on 1,600 sanitized 3×32×32 items, width 32 reaches .90 on synthfaces' smile
    under blur(σ=3) and .91 on its seven-class expression; width 16 costs about 40% as much and
    matches it on the smile but reaches only .85 on the expression, width 8 only .76.
    """

    def __init__(self, in_channels: int, num_outputs: int, width: int = 32, grid: int = 4) -> None:
        super().__init__()
        if width < 1 or grid < 1:
            raise ValueError(f"SmallCNN: width and grid must be positive, got {width}, {grid}")
        channels = (width, 2 * width, 4 * width, 4 * width)
        layers: list[nn.Module] = []
        previous = in_channels
        for index, out in enumerate(channels):
            layers.append(conv_bn_relu(previous, out))
            if index < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
            previous = out
        self.body = nn.Sequential(*layers)
        self.grid = grid
        self.num_features = channels[-1] * grid * grid
        self.head = _head(self.num_features, num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.body(x), self.grid).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    """He et al.'s two-conv residual block, with a 1×1 projection when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class ResNet(nn.Module):
    """ResNet with BasicBlocks for small images: a 3×3 stride-1 stem and no max-pool, then four
    stages (width, 2·, 4·, 8·width channels; stride 1, 2, 2, 2), global pooling, a linear head.

    ``blocks=(1, 1, 1, 1)`` is Martinsson et al.'s ResNet-10 (their real/fake discriminator),
    ``(2, 2, 2, 2)`` is ResNet-18 (their secret discriminator). ``width=64`` is He et al.'s;
    smaller widths keep CPU runs short.
    """

    def __init__(self, in_channels: int, num_outputs: int, blocks: Sequence[int] = (1, 1, 1, 1),
                 width: int = 64) -> None:
        super().__init__()
        if len(blocks) == 0 or any(b < 1 for b in blocks):
            raise ValueError(f"ResNet: blocks must be positive counts per stage, got {tuple(blocks)}")
        self.stem = conv_bn_relu(in_channels, width)
        stages: list[nn.Module] = []
        previous = width
        for stage, count in enumerate(blocks):
            out = width * 2**stage
            stride = 1 if stage == 0 else 2
            stage_blocks = [BasicBlock(previous, out, stride)]
            stage_blocks += [BasicBlock(out, out) for _ in range(count - 1)]
            stages.append(nn.Sequential(*stage_blocks))
            previous = out
        self.stages = nn.Sequential(*stages)
        self.num_features = previous
        self.head = _head(self.num_features, num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resnet10(in_channels: int, num_outputs: int, width: int = 64) -> ResNet:
    return ResNet(in_channels, num_outputs, blocks=(1, 1, 1, 1), width=width)


def resnet18(in_channels: int, num_outputs: int, width: int = 64) -> ResNet:
    return ResNet(in_channels, num_outputs, blocks=(2, 2, 2, 2), width=width)


class MLP(nn.Module):
    """Fully connected ReLU network for feature vectors (inputs of any shape are flattened)."""

    def __init__(self, in_features: int, num_outputs: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        previous = in_features
        for size in hidden:
            layers += [nn.Linear(previous, size), nn.ReLU(inplace=True)]
            previous = size
        self.body = nn.Sequential(*layers)
        self.num_features = previous
        self.head = _head(self.num_features, num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class UNet(nn.Module):
    """Martinsson et al.'s filter/generator: a UNet with a sigmoid output.

    Each level is a double 3×3 conv + BatchNorm + ReLU; the encoder max-pools by two between
    levels (``depth`` times), the decoder upsamples by nearest neighbour and concatenates the
    encoder's output at the same resolution (the skip connection). The last block is a single
    1×1 conv followed by a sigmoid, so outputs lie in (0, 1) like the images.

    ``extra_bottleneck_channels`` lets a caller concatenate conditioning maps to the bottleneck
    block's output along the channel dimension (the paper's projected noise and label embedding):
    pass them as ``forward(x, bottleneck_extra)``, shaped N × extra × :meth:`bottleneck_size`.
    """

    def __init__(self, in_channels: int, out_channels: int, base: int = 16, depth: int = 3,
                 extra_bottleneck_channels: int = 0) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"UNet: depth must be at least 1, got {depth}")
        self.depth = depth
        self.extra_bottleneck_channels = extra_bottleneck_channels
        widths = [base * 2**level for level in range(depth + 1)]  # last one is the bottleneck
        self.down = nn.ModuleList()
        previous = in_channels
        for width in widths[:-1]:
            self.down.append(self.double_conv(previous, width))
            previous = width
        self.bottleneck = self.double_conv(previous, widths[-1])
        self.bottleneck_channels = widths[-1]
        self.up = nn.ModuleList()
        previous = widths[-1] + extra_bottleneck_channels
        for width in reversed(widths[:-1]):
            self.up.append(self.double_conv(previous + width, width))
            previous = width
        self.out = nn.Conv2d(previous, out_channels, 1)

    @staticmethod
    def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(conv_bn_relu(in_channels, out_channels),
                             conv_bn_relu(out_channels, out_channels))

    def bottleneck_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size of the bottleneck for an input of ``height``×``width`` (floor division
        by two at each max-pool, as ``nn.MaxPool2d`` does)."""
        for _ in range(self.depth):
            height, width = height // 2, width // 2
        return height, width

    def forward(self, x: torch.Tensor, bottleneck_extra: torch.Tensor | None = None) -> torch.Tensor:
        skips = []
        out = x
        for block in self.down:
            out = block(out)
            skips.append(out)
            out = F.max_pool2d(out, 2)
        out = self.bottleneck(out)
        if self.extra_bottleneck_channels:
            expected = (self.extra_bottleneck_channels, *out.shape[-2:])
            if bottleneck_extra is None or tuple(bottleneck_extra.shape[1:]) != expected:
                got = None if bottleneck_extra is None else tuple(bottleneck_extra.shape[1:])
                raise ValueError(f"UNet: bottleneck_extra must be N×{expected[0]}×{expected[1]}×"
                                 f"{expected[2]}, got {got}")
            out = torch.cat([out, bottleneck_extra], dim=1)
        elif bottleneck_extra is not None:
            raise ValueError("UNet: got bottleneck_extra but was built with "
                             "extra_bottleneck_channels=0")
        for block, skip in zip(self.up, reversed(skips)):
            # Upsample to the skip's exact size, so that sizes not divisible by 2**depth work too.
            out = F.interpolate(out, size=skip.shape[-2:], mode="nearest")
            out = block(torch.cat([out, skip], dim=1))
        return torch.sigmoid(self.out(out))


class MultiHead(nn.Module):
    """One trunk, one linear head per attribute; ``forward`` returns ``{attribute: logits}``.

    The trunk maps inputs to N×F features and must say F as ``num_features`` (every network
    here does when built with ``num_outputs=0``), or pass ``num_features`` explicitly.
    """

    def __init__(self, trunk: nn.Module, head_sizes: Mapping[str, int],
                 num_features: int | None = None) -> None:
        super().__init__()
        if not head_sizes:
            raise ValueError("MultiHead: head_sizes must name at least one attribute")
        if num_features is None:
            num_features = getattr(trunk, "num_features", None)
            if num_features is None:
                raise ValueError("MultiHead: the trunk has no `num_features`; pass num_features=")
        self.trunk = trunk
        self.heads = nn.ModuleDict({name: nn.Linear(num_features, size)
                                    for name, size in head_sizes.items()})

    @property
    def head_sizes(self) -> dict[str, int]:
        return {name: head.out_features for name, head in self.heads.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.trunk(x)
        return {name: head(features) for name, head in self.heads.items()}


CLASSIFIER_KINDS = ("auto", "cnn", "resnet10", "resnet18", "mlp")


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run a block (typically model construction) with torch's global RNG seeded to ``seed``,
    restoring the previous RNG state afterwards so the caller's stream is not disturbed."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed % (2**63 - 1))
        yield


def resolve_kind(kind: str, input_shape: Sequence[int]) -> str:
    """The concrete kind ``build_classifier`` builds: ``"auto"`` is ``"cnn"`` for C×H×W images
    and ``"mlp"`` for vectors."""
    if kind not in CLASSIFIER_KINDS:
        raise ValueError(f"unknown classifier kind {kind!r}; choose one of {CLASSIFIER_KINDS}")
    if kind == "auto":
        return "cnn" if len(tuple(input_shape)) == 3 else "mlp"
    return kind


def default_width(kind: str, input_shape: Sequence[int]) -> int:
    """The width ``build_classifier`` uses when none is given (the MLP's hidden size)."""
    concrete = resolve_kind(kind, input_shape)
    if concrete == "cnn":
        return int(inspect.signature(SmallCNN).parameters["width"].default)
    if concrete == "mlp":
        return 64
    return int(inspect.signature(ResNet).parameters["width"].default)


def build_classifier(kind: str, input_shape: Sequence[int], num_outputs: int | Mapping[str, int],
                     *, width: int | None = None, seed: int | None = None) -> nn.Module:
    """A classifier for items of ``input_shape`` (C×H×W images or D vectors).

    ``kind``: ``"auto"`` (SmallCNN for images, MLP for vectors), ``"cnn"``, ``"resnet10"``,
    ``"resnet18"`` or ``"mlp"``. ``num_outputs``: a class count (the model returns logits) or
    ``{attribute: class count}`` (a :class:`MultiHead` returning a dict of logits). ``width``
    overrides the network's default width (hidden size for the MLP). ``seed`` makes the
    initialisation reproducible without touching the global RNG.
    """
    shape = tuple(int(s) for s in input_shape)
    is_image = len(shape) == 3
    kind = resolve_kind(kind, shape)
    if kind != "mlp" and not is_image:
        raise ValueError(f"classifier kind {kind!r} needs C×H×W images, got items of shape {shape}")
    multi = isinstance(num_outputs, Mapping)
    trunk_outputs = 0 if multi else int(num_outputs)
    with seeded(seed):
        model: nn.Module
        if kind == "cnn":
            model = SmallCNN(shape[0], trunk_outputs, **({} if width is None else {"width": width}))
        elif kind in ("resnet10", "resnet18"):
            blocks = (1, 1, 1, 1) if kind == "resnet10" else (2, 2, 2, 2)
            model = ResNet(shape[0], trunk_outputs, blocks=blocks,
                           **({} if width is None else {"width": width}))
        else:
            in_features = 1
            for size in shape:
                in_features *= size
            size = default_width("mlp", shape) if width is None else width
            hidden = (size, size)
            model = MLP(in_features, trunk_outputs, hidden=hidden)
        if multi:
            model = MultiHead(model, dict(num_outputs))
    return model
