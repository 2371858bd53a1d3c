"""The benchmark a command names: a spec file, a published benchmark's name or the default,
with the command line's flags applied and checked before any work."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from .planning import check_plugin_params
from .spec import BenchmarkSpec, SpecError, load_spec, parse_dataset_arg, parse_plugin_arg

DEFAULT_BENCHMARK = "synthfaces"


def published_spec_path(name: str) -> Path | None:
    """A published benchmark's spec by its name (``mnist5k``): leaderboards/<name>/benchmark.toml
    beside the source tree, else under the working directory."""
    relative = Path("leaderboards") / name / "benchmark.toml"
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (root / relative).exists():
            return root / relative
    return None

def default_spec_path() -> Path:
    """The default benchmark's spec: beside the source tree, else under the working directory."""
    found = published_spec_path(DEFAULT_BENCHMARK)
    if found is None:
        raise SpecError(f"no default benchmark found (leaderboards/{DEFAULT_BENCHMARK}/benchmark.toml "
                        f"beside the ppbench sources or in the current directory); pass a spec file")
    return found

def spec_path_arg(text: str | None) -> Path:
    """The spec a command names: a file, or a published benchmark's name, or the default."""
    if not text:
        return default_spec_path()
    path = Path(text)
    if not path.exists() and path.suffix != ".toml" and "/" not in text:
        found = published_spec_path(text)
        if found is not None:
            return found
        root = default_spec_path().parents[1]
        names = sorted(p.parent.name for p in root.glob("*/benchmark.toml"))
        raise SpecError(f"{text}: no such spec file, nor a published benchmark of that name "
                        f"(published in {root}: {', '.join(names)})")
    return path

def _registered(registry: Any, kind: str, name: str, where: str) -> Any:
    try:
        return registry.get(kind, name).obj
    except KeyError as exc:
        raise SpecError(f"{where}: {exc}") from None

def _plugin_args(registry: Any, kind: str, values: Sequence[str] | None) -> tuple:
    configs = []
    for value in values or ():
        for config in parse_plugin_arg(value):
            where = f"--{kind[:-1]} {value}"
            check_plugin_params(_registered(registry, kind, config.name, where), kind, config, where)
            configs.append(config)
    return tuple(dict.fromkeys(configs))

def spec_from_args(args: argparse.Namespace) -> BenchmarkSpec:
    """The spec file (the default benchmark when none is given) with the flags applied. Names and
    parameters are checked here, before anything runs, and each error names the flag or the
    spec file at fault."""
    from .registry import get_registry

    registry = get_registry()
    spec = load_spec(spec_path_arg(args.spec))
    flags_used = any([args.dataset, args.task, args.sanitizer, args.attack, args.metric])
    overrides: dict[str, Any] = dict(
        tasks=tuple(args.task or ()),
        sanitizers=_plugin_args(registry, "sanitizers", args.sanitizer),
        attacks=_plugin_args(registry, "attacks", args.attack),
        metrics=_plugin_args(registry, "metrics", args.metric),
        seeds=args.seeds, seed=args.seed, profile=args.profile,
    )
    if args.dataset:
        name, params = parse_dataset_arg(args.dataset)
        dataset = _registered(registry, "datasets", name, f"--dataset {args.dataset}")
        if name != spec.dataset:
            overrides.update(dataset=name, dataset_params=tuple(sorted(params.items())),
                             tasks=tuple(args.task or ()) or tuple(t.name for t in dataset.tasks))
        elif params:  # the spec's own data set, some of its parameters changed
            overrides.update(dataset_params=tuple(sorted({**dict(spec.dataset_params), **params}.items())))
    spec = spec.with_overrides(**overrides)
    dataset = _registered(registry, "datasets", spec.dataset, f"{spec.source}: [dataset] name")
    for task in spec.tasks:
        try:
            dataset.task(task)
        except KeyError as exc:
            where = f"--task {task}" if args.task else f"{spec.source}: [benchmark] tasks"
            raise SpecError(f"{where}: {exc.args[0]}") from None
    if spec.standard_check and spec.standard_check not in {c.name for c in spec.attacks}:
        spec = replace(spec, standard_check=None)  # --attack left the standard check out
    if spec.ranking_utility and spec.ranking_utility not in {c.name for c in spec.metrics}:
        spec = replace(spec, ranking_utility=None)  # --metric left the ranking utility out
    if flags_used:
        spec = spec.with_overrides(source=f"{spec.source} + flags")
    return spec

def check_rerun(spec: BenchmarkSpec, names: Sequence[str] | None) -> tuple[str, ...]:
    """``--rerun`` names attacks or metrics of the run."""
    plugins = list(dict.fromkeys(c.name for c in (*spec.attacks, *spec.metrics)))
    for name in names or ():
        if name not in plugins:
            what = (" (a sanitizer's fit is reused from the cache: bump its version or run "
                    "`ppbench cache prune`)" if name in {c.name for c in spec.sanitizers} else "")
            raise SpecError(f"--rerun {name}: not an attack or metric of this run{what}; its "
                            f"attacks and metrics: {', '.join(plugins) or 'none'}")
    return tuple(dict.fromkeys(names or ()))
