"""Benchmark specifications: which data set and tasks, which sanitizer configurations, which
attacks and metrics, how many seeds, at which profile. Read from TOML or built from CLI flags.

A spec file::

    [benchmark]
    name = "synthfaces"
    tasks = ["smiling", "identity"]
    seeds = 3
    profile = "quick"
    standard_check = "adversarial-classifier"   # the attack a paper would report as its privacy check
    canaries = 100              # optional: atypical records for membership audits (ppbench.membership)

    [dataset]
    name = "synthfaces"         # other keys are the loader's parameters
    n_train = [500, 2000]       # a list sweeps here too: one data configuration per value

    [[sanitizers]]
    name = "blur"
    sigma = [1.0, 3.0]          # a list sweeps: one configuration per value

    [[attacks]]
    name = "adversarial-classifier"

    [[metrics]]
    name = "fixed-utility"

    [examples]                  # optional: example outputs drawn by `ppbench publish`
    where = { sigma = 3.0 }     # the configurations to show (all when omitted)
    items = 8                   # test items per strip (images) or points per panel (vectors)

A list value sweeps a parameter (several lists: their product). A parameter whose value is itself
a list is written as a list of lists. A swept ``[dataset]`` parameter gives one data configuration
per value: every sanitizer, attack and metric runs on each, and each gets its own leaderboards
(``ppbench.boards``: one board per data set, data configuration, task and profile).
"""

from __future__ import annotations

import itertools
import json
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .api import PROFILES


class SpecError(ValueError):
    """A benchmark spec or a CLI plugin string is wrong; the message names the file and field."""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class PluginConfig:
    """A plugin name with one concrete set of keyword parameters."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def make(cls, name: str, params: dict[str, Any] | None = None) -> "PluginConfig":
        return cls(name, tuple(sorted((params or {}).items())))

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def label(self) -> str:
        if not self.params:
            return self.name
        args = ",".join(f"{k}={_short(v)}" for k, v in self.params)
        return f"{self.name}({args})"

    def params_json(self) -> str:
        return canonical_json(self.kwargs)


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value) if not isinstance(value, str) else value


@dataclass(frozen=True)
class Reference:
    """A published figure to show beside the board's own (a ``[[reference]]`` table;
    :mod:`ppbench.boards.references`)."""

    source: str
    sanitizer: str  # a row label as the board shows it
    column: str  # a column header as the board shows it
    low: float  # the paper's value, or the low end of its range
    high: float
    task: str | None = None

    @property
    def paper_text(self) -> str:
        return f"{self.low:.3f}" if self.low == self.high else f"{self.low:.3f}–{self.high:.3f}"

    def to_toml(self) -> str:
        lines = ["[[reference]]", f"source = {_toml(self.source)}", f"sanitizer = {_toml(self.sanitizer)}",
                 f"column = {_toml(self.column)}"]
        lines.append(f"value = {self.low!r}" if self.low == self.high else f"range = [{self.low!r}, {self.high!r}]")
        if self.task is not None:
            lines.append(f"task = {_toml(self.task)}")
        return "\n".join(lines)


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    dataset: str
    tasks: tuple[str, ...]
    sanitizers: tuple[PluginConfig, ...]
    attacks: tuple[PluginConfig, ...]
    metrics: tuple[PluginConfig, ...] = ()
    dataset_params: tuple[tuple[str, Any], ...] = ()
    seeds: int = 1
    seed: int = 0
    profile: str = "quick"
    description: str = ""
    source: str = "<flags>"
    # The attack that the papers' usual privacy check corresponds to; the leaderboard flags rows
    # that pass it while another attack finds a leak. None: no flag.
    standard_check: str | None = None
    # The metric whose utility figure a board ranks within tiers and plots against the worst case
    # (its Pareto front); None: the first metric, by label, with a utility figure.
    ranking_utility: str | None = None
    # The [examples] table: None when absent; else the configurations' parameter filter and the
    # number of test items ``ppbench publish`` draws (ppbench.examples).
    examples_where: tuple[tuple[str, Any], ...] | None = None
    examples_items: int | None = None
    references: tuple[Reference, ...] = ()
    # Membership canaries (ppbench.membership): N atypical records shuffled into every fit split
    # and N held out, scored apart by membership attacks; 0: none.
    canaries: int = 0

    @property
    def dataset_configs(self) -> list[tuple[tuple[str, Any], ...]]:
        """One data configuration per point of the product of the swept ``[dataset]`` parameters
        (a single one when none is swept), in the spec's order."""
        return [config.params for config in expand_sweep(f"{self.source}: [dataset]",
                                                          dict(self.dataset_params))]

    @property
    def run_seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]

    def with_overrides(self, **changes: Any) -> "BenchmarkSpec":
        changes = {k: v for k, v in changes.items() if v not in (None, (), [])}
        return replace(self, **changes) if changes else self

    def to_toml(self) -> str:
        """The spec as TOML (sweeps expanded: one table per configuration)."""
        lines = ["[benchmark]", f"name = {_toml(self.name)}"]
        if self.description:
            lines.append(f"description = {_toml(self.description)}")
        lines += [f"tasks = {_toml(list(self.tasks))}", f"seeds = {self.seeds}",
                  f"seed = {self.seed}", f"profile = {_toml(self.profile)}"]
        if self.standard_check:
            lines.append(f"standard_check = {_toml(self.standard_check)}")
        if self.ranking_utility:
            lines.append(f"ranking_utility = {_toml(self.ranking_utility)}")
        if self.canaries:
            lines.append(f"canaries = {self.canaries}")
        lines += ["",
                  "[dataset]", f"name = {_toml(self.dataset)}"]
        lines += [f"{k} = {_toml(v)}" for k, v in self.dataset_params]
        for table, configs in (("sanitizers", self.sanitizers), ("attacks", self.attacks),
                               ("metrics", self.metrics)):
            for config in configs:
                lines += ["", f"[[{table}]]", f"name = {_toml(config.name)}"]
                lines += [f"{k} = {_toml([v] if isinstance(v, list) else v)}" for k, v in config.params]
        if self.examples_where is not None:
            lines += ["", "[examples]", "where = { " + ", ".join(
                f"{k} = {_toml(v)}" for k, v in self.examples_where) + " }"]
            if self.examples_items is not None:
                lines.append(f"items = {self.examples_items}")
        for reference in self.references:
            lines += ["", reference.to_toml()]
        return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise SpecError(f"cannot write {value!r} to TOML")


