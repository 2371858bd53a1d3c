"""``ppbench new sanitizer NAME`` / ``ppbench new attack NAME``: a ready plugin package.

It writes ``ppbench-NAME/``: a ``pyproject.toml`` declaring the entry point, a module with a
working minimal plugin (a fitted box-blur sanitizer, or a logistic-regression attack that trains
on the view its threat model grants), tests that use ``ppbench.testing`` and the conformance
suite, and a README saying how to run, test, check and submit it. ``pip install -e`` and
``pytest`` pass on it as written (``tests/test_author_kit.py`` does exactly that).

The templates are strings in this module, so they install with the package and need no package
data; ``{{`` and ``}}`` are literal braces of the generated code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .spec import SpecError

KINDS = ("sanitizer", "attack")
# A plugin name as ppbench spells its own: lowercase words of letters and digits joined by hyphens.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


@dataclass(frozen=True)
class Names:
    """How one plugin name is spelled in each place of the package."""

    plugin: str  # demo-blur: the registered name and the entry point's
    distribution: str  # ppbench-demo-blur
    module: str  # ppbench_demo_blur
    cls: str  # DemoBlur
    kind: str  # sanitizer or attack

    @classmethod
    def of(cls, kind: str, name: str) -> "Names":
        return cls(name, f"ppbench-{name}", "ppbench_" + name.replace("-", "_"),
                   "".join(part.capitalize() for part in name.split("-")), kind)

    def fill(self, template: str) -> str:
        return template.format(name=self.plugin, dist=self.distribution, module=self.module,
                               cls=self.cls, kind=self.kind, kinds=self.kind + "s")


def check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise SpecError(f"plugin name {name!r}: use lowercase letters, digits and hyphens, starting "
                        "with a letter (e.g. my-blur)")


def _check_unregistered(kind: str, name: str) -> None:
    """A name already taken would make both plugins unusable (the registry refuses a clash)."""
    from .registry import get_registry

    registry = get_registry()
    if name in registry.entries[kind + "s"]:
        raise SpecError(f"{'an' if kind == 'attack' else 'a'} {kind} named {name!r} is already registered by "
                        f"{registry.source(kind + 's', name)}; choose another name")
    taken = {source.plugin: source for source in registry.plugins}
    if name in taken:
        raise SpecError(f"entry point name {name!r} is already used by {taken[name]}; choose "
                        "another name")


def new_plugin(kind: str, name: str, parent: Path) -> list[Path]:
    """Write the package ``parent/ppbench-NAME``; returns the files written. Refuses an existing
    folder, a malformed name and one that is already registered."""
    if kind not in KINDS:
        raise SpecError(f"ppbench new {kind}: choose one of {', '.join(KINDS)}")
    check_name(name)
    names = Names.of(kind, name)
    root = Path(parent) / names.distribution
    if root.exists():
        raise SpecError(f"{root} already exists; not overwriting it (remove it or pass --dir)")
    if not Path(parent).is_dir():
        raise SpecError(f"--dir {parent}: no such folder")
    _check_unregistered(kind, name)
    files = {
        "pyproject.toml": PYPROJECT,
        f"{names.module}/__init__.py": INIT,
        f"{names.module}/{kind}.py": SANITIZER_MODULE if kind == "sanitizer" else ATTACK_MODULE,
        f"tests/test_{names.module.removeprefix('ppbench_')}.py":
            SANITIZER_TESTS if kind == "sanitizer" else ATTACK_TESTS,
        "README.md": README_SANITIZER if kind == "sanitizer" else README_ATTACK,
    }
    written = []
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(names.fill(template))
        written.append(path)
    return written


def cmd_new(args: "object") -> int:
    """``ppbench new sanitizer|attack NAME [--dir PATH]``."""
    parent = Path(getattr(args, "dir", None) or ".")
    written = new_plugin(args.kind, args.name, parent)
    root = written[0].parent
    for path in written:
        print(path)
    print(f"\nNext: pip install -e {root} && pytest {root} && ppbench check {args.name}")
    return 0


# --- templates -----------------------------------------------------------------------------------

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A ppbench {kind}: {name}"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["ppbench"]

[project.optional-dependencies]
test = ["pytest>=7.4"]

# This line is the whole submission path: once installed, ppbench discovers the plugin.
[project.entry-points.ppbench]
{name} = "{module}.{kind}"

[tool.setuptools]
packages = ["{module}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

INIT = '''\
"""{dist}: the ppbench {kind} `{name}`."""
'''

SANITIZER_MODULE = '''\
"""The `{name}` sanitizer: a box blur, blended towards the mean image of the train split.

A ppbench sanitizer is configured by its constructor's keyword arguments (stored under the same
names), fitted on the train split, and transforms batches of images into images of the same
shape, in [0, 1]. See CONTRIBUTING.md in ppbench for the whole contract.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import TYPE_CHECKING

from ppbench import IMAGE, Context, ImageSet, Sanitizer, Task, hookimpl

if TYPE_CHECKING:
    import torch

NAME = "{name}"


