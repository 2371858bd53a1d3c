"""residual-probe: keyless steganalysis. Fixed high-pass residuals of the sanitized images
(a small set of the SRM's filters, Fridrich & Kodovský 2012), then a linear classifier of the
sensitive attribute trained on them, as the linear probe trains on pixels.

A payload added to an image at low amplitude hides under the image's content, which a pixel
classifier sees first; the residual filters remove most of that content (smooth regions go to
zero) and keep the fine pattern. A linear classifier on full-resolution residuals is the matched
detector of a fixed additive pattern: if each value of the secret has one pattern (a naive
vendor), it learns them. A payload masked with a keyed stream and a fresh nonce per image has no
such pattern, and the probe does no better than on the honest model. The classifier, its
regularisation path and convergence are :mod:`ppbench.plugins.attacks.linear_probe`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ppbench import hookimpl

from .linear_probe import DEFAULT_CS, LinearProbe

if TYPE_CHECKING:
    import torch

NAME = "residual-probe"

# First- and second-order differences (horizontal and vertical), the 3×3 "KB" and the 5×5 "KV"
# kernels of the spatial rich model, each normalised by its central coefficient's magnitude.
_SRM_KERNELS: dict[str, list[list[float]]] = {
    "first-h": [[0, 0, 0], [0, -1, 1], [0, 0, 0]],
    "first-v": [[0, 0, 0], [0, -1, 0], [0, 1, 0]],
    "second-h": [[0, 0, 0], [1, -2, 1], [0, 0, 0]],
    "second-v": [[0, 1, 0], [0, -2, 0], [0, 1, 0]],
    "kb": [[-1, 2, -1], [2, -4, 2], [-1, 2, -1]],
    "kv": [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2], [2, -6, 8, -6, 2],
           [-1, 2, -2, 2, -1]],
}
KERNELS = tuple(_SRM_KERNELS)


def srm_residuals(images: "torch.Tensor", kernels: Sequence[str] = KERNELS) -> "torch.Tensor":
    """N×C×H×W images → N×(C·len(kernels))×H×W residuals (each channel filtered separately,
    edges replicated)."""
    import torch
    import torch.nn.functional as F

    size = 5
    weights = []
    for name in kernels:
        kernel = torch.tensor(_SRM_KERNELS[name], dtype=torch.float32)
        kernel = kernel / kernel.abs().max()
        pad = (size - kernel.shape[0]) // 2
        weights.append(F.pad(kernel, (pad, pad, pad, pad)))
    bank = torch.stack(weights).unsqueeze(1).to(images.device)  # F×1×5×5
    channels = images.shape[1]
    padded = F.pad(images.float(), (2, 2, 2, 2), mode="replicate")
    per_channel = padded.reshape(-1, 1, *padded.shape[-2:])
    out = F.conv2d(per_channel, bank)
    return out.reshape(len(images), channels * len(kernels), *out.shape[-2:])


class ResidualProbe(LinearProbe):
    """L2-regularised logistic regression on the standardized SRM residuals (``kernels``) of the
    sanitized attack split with the true sensitive label; C chosen from ``Cs`` on a
    ``validation`` fraction, fitted to convergence. Images only."""

    name = NAME
    # 2: fitted by linear-probe v3's solver (torch, on the run's device; the same optimum).
    version = "2"
    description = ("Keyless steganalysis: logistic regression on fixed high-pass (SRM) residuals "
                   "of sanitized train images with the true sensitive label.")
    threat_model = "sanitized-labelled"
    # Against a release it trains on the released set and predicts real people (ppbench.release).
    applies_to = frozenset({"transform", "release"})

    def __init__(self, kernels: Sequence[str] = KERNELS, Cs: Sequence[float] = DEFAULT_CS,
                 validation: float = 0.2, max_iter: int = 20000, tol: float = 1e-5) -> None:
        super().__init__(pool=1, Cs=Cs, validation=validation, max_iter=max_iter, tol=tol)
        names = list(kernels) if isinstance(kernels, (list, tuple)) else None
        if not names or any(name not in _SRM_KERNELS for name in names):
            raise ValueError(f"attack {NAME!r}: parameter 'kernels' must be a non-empty list of "
                             f"{', '.join(KERNELS)}; got {kernels!r}")
        self.kernels = kernels

    def _features(self, images: "torch.Tensor", device: "torch.device") -> "torch.Tensor":
        import torch

        if images.dim() != 4:
            raise ValueError(f"attack {NAME!r} reads image residuals; got items of shape "
                             f"{tuple(images.shape[1:])}")
        residuals = srm_residuals(images.to(device), self.kernels)
        return residuals.reshape(len(images), -1).to(torch.float64)


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(ResidualProbe)