def expand_sweep(name: str, params: dict[str, Any]) -> list[PluginConfig]:
    """One configuration per point of the product of the list-valued parameters."""
    fixed = {k: v for k, v in params.items() if not isinstance(v, list)}
    swept = {k: v for k, v in params.items() if isinstance(v, list)}
    for key, values in swept.items():
        if not values:
            raise SpecError(f"{name}: parameter {key!r} sweeps an empty list")
    configs = []
    for point in itertools.product(*swept.values()):
        configs.append(PluginConfig.make(name, {**fixed, **dict(zip(swept, point))}))
    return configs


def _plugin_tables(data: dict[str, Any], table: str, source: str, required: bool) -> tuple[PluginConfig, ...]:
    entries = data.get(table, [])
    if not isinstance(entries, list):
        raise SpecError(f"{source}: [[{table}]] must be an array of tables")
    if required and not entries:
        raise SpecError(f"{source}: needs at least one [[{table}]] entry")
    configs: list[PluginConfig] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise SpecError(f"{source}: {table}[{i}] needs a string field 'name'")
        params = {k: v for k, v in entry.items() if k != "name"}
        configs.extend(expand_sweep(entry["name"], params))
    return tuple(dict.fromkeys(configs))


def load_spec(path: str | Path) -> BenchmarkSpec:
    path = Path(path)
    source = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{source}: no such benchmark spec") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: invalid TOML: {exc}") from None
    return spec_from_dict(data, source)


def spec_from_dict(data: dict[str, Any], source: str) -> BenchmarkSpec:
    known = {"benchmark", "dataset", "sanitizers", "attacks", "metrics", "examples", "reference"}
    unknown = set(data) - known
    if unknown:
        raise SpecError(f"{source}: unknown tables {sorted(unknown)}; expected {sorted(known)}")
    bench = data.get("benchmark", {})
    dataset = data.get("dataset", {})
    if not isinstance(dataset.get("name"), str):
        raise SpecError(f"{source}: [dataset] needs a string field 'name'")
    tasks = bench.get("tasks", bench.get("task"))
    if isinstance(tasks, str):
        tasks = [tasks]
    if not tasks or not all(isinstance(t, str) for t in tasks):
        raise SpecError(f"{source}: [benchmark] needs 'tasks', a list of task names")
    profile = bench.get("profile", "quick")
    if profile not in PROFILES:
        raise SpecError(f"{source}: [benchmark] profile {profile!r} is not one of {sorted(PROFILES)}")
    seeds = bench.get("seeds", 1)
    if not isinstance(seeds, int) or seeds < 1:
        raise SpecError(f"{source}: [benchmark] seeds must be a positive integer, got {seeds!r}")
    standard_check = bench.get("standard_check")
    if standard_check is not None and not isinstance(standard_check, str):
        raise SpecError(f"{source}: [benchmark] standard_check must be an attack name, got {standard_check!r}")
    ranking_utility = bench.get("ranking_utility")
    if ranking_utility is not None and not isinstance(ranking_utility, str):
        raise SpecError(f"{source}: [benchmark] ranking_utility must be a metric name, got {ranking_utility!r}")
    canaries = bench.get("canaries", 0)
    if not isinstance(canaries, int) or isinstance(canaries, bool) or canaries < 0:
        raise SpecError(f"{source}: [benchmark] canaries must be a non-negative integer (the number "
                        f"of membership canaries; 0: none), got {canaries!r}")
    unknown_keys = set(bench) - {"name", "description", "tasks", "task", "seeds", "seed", "profile",
                                 "standard_check", "ranking_utility", "canaries"}
    if unknown_keys:
        raise SpecError(f"{source}: [benchmark] has unknown fields {sorted(unknown_keys)}")
    # A swept [dataset] parameter is checked here, where the file is named.
    expand_sweep(f"{source}: [dataset]", {k: v for k, v in dataset.items() if k != "name"})
    where, items = _examples_table(data, source)
    return BenchmarkSpec(
        name=str(bench.get("name", Path(source).parent.name or "benchmark")),
        description=str(bench.get("description", "")),
        dataset=dataset["name"],
        dataset_params=tuple(sorted((k, v) for k, v in dataset.items() if k != "name")),
        tasks=tuple(tasks),
        sanitizers=_plugin_tables(data, "sanitizers", source, required=True),
        attacks=_plugin_tables(data, "attacks", source, required=False),
        metrics=_plugin_tables(data, "metrics", source, required=False),
        seeds=seeds,
        seed=int(bench.get("seed", 0)),
        profile=profile,
        source=source,
        standard_check=standard_check,
        ranking_utility=ranking_utility,
        examples_where=where,
        examples_items=items,
        references=_reference_tables(data, source),
        canaries=canaries,
    )


