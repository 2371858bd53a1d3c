"""ppgan-subverted: Liu, Tan and Garg's subverted PP-GAN (AAAI 2021) on top of ``ppgan``.

The vendor ships the honest model's outputs with a payload in every one: the source identity, as
the vendor's own identity classifier reads it from the input (a classifier trained at fit time on
the train split, which the vendor holds with its labels).

How the payload is embedded, and why: a fixed keyed spread-spectrum code applied after the
decoder (:mod:`ppbench.plugins.sanitizers.keyed_payload`), not steganographic layers trained
jointly with an extractor as Liu et al. describe. What the benchmark must reproduce is the threat
(outputs that pass every keyless check while the key holder reads the secret), and the fixed code
makes both sides exact and cheap: the honest model's outputs are left as they are up to a faint
keyed pattern, so a keyless attack can only do as well as on the honest model, and the extractor
needs no training. A learned embedding would have to be trained to the same standard, and how
well it hides would depend on that training rather than on the key.

- ``keyed=True`` (default, the real threat): bits masked by a keyed stream and a per-image nonce.
- ``keyed=False``: the naive embedding, a fixed pattern per identity; an adaptive check learns it.
- ``key``: the vendor's secret; ``amplitude``: each bit's coefficient along its unit-RMS pattern
  (the default matches the honest model's own spread along random patterns: see keyed_payload).

- ``payload="image"``: the source identity and a compact code of the whole input (32 principal
  components of the train images at 5 bits each, :mod:`ppbench.plugins.sanitizers.image_code`):
  183 payload bits instead of 3, each along its own pattern at the same amplitude.

Capability ``secret_decoder``: the vendor's extractor, which holds the key.
``decoder(images, ctx)`` returns ``{sensitive attribute: class indices}``, one per image, and with
``payload="image"`` also ``{"image": N×C×H×W decoded inputs}``.
The model declares ``honest_reference = "ppgan"``: the same family without a payload.
"""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Any

from ppbench import DISCRIMINATOR, GENERATOR, SECRET_DECODER, Context, Sanitized, hookimpl

from .image_code import PCAImageCode
from .keyed_payload import AMPLITUDE, SpreadSpectrumCode
from .ppgan import PPGAN

if TYPE_CHECKING:
    import torch

NONCE_STREAM = 4099  # the transform's stream for per-image nonces
NONCE_BITS = 16
READER_WIDTH = 64
READER_PATIENCE = 10
PAYLOADS = ("identity", "image")
# payload=image: 32 principal components at 5 bits each (image_code: 28.5 dB on synthfaces).
IMAGE_COMPONENTS = 32
IMAGE_BITS = 5