class {cls}(Sanitizer):
    """Box-blurs each image over a (2·radius + 1)² window and blends it towards the train split's
    mean image: ``(1 − blend) · blur(x) + blend · mean``. ``radius=0, blend=0`` is the identity;
    ``blend=1`` outputs the same image for everyone."""

    name = NAME
    # Bump it whenever a change can change a result: cached fits and results are keyed by it.
    version = "1"
    description = "Box blur of the given radius, blended towards the train split's mean image."
    inputs = frozenset({{IMAGE}})

    def __init__(self, radius: int = 1, blend: float = 0.25) -> None:
        # Validate here, naming the parameter: a bad value fails before any work.
        if not isinstance(radius, Integral) or isinstance(radius, bool) or radius < 0:
            raise ValueError(f"sanitizer {{NAME!r}}: parameter 'radius' must be an integer >= 0, "
                             f"got {{radius!r}}")
        if (not isinstance(blend, Real) or isinstance(blend, bool) or not math.isfinite(blend)
                or not 0.0 <= blend <= 1.0):
            raise ValueError(f"sanitizer {{NAME!r}}: parameter 'blend' must be a number in [0, 1], "
                             f"got {{blend!r}}")
        self.radius = radius
        self.blend = blend

    def fit(self, train: ImageSet, task: Task, ctx: Context) -> "{cls}":
        # fit sees the train split only. Read it, never write into it: it is lent to the cells
        # that follow. Kept on the CPU, because the fitted sanitizer is cached with torch.save.
        self.mean_image_ = train.images.mean(dim=0, keepdim=True).cpu()
        return self

    def transform(self, images: "torch.Tensor", ctx: Context) -> "torch.Tensor":
        import torch.nn.functional as F

        if not hasattr(self, "mean_image_"):
            raise RuntimeError(f"sanitizer {{NAME!r}}: transform() before fit()")
        # The batch arrives on ctx.device; the result is a new tensor (the input is not changed).
        size = 2 * self.radius + 1
        blurred = F.avg_pool2d(images, size, stride=1, padding=self.radius,
                               count_include_pad=False)
        mean = self.mean_image_.to(images.device, images.dtype)
        return ((1.0 - self.blend) * blurred + self.blend * mean).clamp(0.0, 1.0)


@hookimpl
def ppbench_register_sanitizers(register):
    register({cls})
'''

SANITIZER_TESTS = '''\
"""The `{name}` sanitizer keeps the ppbench contract and does what it says."""

import torch

from ppbench import Context
from ppbench.conformance import check_sanitizer_conformance
from ppbench.testing import TOY_TASK, check_sanitizer, toy_splits
from {module}.{kind} import {cls}


def test_it_keeps_the_contract():
    check_sanitizer({cls}())
    check_sanitizer({cls}(radius=2, blend=1.0))


def test_it_passes_every_rule_of_ppbench_check():
    report = check_sanitizer_conformance({cls}, {{"radius": 1, "blend": 0.25}})
    assert report.passed, report.table()


def test_radius_zero_without_blend_is_the_identity():
    splits = toy_splits()
    sanitizer = {cls}(radius=0, blend=0.0).fit(splits.train, TOY_TASK, Context())
    assert torch.allclose(sanitizer.transform(splits.test.images, Context()), splits.test.images)


def test_full_blend_gives_everyone_the_same_image():
    splits = toy_splits()
    sanitizer = {cls}(blend=1.0).fit(splits.train, TOY_TASK, Context())
    out = sanitizer.transform(splits.test.images, Context())
    assert torch.allclose(out, out[:1].expand_as(out))
