"""Open-set re-identification: a face recognizer trained on other people, judged by verification.

The strongest de-identification studies do not ask a closed-set classifier who an image shows:
they ask a **recognizer** whether a sanitized face matches an enrollment photograph (TAR at a
fixed FAR) and which enrolled person it is (rank-1), with people the recognizer never saw in
training. This attack trains such a recognizer on the data set's other identities
(``DatasetSplits.other_identities``) with a large-margin cosine loss (CosFace) on a zoo network
(:mod:`ppbench.nn.embedding`), trained to convergence by the shared loop (early stopping on
held-out images of its own identities), and returns the embeddings of the gallery and of the
sanitized test images; the harness scores them (:mod:`ppbench.verification`).

``train`` and ``gallery`` set the attacker's knowledge, each configuration a threat model of its
own: ``train="raw", gallery="raw"`` is the ignorant attacker (``raw-enrolled``),
``gallery="sanitized"`` the lazy-informed one who sanitizes its own enrollment
(``lazy-enrolled``), ``train="sanitized"`` (with a sanitized gallery) the semi-informed one who
retrains the recognizer on sanitized images (``sanitized-recognizer``). The raw-trained
recognizer does not depend on the sanitizer, so it is trained once per data set and seed and
shared by every cell (``ctx.shared``).
"""

from __future__ import annotations

from typing import Any

from ppbench import Attack, Context, Task, VerificationResult, VerificationView, hookimpl

# (recognizer trained on, gallery) -> the threat model, whose knowledge level boards group by.
LEVELS = {("raw", "raw"): "raw-enrolled", ("raw", "sanitized"): "lazy-enrolled",
          ("sanitized", "sanitized"): "sanitized-recognizer"}


RECOGNIZER_PATIENCE = 5


class ReidVerification(Attack):
    """A CosFace recognizer trained on other identities embeds a gallery of the test identities
    and the sanitized test images (open-set re-identification).

    Parameters: ``train`` and ``gallery`` (``"raw"`` or ``"sanitized"``: the attacker's knowledge
    level, see the module doc), ``embedding_dim`` (the recognizer's feature size), ``margin`` and
    ``scale`` (CosFace's m and s), ``width`` (the SmallCNN trunk's; None: the zoo's default),
    ``max_epochs`` (None: the profile's cap) and ``patience`` (None: 5 epochs): training stops
    when the closed-set accuracy on held-out images of the training identities stops improving
    (the margin loss keeps falling after the features stop getting better: on the quick profile,
    stopping on the loss after 3 epochs gave TAR 0.25 at 1% FAR, on the accuracy after 5 0.38,
    with 2,000 images of 100 people); ``gallery_images`` (enrollment images per test identity).

    Diagnostics: the recognizer's ``recognizer_epochs``, its closed-set ``recognizer_val_accuracy``
    on held-out images of its own identities, ``recognizer_identities`` and ``embedding_dim``.
    """

    name = "reid-verification"
    version = "1"
    description = ("Open-set re-identification: a CosFace recognizer trained on other people "
                   "verifies sanitized faces against a gallery (TAR at 1% FAR, EER, rank-1).")
    kind = "verification"
    threat_model = "raw-enrolled"  # the default configuration's; each instance sets its own

    def __init__(self, train: str = "raw", gallery: str = "raw", embedding_dim: int = 64,
                 margin: float = 0.35, scale: float = 30.0, width: int | None = None,
                 max_epochs: int | None = None, patience: int | None = None,
                 gallery_images: int = 1) -> None:
        if (train, gallery) not in LEVELS:
            raise ValueError(f"reid-verification: train/gallery must be one of "
                             f"{sorted(LEVELS)} (a recognizer retrained on sanitized images "
                             f"enrolls sanitized images), got ({train!r}, {gallery!r})")
        if int(embedding_dim) < 2:
            raise ValueError(f"reid-verification: embedding_dim must be at least 2, got {embedding_dim}")
        if not 0.0 <= float(margin) < 1.0 or float(scale) <= 0:
            raise ValueError(f"reid-verification: margin must lie in [0, 1) and scale be > 0, "
                             f"got {margin} and {scale}")
        self.train = train
        self.gallery = gallery
        self.embedding_dim = embedding_dim
        self.margin = margin
        self.scale = scale
        self.width = width
        self.max_epochs = max_epochs
        self.patience = patience
        self.gallery_images = gallery_images
        self.threat_model = LEVELS[(train, gallery)]

    def _recipe(self) -> dict[str, Any]:
        return {"embedding_dim": int(self.embedding_dim), "margin": float(self.margin),
                "scale": float(self.scale), "width": self.width, "max_epochs": self.max_epochs,
                "patience": self.patience}

    def _train_recognizer(self, view: VerificationView, ctx: Context) -> tuple[Any, dict[str, float]]:
        from ppbench.nn import fit_classifier
        from ppbench.nn.embedding import build_embedder, cosface_loss

        labels = view.train.labels["identity"]
        identities = view.train.attributes["identity"].num_classes
        model = build_embedder(tuple(view.train.images.shape[1:]), identities,
                               embedding_dim=int(self.embedding_dim), width=self.width,
                               scale=float(self.scale), seed=ctx.seed)
        patience = RECOGNIZER_PATIENCE if self.patience is None else int(self.patience)
        fit = fit_classifier(model, view.train.images, labels, ctx, max_epochs=self.max_epochs,
                             patience=patience, monitor="accuracy",
                             loss=cosface_loss(float(self.margin), float(self.scale)),
                             desc="recognizer", measure_train=False)
        return fit.model.cpu(), {"recognizer_epochs": float(fit.epochs),
                                 "recognizer_val_accuracy": float(fit.val_accuracy),
                                 "recognizer_identities": float(identities),
                                 "embedding_dim": float(self.embedding_dim)}

    def run(self, view: VerificationView, task: Task, ctx: Context) -> VerificationResult:
        from ppbench.nn.embedding import embed_images

        if view.holdings[0] == "raw":
            # The same for every sanitizer of this data and seed: trained once, shared.
            model, diagnostics = ctx.shared("reid-recognizer", lambda: self._train_recognizer(view, ctx),
                                            **self._recipe())
        else:
            model, diagnostics = self._train_recognizer(view, ctx)
        gallery = embed_images(model, view.gallery.images, ctx)
        probes = embed_images(model, view.probes, ctx)
        budget = {"epochs": diagnostics["recognizer_epochs"], "embedding_dim": float(self.embedding_dim),
                  "training_items": float(len(view.train)),
                  "max_epochs": float(self.max_epochs or ctx.profile.max_epochs)}
        return VerificationResult(gallery=gallery, probes=probes, budget=budget,
                                  diagnostics={k: v for k, v in diagnostics.items() if v == v})


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(ReidVerification)