class SubvertedPPGAN(PPGAN):
    """``ppgan`` with the source identity hidden in every output, readable with the vendor's key
    (Liu, Tan and Garg 2021)."""

    name = "ppgan-subverted"
    version = "2"
    description = __doc__
    capabilities = frozenset({GENERATOR, DISCRIMINATOR, SECRET_DECODER})
    honest_reference = "ppgan"

    def __init__(self, payload: str = "identity", keyed: bool = True, key: str = "vendor-secret",
                 amplitude: float = AMPLITUDE, **ppgan_params: Any) -> None:
        unknown = sorted(set(ppgan_params) - set(PPGAN.param_defaults()))
        if unknown:
            raise ValueError(f"{self.name} has no parameter {', '.join(unknown)}; its parameters: "
                             f"{', '.join(self.param_defaults())}")
        super().__init__(**ppgan_params)
        if payload not in PAYLOADS:
            raise ValueError(f"{self.name}: payload must be one of {', '.join(PAYLOADS)}, got {payload!r}")
        if not isinstance(keyed, bool):
            raise ValueError(f"{self.name}: keyed must be true or false, got {keyed!r}")
        if not isinstance(key, str) or not key:
            raise ValueError(f"{self.name}: key must be a non-empty string, got {key!r}")
        if not isinstance(amplitude, Real) or isinstance(amplitude, bool) or not amplitude > 0:
            raise ValueError(f"{self.name}: amplitude must be a positive number, got {amplitude!r}")
        self.payload = payload
        self.keyed = keyed
        self.key = key
        self.amplitude = amplitude

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        # The honest model's parameters are this one's too (passed through **ppgan_params).
        return {**PPGAN.param_defaults(), **super().param_defaults()}

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_defaults()}

    def fit(self, train: Any, task: Any, ctx: Context) -> "SubvertedPPGAN":
        from ppbench.nn import build_classifier, fit_classifier

        super().fit(train, task, ctx)
        self.sensitive = task.sensitive
        # The vendor's own reader of the secret: a classifier of the source identity on raw inputs,
        # wider and more patient than the audit's (measured on synthfaces, 6 identities, quick, two
        # seeds: width 32 with patience 3 reads 0.985-0.992 of the test items; width 64 with
        # patience 10, 0.990-0.996). What the key holder recovers is what this reader reads.
        def train_reader() -> Any:
            model = build_classifier("cnn", tuple(train.images.shape[1:]), self.num_classes,
                                     width=READER_WIDTH, seed=ctx.seed)
            return fit_classifier(model, train.images, train.labels[task.sensitive], ctx,
                                  patience=READER_PATIENCE, max_epochs=2 * ctx.profile.max_epochs,
                                  desc=f"{self.name}: vendor's identity reader").model.eval().cpu()

        # One reader per fit seed, whatever the payload options: the variants of a board differ
        # in how they hide the secret, not in what they read.
        self.source_reader = ctx.shared("ppgan-subverted-reader", train_reader, sensitive=task.sensitive,
                                        width=READER_WIDTH, patience=READER_PATIENCE, fit_seed=ctx.seed)
        self.identity_bits = max(1, (self.num_classes - 1).bit_length())
        self.image_code = (PCAImageCode(train.images, IMAGE_COMPONENTS, IMAGE_BITS)
                           if self.payload == "image" else None)
        payload_bits = self.identity_bits + (self.image_code.size if self.image_code else 0)
        self.code = SpreadSpectrumCode(self.key, train.images.shape[1:], payload_bits,
                                       keyed=self.keyed, nonce_bits=NONCE_BITS, amplitude=self.amplitude)
        return self

    def _nonces(self, ctx: Context) -> "torch.Generator":
        if getattr(self, "_nonce_seed", None) != ctx.seed:
            self._nonce_seed = ctx.seed
            self._nonce_generator = ctx.generator(stream=NONCE_STREAM)
        return self._nonce_generator

    def transform(self, images: "torch.Tensor", ctx: Context) -> "torch.Tensor | Sanitized":
        import torch

        from ppbench.nn import predict_logits

        honest = super().transform(images, ctx)
        source = predict_logits(self.source_reader, images, ctx).argmax(dim=1)
        nonce = torch.randint(0, 2 ** NONCE_BITS, (len(images),), generator=self._nonces(ctx))
        bits = SpreadSpectrumCode._bits(source, self.identity_bits)
        if self.image_code is not None:
            bits = torch.cat([bits, self.image_code.encode(images)], dim=1)
        stamped = self.code.embed_bits(honest.images, bits, nonce if self.keyed else None)
        return Sanitized(stamped, dict(honest.records))

    def handles(self) -> dict[str, Any]:
        return {**super().handles(), SECRET_DECODER: SecretDecoder(
            self.code, self.sensitive, self.num_classes, self.identity_bits, self.image_code)}


class SecretDecoder:
    """The vendor's extractor: ``decoder(images, ctx) -> {attribute: class indices}``, plus
    ``{"image": the decoded copy of each input}`` when the payload holds one."""

    def __init__(self, code: SpreadSpectrumCode, attribute: str, num_classes: int, identity_bits: int,
                 image_code: PCAImageCode | None = None) -> None:
        self.code = code
        self.attribute = attribute
        self.num_classes = num_classes
        self.identity_bits = identity_bits
        self.image_code = image_code

    def __call__(self, images: "torch.Tensor", ctx: Context) -> dict[str, "torch.Tensor"]:
        bits, _ = self.code.extract_bits(images)
        identity = SpreadSpectrumCode._value(bits[:, :self.identity_bits])
        # A corrupted read may name a class that does not exist: clip it into range.
        decoded = {self.attribute: identity.clamp(max=self.num_classes - 1)}
        if self.image_code is not None:
            decoded["image"] = self.image_code.decode(bits[:, self.identity_bits:])
        return decoded


@hookimpl
def ppbench_register_sanitizers(register) -> None:
    register(SubvertedPPGAN)