def _reference_tables(data: dict[str, Any], source: str) -> tuple[Reference, ...]:
    tables = data.get("reference", [])
    if not isinstance(tables, list):
        raise SpecError(f"{source}: reference must be an array of tables ([[reference]])")
    references = []
    for index, table in enumerate(tables, start=1):
        where = f"{source}: [[reference]] #{index}"
        if not isinstance(table, dict):
            raise SpecError(f"{where} is not a table")
        unknown = set(table) - {"source", "sanitizer", "column", "value", "range", "task"}
        if unknown:
            raise SpecError(f"{where} has unknown fields {sorted(unknown)}")
        for key in ("source", "sanitizer", "column"):
            if not isinstance(table.get(key), str) or not table[key]:
                raise SpecError(f"{where} needs a string field {key!r}")
        if ("value" in table) == ("range" in table):
            raise SpecError(f"{where} needs exactly one of 'value' (a number) and 'range' ([low, high])")
        bounds = [table["value"]] * 2 if "value" in table else table["range"]
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
                or bounds[0] > bounds[1]):
            raise SpecError(f"{where}: value must be a number and range [low, high] with low <= high, "
                            f"got {table.get('value', table.get('range'))!r}")
        task = table.get("task")
        if task is not None and not isinstance(task, str):
            raise SpecError(f"{where}: task must be a task name, got {task!r}")
        references.append(Reference(table["source"], table["sanitizer"], table["column"],
                                    float(bounds[0]), float(bounds[1]), task))
    return tuple(references)


def _examples_table(data: dict[str, Any], source: str) -> tuple[tuple[tuple[str, Any], ...] | None, int | None]:
    if "examples" not in data:
        return None, None
    table = data["examples"]
    if not isinstance(table, dict) or set(table) - {"where", "items"}:
        raise SpecError(f"{source}: [examples] takes 'where' (an inline table of parameter values) "
                        "and 'items' (a positive integer)")
    where = table.get("where", {})
    if not isinstance(where, dict) or any(isinstance(v, (dict, list)) for v in where.values()):
        raise SpecError(f"{source}: [examples] where must map parameter names to single values, got {where!r}")
    items = table.get("items")
    if items is not None and (not isinstance(items, int) or isinstance(items, bool) or items < 1):
        raise SpecError(f"{source}: [examples] items must be a positive integer, got {items!r}")
    return tuple(sorted(where.items())), items


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets or quotes."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare word is a string: `mode=entropy`


def parse_dataset_arg(text: str) -> tuple[str, dict[str, Any]]:
    """``celeba:root=/data/celeba`` -> ("celeba", {"root": "/data/celeba"}); a list value is kept
    as it is (a data sweep, as in a spec's ``[dataset]`` table)."""
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise SpecError(f"--dataset {text!r} has no name (expected NAME[:key=value,...])")
    params: dict[str, Any] = {}
    for part in split_top_level(rest):
        key, eq, raw = part.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"--dataset {text!r}: {part!r} is not key=value")
        params[key.strip()] = _parse_value(raw.strip())
    return name, params


def parse_plugin_arg(text: str) -> list[PluginConfig]:
    """``blur:sigma=2`` or ``blur:sigma=[1,2,4]`` (a sweep) or ``identity`` -> configurations."""
    name, _, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise SpecError(f"plugin argument {text!r} has no name (expected NAME[:key=value,...])")
    params: dict[str, Any] = {}
    for part in split_top_level(rest):
        key, eq, raw = part.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"plugin argument {text!r}: {part!r} is not key=value")
        params[key.strip()] = _parse_value(raw.strip())
    return expand_sweep(name, params)
