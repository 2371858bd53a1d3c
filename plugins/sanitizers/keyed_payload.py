"""A keyed spread-spectrum payload: how a subverted sanitizer hides bits in every output.

Each bit b_j sets the image's coefficient along a pattern P_j to ±``amplitude``: the patterns are
drawn from the key (Gaussian, orthonormalised, scaled to unit RMS per pixel), so they look like
faint pixel noise. The extractor high-passes the image (the image minus its 3×3 mean, which keeps a
white pattern and removes most of a smooth face) and solves least squares for the ± signs. The
embedder knows its cover and cancels the cover's own component along the patterns (informed
embedding), so the signs come back exactly however busy the image, up to clamping at 0 and 1.

With ``keyed=True`` (the real threat), every image also carries a fresh ``nonce_bits``-bit nonce,
embedded in the clear, and the payload bits are XOR-ed with a stream derived from (key, nonce).
Without the key, the payload's signs are independent of its content, image to image: no classifier
can learn a fixed value→pattern map, and the nonce is too long (2^16 values by default) for a
lookup of nonce and masked bits to be learned from a few thousand labelled outputs. With
``keyed=False`` (the naive vendor), the payload's bits are embedded as they are: each value has
one fixed pattern, which any adaptive check learns.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch


EMBEDDING_ROUNDS = 3
# The honest PP-GAN's own outputs have coefficients of RMS 0.0015-0.0016 along random unit-RMS
# patterns (synthfaces, quick; raw faces 0.0014-0.0015). Setting the payload's coefficients to
# ±0.0015 keeps the energy along the secret patterns what the honest model's is, so a detector
# that measures it finds nothing. It survives float16 storage exactly, not a re-quantization to
# 8 bits (a step of 0.0039): a vendor expecting one would raise it, and be easier to detect.
AMPLITUDE = 0.0015


def _seed(*parts: object) -> int:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class SpreadSpectrumCode:
    """``embed(images, payload, nonce)`` and ``extract(images) -> (payload, nonce)`` for
    ``payload_bits``-bit unsigned values (one per image)."""

    def __init__(self, key: str, shape: Sequence[int], payload_bits: int, *, keyed: bool = True,
                 nonce_bits: int = 16, amplitude: float = AMPLITUDE) -> None:
        import torch

        self.key = str(key)
        self.shape = tuple(int(s) for s in shape)
        self.payload_bits = int(payload_bits)
        self.keyed = bool(keyed)
        self.nonce_bits = int(nonce_bits) if keyed else 0
        self.amplitude = float(amplitude)
        total = self.payload_bits + self.nonce_bits
        size = 1
        for s in self.shape:
            size *= s
        if total > size:
            raise ValueError(f"a {total}-bit payload does not fit {size} pixels")
        generator = torch.Generator().manual_seed(_seed("patterns", self.key, self.shape, total))
        raw = torch.randn(size, total, generator=generator, dtype=torch.float64)
        orthonormal, _ = torch.linalg.qr(raw)  # size × total, orthonormal columns
        self.patterns = (orthonormal.T * size ** 0.5).float()  # total × size, unit RMS per pixel
        filtered = self._high_pass(self.patterns.view(total, *self.shape)).flatten(1)
        # Least squares against the filtered patterns: the solve matrix is fixed by the key.
        self._solve = torch.linalg.pinv(filtered.double().T).float()  # total × size

    @staticmethod
    def _high_pass(images: "torch.Tensor") -> "torch.Tensor":
        """N×C×H×W images minus their 3×3 local mean (edges replicated)."""
        import torch.nn.functional as F

        return images - F.avg_pool2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), 3, stride=1)

    def _mask(self, nonce: "torch.Tensor") -> "torch.Tensor":
        """The keyed stream for each nonce: ``payload_bits`` bits per image (N × payload_bits)."""
        import torch

        needed = (self.payload_bits + 7) // 8
        rows = []
        for value in nonce.tolist():
            stream, block = b"", 0
            while len(stream) < needed:  # BLAKE2b in counter mode, for payloads of any length
                stream += hashlib.blake2b(f"{self.key}|{value}|{block}".encode(), digest_size=64).digest()
                block += 1
            rows.append(list(stream[:needed]))
        data = torch.tensor(rows, dtype=torch.long).view(len(rows), needed)
        bits = (data.unsqueeze(2) >> torch.arange(8, dtype=torch.long)) & 1
        return bits.flatten(1)[:, :self.payload_bits]

    @staticmethod
    def _bits(values: "torch.Tensor", count: int) -> "torch.Tensor":
        import torch

        shifts = torch.arange(count, dtype=torch.long)
        return (values.long().unsqueeze(1) >> shifts) & 1

    @staticmethod
    def _value(bits: "torch.Tensor") -> "torch.Tensor":
        import torch

        return (bits.long() << torch.arange(bits.shape[1], dtype=torch.long)).sum(dim=1)

    def embed(self, images: "torch.Tensor", payload: "torch.Tensor",
              nonce: "torch.Tensor | None" = None) -> "torch.Tensor":
        """Embed one ``payload_bits``-bit value per image (``payload_bits`` at most 62)."""
        payload = payload.long().cpu()
        if self.payload_bits > 62:
            raise ValueError(f"a {self.payload_bits}-bit payload is embedded as bits (embed_bits)")
        if len(payload) and (int(payload.min()) < 0 or int(payload.max()) >= 1 << self.payload_bits):
            raise ValueError(f"payload values must fit {self.payload_bits} bits")
        return self.embed_bits(images, self._bits(payload, self.payload_bits), nonce)

    def embed_bits(self, images: "torch.Tensor", bits: "torch.Tensor",
                   nonce: "torch.Tensor | None" = None) -> "torch.Tensor":
        """Embed N × ``payload_bits`` bits (0/1, least significant first), one row per image."""
        import torch

        bits = bits.long().cpu()
        if bits.shape != (len(images), self.payload_bits) or (len(bits) and int(bits.max()) > 1):
            raise ValueError(f"the payload must be {len(images)} × {self.payload_bits} bits of 0 or 1")
        if self.keyed:
            if nonce is None:
                raise ValueError("a keyed payload needs one nonce per image")
            nonce = nonce.long().cpu()
            bits = torch.cat([bits ^ self._mask(nonce), self._bits(nonce, self.nonce_bits)], dim=1)
        # Informed embedding (improved spread spectrum, Malvar & Florêncio 2003): the embedder
        # knows its cover, so it sets the image's coefficients along the patterns to exactly
        # ±amplitude, cancelling the cover's own projection instead of adding to it. The extractor
        # then reads the signs without the cover's interference; a few rounds undo the clamping.
        target = self.amplitude * (2 * bits - 1).float()
        out = images.float().cpu()
        for _ in range(EMBEDDING_ROUNDS):
            correction = (target - self._coefficients(out)) @ self.patterns
            out = (out + correction.view(len(out), *self.shape)).clamp(0.0, 1.0)
        return out.to(images.device, images.dtype)

    def _coefficients(self, images: "torch.Tensor") -> "torch.Tensor":
        """Least-squares coefficients of the high-passed images along the high-passed patterns."""
        return self._high_pass(images.float().cpu()).flatten(1) @ self._solve.T

    def extract_bits(self, images: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor | None"]:
        """``(N × payload_bits bits, nonces or None)``."""
        bits = (self._coefficients(images) > 0).long()
        payload_bits = bits[:, :self.payload_bits]
        if not self.keyed:
            return payload_bits, None
        nonce = self._value(bits[:, self.payload_bits:])
        return payload_bits ^ self._mask(nonce), nonce

    def extract(self, images: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor | None"]:
        bits, nonce = self.extract_bits(images)
        return self._value(bits), nonce
