"""``ppbench check NAME``: the conformance suite, run against an installed sanitizer or attack.

Each rule is one row of a pass/fail table, with the message of the rule broken. The rules are the
separately callable checks of :mod:`ppbench.testing` (the ones a plugin's own tests call), plus a
timing:

- **construct**: the configuration builds (a constructor that raises fails here, and the other
  rows are not run);
- **contract**: what ``check_sanitizer`` / ``check_attack`` assert (parameters round-trip, the
  output's shape, finiteness and range, records, pickling, handles; an attack's predictions);
- **determinism**: two runs with the same seed give identical outputs (an attack: identical
  predictions);
- **no in-place edits**: what a plugin is lent (train split, input batch, the view's splits) is
  unchanged after the call, and a transform's output is a new tensor;
- **device and dtype**: run with the context on the chosen device and the inputs where the harness
  puts them (a transform's batch on ``ctx.device``; a view on the CPU), the output is what the
  harness accepts: a float tensor holding values, on any device (another precision than float32
  is converted, with a note); an attack's predictions are integer labels or float class scores;
- **time**: a sanitizer's transform (a release: ``release``) of 1,000 images at the quick
  profile's image size, batched as the harness batches it; an attack's run on 1,000 labelled
  attack images and 1,000 test images. It fails beyond the quick profile's time limit prorated to
  the items timed: a quick fit transforms its attack and test splits (3,000 images) within the
  900 s limit, so 1,000 images get 300 s; a quick cell handles 3,000 images, so an attack's 2,000
  get 600 s. The figure is reported either way;
- **threat model** (attacks): ``requires`` stays within what the declared threat model grants
  (``ThreatModel.grants``), and the predictions do not follow the test labels the harness
  withholds (``check_attack``'s decoy test).

Everything runs on the toy data set of :mod:`ppbench.testing` (attributes ``secret`` and
``keep``). Rows that cannot run are ``n/a`` with the reason and do not fail: attacks of a scoring
kind other than ``attribute`` (their views need a fitted sanitizer; ``ppbench run`` checks them),
and white-box attacks, whose handles only a sanitizer can provide.
"""

from __future__ import annotations

import contextlib
import difflib
import sys
import textwrap
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Literal

from . import testing
from .api import IMAGE, Attack, CellTimeout, Sanitizer
from .data import DatasetSplits, ImageSet
from .guards import error_text, time_limit, transform_batched
from .kinds import attack_kind, threat_model
from .release import sanitizer_mode

if TYPE_CHECKING:
    import argparse

    import torch

    from .registry import Registry

Status = Literal["pass", "FAIL", "n/a"]
TABLE_WIDTH = 100
TIMED_ITEMS = 1000

CONSTRUCT = "construct"
CONTRACT = "contract"
DETERMINISM = "determinism"
NO_INPLACE = "no in-place edits"
DEVICE = "device and dtype"
TIME = "time"
THREAT_MODEL = "threat model"
SANITIZER_RULES = (CONSTRUCT, CONTRACT, DETERMINISM, NO_INPLACE, DEVICE, TIME)
ATTACK_RULES = (CONSTRUCT, CONTRACT, DETERMINISM, NO_INPLACE, DEVICE, TIME, THREAT_MODEL)


@dataclass(frozen=True)
class Row:
    rule: str
    status: Status
    detail: str


