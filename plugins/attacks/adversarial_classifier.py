"""The papers' standard privacy check: a fresh classifier trained on sanitized images.

Martinsson et al. call its test accuracy the "privacy loss"; Chen et al. and Liu et al. use the
same check for identity. It is adaptive: whatever deterministic trace of the sensitive attribute
a sanitizer leaves in its train outputs, the classifier can learn to read it.
"""

from __future__ import annotations

from numbers import Integral, Real

from ppbench import Attack, AttackResult, AttackView, Context, Task, hookimpl

ARCHITECTURES = ("auto", "cnn", "resnet10", "resnet18", "mlp")


class AdversarialClassifier(Attack):
    """Trains a fresh classifier on the sanitized train split with the true sensitive labels
    and predicts the sensitive attribute of the sanitized test split.

    ``arch``: ``auto`` (SmallCNN for images, MLP for vectors), ``cnn``, ``resnet10``,
    ``resnet18`` or ``mlp``. ``width`` overrides the network's default width: ResNets default
    to He et al.'s 64, which is slow on a CPU; at 16 a ResNet-10 trains at roughly SmallCNN
    speed. ``epochs`` defaults to the profile's.
    """

    name = "adversarial-classifier"
    version = "1"
    description = ("Fresh classifier (SmallCNN for images, MLP for vectors) retrained on sanitized "
                   "train data with the true sensitive label: the papers' standard check.")
    threat_model = "sanitized-labelled"

    def __init__(self, arch: str = "auto", epochs: int | None = None, lr: float = 1e-3,
                 width: int | None = None) -> None:
        if arch not in ARCHITECTURES:
            raise ValueError(f"attack 'adversarial-classifier': parameter 'arch' must be one of "
                             f"{ARCHITECTURES}, got {arch!r}")
        if epochs is not None and (not isinstance(epochs, Integral) or isinstance(epochs, bool)
                                   or epochs < 1):
            raise ValueError(f"attack 'adversarial-classifier': parameter 'epochs' must be None "
                             f"(the profile's) or an integer >= 1, got {epochs!r}")
        if not isinstance(lr, Real) or isinstance(lr, bool) or not lr > 0:
            raise ValueError(f"attack 'adversarial-classifier': parameter 'lr' must be a number > 0, "
                             f"got {lr!r}")
        if width is not None and (not isinstance(width, Integral) or isinstance(width, bool)
                                  or width < 1):
            raise ValueError(f"attack 'adversarial-classifier': parameter 'width' must be None "
                             f"(the network's default) or an integer >= 1, got {width!r}")
        self.arch = arch
        self.epochs = epochs
        self.lr = lr
        self.width = width

    def run(self, view: AttackView, task: Task, ctx: Context) -> AttackResult:
        from ppbench.nn import build_classifier, predict_logits, train_classifier

        train = view.attack
        labels = train.labels[task.sensitive]
        num_classes = train.num_classes(task.sensitive)
        model = build_classifier(self.arch, train.shape, num_classes, width=self.width,
                                 seed=ctx.seed)
        history: list[dict[str, float]] = []
        train_classifier(model, train.images, labels, ctx, epochs=self.epochs, lr=float(self.lr),
                         desc="adversarial classifier", generator=ctx.generator(stream=1),
                         history=history)
        logits = predict_logits(model, view.test.images, ctx)
        # Class scores are only valid when the class count is the data set's, not one inferred
        # from the labels that happen to occur in train; otherwise hand over the arg-max.
        predictions = logits if task.sensitive in train.attributes else logits.argmax(dim=1)
        # Running accuracy over the last epoch: free, and close enough to flag an adversary that
        # failed to fit at all (train ≈ chance) versus one that fit but does not generalise.
        diagnostics = {"train_accuracy": history[-1]["accuracy"]} if history else {}
        return AttackResult(predictions=predictions, diagnostics=diagnostics)


@hookimpl
def ppbench_register_attacks(register) -> None:
    register(AdversarialClassifier)
