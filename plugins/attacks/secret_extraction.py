"""secret-extraction: the key holder's view (Liu, Tan and Garg 2021). The vendor's extractor, which
the sanitizer exposes as its ``secret_decoder`` handle, reads the payload of each sanitized test
image; the harness scores the decoded value of the sensitive attribute like any other guess.

Its threat model is ``key-holder``: nothing a keyless auditor holds. Leaderboards show it in a
column group and a worst case of its own, beside the keyless worst case rather than merged into
it: a sanitizer that passes every keyless check and leaks here is the subverted PP-GAN.

The handle's contract: ``decoder(images, ctx)`` returns a dict from attribute names to one class
index per image, and may hold ``"image"``: a decoded copy of each input, which the attack hands
back as ``AttackResult.reconstructions`` for the harness to score by PSNR and SSIM. The attack
reads the task's sensitive attribute and fails with a clear message when the decoder does not
decode it.
"""

from __future__ import annotations

from ppbench import SECRET_DECODER, Attack, AttackResult, AttackView, Context, Task, hookimpl

NAME = "secret-extraction"


class SecretExtraction(Attack):
    """Decodes the sensitive attribute from each sanitized test image with the vendor's key."""

    name = NAME
    version = "2"
    description = ("The vendor's extractor (secret_decoder) reads the payload hidden in each "
                   "sanitized test image: what the key holder recovers.")
    requires = frozenset({SECRET_DECODER})
    threat_model = "key-holder"

    def run(self, view: AttackView, task: Task, ctx: Context) -> AttackResult:
        import torch

        decoder = view.handles[SECRET_DECODER]
        decoded = decoder(view.test.images, ctx)
        if not isinstance(decoded, dict) or task.sensitive not in decoded:
            got = sorted(decoded) if isinstance(decoded, dict) else type(decoded).__name__
            raise ValueError(f"attack {NAME!r}: the sanitizer's secret_decoder must return a dict "
                             f"with the sensitive attribute {task.sensitive!r}; got {got}")
        values = torch.as_tensor(decoded[task.sensitive]).long().cpu()
        if values.shape != (len(view.test.images),):
            raise ValueError(f"attack {NAME!r}: the decoded {task.sensitive!r} must hold one class "
                             f"index per test image ({len(view.test.images)}), got shape "
                             f"{tuple(values.shape)}")
        rebuilt = decoded.get("image")
        if rebuilt is not None:
            rebuilt = torch.as_tensor(rebuilt).float().cpu()
            if rebuilt.shape != view.test.images.shape:
                raise ValueError(f"attack {NAME!r}: the decoded 'image' must hold one image per test "
                                 f"item, shaped {tuple(view.test.images.shape)}; got {tuple(rebuilt.shape)}")
        # The decoded copy of the input, when the payload holds one: the harness scores it
        # against the raw test images (PSNR, SSIM), which the attack never sees.
        return AttackResult(predictions=values, reconstructions=rebuilt)


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(SecretExtraction)