@dataclass
class Report:
    """The rows of one plugin's conformance run."""

    kind: str  # "sanitizer" or "attack"
    name: str
    label: str  # the configuration, e.g. blur(sigma=2.0)
    source: str  # where it came from, e.g. ppbench 0.1.0 (plugin 'baseline-sanitizers')
    device: str
    rows: list[Row] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.status != "FAIL" for row in self.rows)

    def row(self, rule: str) -> Row:
        return next(row for row in self.rows if row.rule == rule)

    def table(self, width: int = TABLE_WIDTH) -> str:
        """The rows as a tabulate table no wider than ``width`` (the details wrap)."""
        from tabulate import tabulate

        detail_width = width - max(len(r.rule) for r in self.rows) - len("result") - 4
        while True:  # tabulate pads columns its own way: narrow the details until it fits
            rows = [(r.rule, r.status, textwrap.fill(r.detail, detail_width, break_long_words=True,
                                                     break_on_hyphens=False) or "-")
                    for r in self.rows]
            text = tabulate(rows, headers=("rule", "result", "detail"), tablefmt="simple")
            if detail_width <= 20 or max(len(line) for line in text.splitlines()) <= width:
                return text
            detail_width -= 1

    def summary(self) -> str:
        counts = {status: sum(r.status == status for r in self.rows) for status in ("pass", "FAIL", "n/a")}
        text = f"{counts['pass']} passed, {counts['FAIL']} failed"
        if counts["n/a"]:
            text += f", {counts['n/a']} not checked"
        return f"{self.kind} {self.name}: {text}"