'''

ATTACK_MODULE = '''\
"""The `{name}` attack: logistic regression on average-pooled pixels.

A ppbench attack of the ``attribute`` kind trains on what its threat model grants (here the
sanitized attack split with its true labels: the standard adversary) and predicts the sensitive
attribute of every sanitized test image; the harness scores the predictions. See CONTRIBUTING.md
in ppbench for the whole contract.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import TYPE_CHECKING

from ppbench import Attack, AttackResult, AttackView, Context, Task, hookimpl

if TYPE_CHECKING:
    import torch

NAME = "{name}"


class {cls}(Attack):
    """L2-regularised logistic regression on standardized, ``pool``×``pool`` average-pooled
    pixels (raw features for vectors) of the sanitized attack split, solved to convergence with
    full-batch L-BFGS from zero weights (so the same data give the same predictions); returns
    class probabilities for the sanitized test split."""

    name = NAME
    # Bump it whenever a change can change a result: cached results are keyed by it.
    version = "1"
    description = "Logistic regression on pooled pixels of the sanitized attack split."
    # What the attacker holds: the sanitized attack split with the true sensitive labels. It asks
    # for nothing more (`requires` is empty); asking for raw data would need another threat model.
    threat_model = "sanitized-labelled"
    requires = frozenset()

    def __init__(self, pool: int = 2, l2: float = 1e-3, max_iter: int = 500) -> None:
        if not isinstance(pool, Integral) or isinstance(pool, bool) or pool < 1:
            raise ValueError(f"attack {{NAME!r}}: parameter 'pool' must be an integer >= 1, "
                             f"got {{pool!r}}")
        if not isinstance(l2, Real) or isinstance(l2, bool) or not (math.isfinite(l2) and l2 >= 0):
            raise ValueError(f"attack {{NAME!r}}: parameter 'l2' must be a number >= 0, got {{l2!r}}")
        if not isinstance(max_iter, Integral) or isinstance(max_iter, bool) or max_iter < 1:
            raise ValueError(f"attack {{NAME!r}}: parameter 'max_iter' must be an integer >= 1, "
                             f"got {{max_iter!r}}")
        self.pool = pool
        self.l2 = l2
        self.max_iter = max_iter

    def _features(self, images: "torch.Tensor", device: "torch.device") -> "torch.Tensor":
        import torch
        import torch.nn.functional as F

        x = images.to(device=device, dtype=torch.float32)
        if x.dim() == 4 and self.pool > 1:
            x = F.avg_pool2d(x, self.pool, ceil_mode=True)
        return x.flatten(1)

    def run(self, view: AttackView, task: Task, ctx: Context) -> AttackResult:
        import torch
        import torch.nn.functional as F

        device = ctx.device
        # The view's tensors are lent read-only: everything below works on new tensors.
        x = self._features(view.attack.images, device)
        y = view.attack.labels[task.sensitive].to(device)
        k = view.attack.num_classes(task.sensitive)
        mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
        x = (x - mean) / std
        weight = torch.zeros(x.shape[1], k, device=device, requires_grad=True)
        bias = torch.zeros(k, device=device, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=self.max_iter,
                                      tolerance_grad=1e-6, line_search_fn="strong_wolfe")

        def closure() -> "torch.Tensor":
            optimizer.zero_grad()
            loss = F.cross_entropy(x @ weight + bias, y) + self.l2 * weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():  # the harness may call run() under no_grad
            optimizer.step(closure)
        with torch.no_grad():
            train_accuracy = float(((x @ weight + bias).argmax(dim=1) == y).float().mean())
            test = (self._features(view.test.images, device) - mean) / std
            scores = torch.softmax(test @ weight + bias, dim=1)
        return AttackResult(scores.cpu(), diagnostics={{"train_accuracy": train_accuracy}})


@hookimpl
def ppbench_register_attacks(register):
    register({cls})
'''

ATTACK_TESTS = '''\
"""The `{name}` attack keeps the ppbench contract and finds a secret that is plain to see."""

from ppbench.conformance import check_attack_conformance
from ppbench.testing import check_attack, toy_splits
from {module}.{kind} import {cls}


def test_it_keeps_the_contract_and_finds_the_toy_secret():
    splits = toy_splits()
    result = check_attack({cls}(), splits)
    accuracy = (result.predictions.argmax(dim=1) == splits.test.labels["secret"]).float().mean()
    assert accuracy > 0.9  # the toy secret is plain to see in unsanitized images


def test_it_passes_every_rule_of_ppbench_check():
    report = check_attack_conformance({cls}, {{"pool": 2}})
    assert report.passed, report.table()
'''

_README_COMMON = '''\
## Install and test

```bash
pip install -e .          # beside an installed ppbench; registers the entry point `{name}`
pytest                    # the contract checks of ppbench.testing, on a toy data set
ppbench list              # shows `{name}` with its version
ppbench check {name}      # the conformance suite: a pass/fail table, one row per rule
```

`ppbench check {name} --params k=v,...` checks another configuration, and `--device cuda` runs
the device rules and the timing on a GPU. It exits with status 1 when a rule fails.

## Submit it

Publish the package (or open a pull request against a benchmark that installs it), then follow
"Submitting to a published leaderboard" in ppbench's CONTRIBUTING.md: reviewers check that
`ppbench check {name}` is green, that these tests pass, and that the board was produced by a
sealed run whose `provenance.json` pins this package's version. Bump `version` in
`{module}/{kind}.py` whenever a change can change a result.
'''

README_SANITIZER = '''\
# {dist}

A ppbench sanitizer, `{name}`: a box blur blended towards the train
split's mean image. Parameters: `radius` (int ≥ 0, default 1) and `blend` (in [0, 1], default
0.25). Edit `{module}/sanitizer.py` to make it yours: `fit` sees the train split only,
`transform` returns images of the input's shape in [0, 1].

## Run it in a benchmark

```bash
ppbench run --sanitizer "{name}:radius=[1,2],blend=0.25" --attack linear-probe --attack adversarial-classifier
```

ranks it against the default benchmark's attacks, one row per configuration (a list sweeps).

''' + _README_COMMON

README_ATTACK = '''\
# {dist}

A ppbench attack, `{name}`: logistic regression on average-pooled pixels
of the sanitized attack split (threat model `sanitized-labelled`: the standard adversary).
Parameters: `pool` (default 2), `l2` (default 0.001), `max_iter` (default 500). Edit
`{module}/attack.py` to make it yours: `run` gets only what its threat model grants and returns
a prediction of the sensitive attribute for every sanitized test image.

## Run it in a benchmark

```bash
ppbench run --attack {name} --sanitizer "blur:sigma=[1,2]" --sanitizer identity
```

scores it against those sanitizers on the default benchmark (the harness does the scoring).

''' + _README_COMMON