class _Rules:
    """Runs each rule, turning what it raises into a row: an ``AssertionError`` is the rule's
    message, a :class:`~ppbench.testing.CheckNotApplicable` an ``n/a``, anything else what the
    plugin raised (with where)."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def run(self, rule: str, check: Callable[[], str | None]) -> bool:
        try:
            detail = check() or ""
            status: Status = "pass"
        except testing.CheckNotApplicable as exc:
            status, detail = "n/a", _one_line(str(exc))
        except AssertionError as exc:
            status, detail = "FAIL", _one_line(str(exc)) or "assertion failed"
        except Exception as exc:  # noqa: BLE001 - the plugin's failure is the row's message
            status, detail = "FAIL", _one_line(f"raised {error_text(exc)}")
        self.report.rows.append(Row(rule, status, detail))
        return status == "pass"

    def skip(self, rules: tuple[str, ...], why: str) -> None:
        """``n/a`` rows: the first says why, the others point to it."""
        for i, rule in enumerate(rules):
            self.report.rows.append(Row(rule, "n/a", why if i == 0 else f"not run (see {rules[0]})"))


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- the data the rules run on -------------------------------------------------------------------


def _splits(cls: type, **sizes: Any) -> DatasetSplits:
    """The toy splits, as images, or flattened to vectors for a plugin that takes vectors only."""
    splits = testing.toy_splits(**sizes)
    if IMAGE in getattr(cls, "inputs", frozenset({IMAGE})):
        return splits

    def flat(data: ImageSet | None) -> ImageSet | None:
        return None if data is None else ImageSet(data.images.flatten(1), dict(data.labels),
                                                  dict(data.attributes))

    return DatasetSplits(train=flat(splits.train), attack=flat(splits.attack),
                         test=flat(splits.test), aux=flat(splits.aux))


def _quick_budget(items: int) -> float:
    """The quick profile's time limit prorated to ``items``: a fit transforms (and a cell
    handles) the attack and test splits within it."""
    from .api import get_profile

    quick = get_profile("quick")
    return quick.cell_time_limit * items / (quick.n_attack + quick.n_test)


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.2g} s"


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _describe(tensor: "torch.Tensor") -> str:
    return f"{str(tensor.dtype).removeprefix('torch.')} {tuple(tensor.shape)} on {tensor.device}"


# --- sanitizers ----------------------------------------------------------------------------------


def check_sanitizer_conformance(cls: type[Sanitizer], params: dict[str, Any] | None = None,
                                device: str = "cpu", source: str = "") -> Report:
    """Every rule for the sanitizer class ``cls`` configured with ``params``."""
    params = dict(params or {})
    report = Report("sanitizer", cls.name, _label(cls, params), source, device)
    rules = _Rules(report)
    built: list[Sanitizer] = []
    if not rules.run(CONSTRUCT, lambda: _construct(cls, params, built)):
        rules.skip(SANITIZER_RULES[1:], "not run: the plugin could not be constructed")
        return report
    sanitizer = built[0]
    # Each rule gets data of its own, so that a plugin that writes into what it is lent fails the
    # in-place rule without corrupting what the other rules see (the toy data are seeded: equal).
    first: list[testing.SanitizerRun] = []

    def contract() -> str:
        run = testing.check_sanitizer_contract(sanitizer, _splits(cls))
        first.append(run)
        what = "release" if sanitizer_mode(run.fitted) == "release" else "output"
        return (f"{what} {_describe(run.images)} in [{float(run.images.min()):.3g}, "
                f"{float(run.images.max()):.3g}]; the fitted sanitizer pickles")

    rules.run(CONTRACT, contract)
    rules.run(DETERMINISM, lambda: (
        testing.check_sanitizer_determinism(sanitizer, _splits(cls),
                                            first=first[0] if first else None)
        or "two fits and transforms with seed 7 gave identical outputs"))
    rules.run(NO_INPLACE, lambda: (testing.check_sanitizer_no_inplace(sanitizer, _splits(cls))
                                   or "train split and input batch unchanged; output is a new tensor"))
    rules.run(DEVICE, lambda: _sanitizer_device(sanitizer, _splits(cls), device))
    rules.run(TIME, lambda: _sanitizer_time(sanitizer, device))
    return report


def _sanitizer_device(sanitizer: Sanitizer, splits: DatasetSplits, device: str) -> str:
    import torch

    run = testing.check_sanitizer_device(sanitizer, device, splits)
    if sanitizer_mode(run.fitted) == "release":
        return f"release {_describe(run.images)} (checked and stored on the CPU as float32)"
    note = ""
    if run.images.dtype != torch.float32:
        note = (f"; the harness converts {str(run.images.dtype).removeprefix('torch.')} to "
                "float32 and notes it in the cells' provenance")
    return f"inputs float32 on {device} -> {_describe(run.images)}{note}"


def _sanitizer_time(sanitizer: Sanitizer, device: str) -> str:
    from .api import Context

    budget = _quick_budget(TIMED_ITEMS)
    splits = _splits(type(sanitizer), n_test=TIMED_ITEMS, size=_quick_size())
    fresh = type(sanitizer)(**sanitizer.get_params())
    ctx = Context(device=device, profile="quick", seed=7)
    ctx.seed_everything()
    fitted = fresh.fit(splits.train, testing.TOY_TASK, ctx) or fresh
    release = sanitizer_mode(fitted) == "release"
    size = _quick_size()
    what = "released" if release else "transformed"
    start = time.perf_counter()
    with _within(budget, f"{TIMED_ITEMS:,} images {what}"):
        if release:
            fitted.release(TIMED_ITEMS, ctx)
        else:
            transform_batched(fitted, splits.test.images, ctx, type(sanitizer).__name__)
        _synchronize(device)
    spent = time.perf_counter() - start
    assert spent <= budget, (
        f"{TIMED_ITEMS:,} images {what} in {_seconds(spent)}, over the budget of "
        f"{_seconds(budget)} (the quick profile's time limit for its attack and test splits)")
    return (f"{TIMED_ITEMS:,} images ({size}x{size}) {what} in {_seconds(spent)} on {device} "
            f"(budget {_seconds(budget)})")


@contextlib.contextmanager
def _within(budget: float, what: str) -> Iterator[None]:
    """The block, interrupted at ``budget`` seconds (a plugin that hangs fails the time rule
    instead of hanging the check)."""
    try:
        with time_limit(budget, what):
            yield
    except CellTimeout:
        raise AssertionError(f"{what}: not done within the budget of {_seconds(budget)} "
                             "(the quick profile's time limit, prorated)") from None


def _quick_size() -> int:
    from .api import get_profile

    return get_profile("quick").image_size


# --- attacks -------------------------------------------------------------------------------------


def check_attack_conformance(cls: type[Attack], params: dict[str, Any] | None = None,
                             device: str = "cpu", source: str = "") -> Report:
    """Every rule for the attack class ``cls`` configured with ``params``."""
    params = dict(params or {})
    report = Report("attack", cls.name, _label(cls, params), source, device)
    rules = _Rules(report)
    built: list[Attack] = []
    if not rules.run(CONSTRUCT, lambda: _construct(cls, params, built)):
        rules.skip(ATTACK_RULES[1:], "not run: the plugin could not be constructed")
        return report
    attack = built[0]
    kind = attack_kind(attack).name
    why = None
    if kind != "attribute":
        why = (f"not run: a {kind} attack's view needs a fitted sanitizer and the harness's "
               f"secret draws; check it with `ppbench run --attack {cls.name}`")
    else:
        try:
            testing._granted(attack, _splits(cls), None)
        except testing.CheckNotApplicable as exc:
            why = f"not run: {_one_line(str(exc))}"
    if why is not None:
        rules.skip((CONTRACT, DETERMINISM, NO_INPLACE, DEVICE, TIME), why)
        rules.run(THREAT_MODEL, lambda: (testing.check_requirements_within_threat_model(attack)
                                         or _grants_text(attack)
                                         + "; withheld-label test not run (see contract)"))
        return report
    # Data of its own for each rule, as for sanitizers.
    rules.run(CONTRACT, lambda: _attack_contract(attack, _splits(cls)))
    rules.run(DETERMINISM, lambda: (testing.check_attack_determinism(attack, _splits(cls))
                                    or "two runs with the same seed gave identical predictions"))
    rules.run(NO_INPLACE, lambda: (testing.check_attack_no_inplace(attack, _splits(cls))
                                   or "the view's splits are unchanged"))
    rules.run(DEVICE, lambda: _attack_device(attack, _splits(cls), device))
    rules.run(TIME, lambda: _attack_time(attack, device))
    rules.run(THREAT_MODEL, lambda: (testing.check_attack_threat_model(attack, _splits(cls))
                                     or _grants_text(attack)
                                     + "; predictions do not follow the withheld test labels"))
    return report


def _attack_contract(attack: Attack, splits: DatasetSplits) -> str:
    result = testing.check_attack_contract(attack, splits)
    truth = splits.test.labels[testing.TOY_TASK.sensitive]
    guesses = testing._guesses(result).cpu()
    accuracy = float((guesses == truth).float().mean())
    return (f"one prediction per test item, in range; accuracy {accuracy:.2f} on the toy secret "
            f"(plain to see: a working attack is near 1)")


def _grants_text(attack: Attack) -> str:
    model = threat_model(attack)
    from .kinds import requirement_labels

    asks = ", ".join(requirement_labels(attack.requires, type(attack).__name__)) or "nothing more"
    return f"{model.id} ({model.knowledge}): requires {asks}"


def _attack_device(attack: Attack, splits: DatasetSplits, device: str) -> str:
    predictions = testing.check_attack_device(attack, device, splits).predictions
    what = "class scores" if predictions.dim() == 2 else "class indices"
    return f"ctx.device {device} -> {what} {_describe(predictions)}"


def _attack_time(attack: Attack, device: str) -> str:
    import torch

    items = 2 * TIMED_ITEMS
    budget = _quick_budget(items)
    splits = _splits(type(attack), n_attack=TIMED_ITEMS, n_test=TIMED_ITEMS, size=_quick_size())
    granted, grants = testing._granted(attack, splits, None)
    order = torch.arange(TIMED_ITEMS)
    start = time.perf_counter()
    with _within(budget, f"a run on {TIMED_ITEMS:,} attack and {TIMED_ITEMS:,} test images"):
        testing._run_with_withheld_labels(attack, splits, testing.TOY_TASK, granted, grants,
                                          order, relabel=None, device=device)
        _synchronize(device)
    spent = time.perf_counter() - start
    assert spent <= budget, (
        f"a run on {TIMED_ITEMS:,} attack and {TIMED_ITEMS:,} test images took {_seconds(spent)}, "
        f"over the budget of {_seconds(budget)} (the quick profile's cell time limit, prorated)")
    size = _quick_size()
    return (f"trained on {TIMED_ITEMS:,} and predicted {TIMED_ITEMS:,} images ({size}x{size}) in "
            f"{_seconds(spent)} on {device} (budget {_seconds(budget)})")


# --- shared --------------------------------------------------------------------------------------


def _construct(cls: type, params: dict[str, Any], built: list[Any]) -> str:
    built.append(cls(**params))
    return repr(built[0])


def _label(cls: type, params: dict[str, Any]) -> str:
    args = ",".join(f"{k}={v!r}" for k, v in sorted(params.items()))
    return f"{cls.name}({args})" if args else cls.name


# --- the command ---------------------------------------------------------------------------------


def find_plugin(registry: "Registry", name: str) -> list[tuple[str, Any]]:
    """The (kind, registered entry) of each sanitizer and attack called ``name``; a name that is
    neither is one line naming the close ones."""
    from .spec import SpecError

    found = []
    for kind in ("sanitizers", "attacks"):
        if name in registry.entries[kind] or name in registry.conflicts[kind]:
            try:
                found.append((kind, registry.get(kind, name)))
            except KeyError as exc:  # registered twice
                raise SpecError(str(exc)) from None
    if found:
        return found
    for kind in ("metrics", "datasets"):
        if name in registry.entries[kind]:
            raise SpecError(f"{name} is a {kind[:-1]}; `ppbench check` checks sanitizers and attacks")
    known = registry.names("sanitizers") + registry.names("attacks")
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `ppbench list` shows them all"
    failed = "".join(f"; plugin {f.plugin} ({f.distribution}) failed to load: {_one_line(f.error)}"
                     for f in registry.failures)
    raise SpecError(f"no sanitizer or attack named {name!r}{hint}{failed}")


def parse_params(name: str, text: str | None, cls: type, kind: str) -> dict[str, Any]:
    """``--params k=v,...`` as keyword arguments, spelled as in ``ppbench run --sanitizer``."""
    from .planning import check_plugin_params
    from .spec import SpecError, parse_plugin_arg

    if not text:
        return {}
    configs = parse_plugin_arg(f"{name}:{text}")
    if len(configs) > 1:
        raise SpecError(f"--params {text}: a list value sweeps in `ppbench run`; `ppbench check` "
                        "checks one configuration at a time")
    check_plugin_params(cls, kind, configs[0], f"--params {text}")
    return configs[0].kwargs


def cmd_check(args: "argparse.Namespace") -> int:
    """``ppbench check NAME [--params k=v,...] [--device ...]``: 0 when no rule fails, else 1."""
    from .planning import resolve_device
    from .registry import get_registry

    registry = get_registry()
    found = find_plugin(registry, args.name)
    device = resolve_device(args.device)
    passed = True
    for kind, entry in found:
        params = parse_params(args.name, args.params, entry.obj, kind)
        check = check_sanitizer_conformance if kind == "sanitizers" else check_attack_conformance
        print(f"ppbench check: {kind[:-1]} {_label(entry.obj, params)} from {entry.source}, "
              f"device {device}", file=sys.stderr)
        report = check(entry.obj, params, device=device, source=str(entry.source))
        print(report.table())
        print(report.summary())
        if any(r.status == "FAIL" and "not an attribute" in r.detail for r in report.rows):
            toy = ", ".join(a.name for a in testing.TOY_ATTRIBUTES)
            print(f"note: the checks run on a toy data set whose attributes are {toy} (task: hide "
                  f"{testing.TOY_TASK.sensitive}, keep {', '.join(testing.TOY_TASK.utility)}); a "
                  f"parameter that names another attribute needs --params, e.g. keep=keep")
        passed = passed and report.passed
    return 0 if passed else 1


__all__ = ["Report", "Row", "check_attack_conformance", "check_sanitizer_conformance",
           "cmd_check", "find_plugin", "parse_params"]
