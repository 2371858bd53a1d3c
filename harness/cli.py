"""The ``ppbench`` command: list plugins, run a benchmark, print and publish leaderboards."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from .spec import BenchmarkSpec, SpecError, load_spec, parse_plugin_arg

DEFAULT_BENCHMARK = "synthfaces"


def default_spec_path() -> Path:
    """The default benchmark's spec: beside the source tree, else under the working directory."""
    relative = Path("leaderboards") / DEFAULT_BENCHMARK / "benchmark.toml"
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (root / relative).exists():
            return root / relative
    raise SpecError(f"no default benchmark found ({relative} beside the ppbench sources or in the "
                    f"current directory); pass a spec file")


def _plugin_args(values: Sequence[str] | None) -> tuple:
    configs = []
    for value in values or ():
        configs.extend(parse_plugin_arg(value))
    return tuple(dict.fromkeys(configs))


def spec_from_args(args: argparse.Namespace) -> BenchmarkSpec:
    spec = load_spec(args.spec if args.spec else default_spec_path())
    flags_used = any([args.dataset, args.task, args.sanitizer, args.attack, args.metric])
    overrides: dict[str, Any] = dict(
        tasks=tuple(args.task or ()),
        sanitizers=_plugin_args(args.sanitizer),
        attacks=_plugin_args(args.attack),
        metrics=_plugin_args(args.metric),
        seeds=args.seeds, seed=args.seed, profile=args.profile,
    )
    if args.dataset and args.dataset != spec.dataset:
        from .registry import get_registry

        dataset = get_registry().dataset(args.dataset)
        overrides.update(dataset=args.dataset, dataset_params=(),
                         tasks=tuple(args.task or ()) or tuple(t.name for t in dataset.tasks))
    spec = spec.with_overrides(**overrides)
    if spec.standard_check and spec.standard_check not in {c.name for c in spec.attacks}:
        spec = replace(spec, standard_check=None)  # --attack left the standard check out
    if flags_used:
        spec = spec.with_overrides(source=f"{spec.source} + flags")
    return spec


def cmd_list(args: argparse.Namespace) -> int:
    from .registry import describe, get_registry

    info = describe(get_registry())
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    from .kinds import PLUGIN_KINDS

    for kind, title in ((k.name, k.title) for k in PLUGIN_KINDS.values()):
        print(f"{title}:")
        for row in info[kind]:
            print(f"  {row['name']}  [{row['distribution']} {row['version']}]  {row['description']}")
            params = ", ".join(f"{k}={v!r}" for k, v in row.get("params", {}).items())
            if params:
                print(f"      parameters: {params}")
            if kind == "datasets":
                print(f"      tasks: {'; '.join(row['tasks'])}")
            if row.get("capabilities"):
                print(f"      capabilities: {', '.join(row['capabilities'])}")
            if kind == "sanitizers":
                print(f"      inputs: {', '.join(row['inputs'])}")
            if kind == "attacks":
                requires = ", ".join(row["requires"]) or "nothing beyond the standard view"
                print(f"      requires: {requires}; scoring: {row['kind']}; threat model: "
                      f"{row['threat_model']} ({row['knowledge']}): {row['threat_model_description']}")
        print()
    if info["failures"]:
        print("Plugins that failed to load:")
        for failure in info["failures"]:
            print(f"  {failure['plugin']} ({failure['distribution']}): {failure['error']}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .boards.build import boards_from_store
    from .boards.render import render
    from .runner import RunOptions, resolve_device, run
    from .store import ResultStore

    spec = spec_from_args(args)
    options = RunOptions(store=args.store, cache_dir=args.cache, device=resolve_device(args.device),
                         show_progress=not args.no_progress, time_limit=args.time_limit)
    print(f"ppbench: benchmark {spec.name!r} ({spec.source}), profile {spec.profile}, "
          f"{spec.seeds} seed(s), device {options.device}, store {args.store}", file=sys.stderr)
    report = run(spec, options, executor=args.executor, workers=args.workers,
                 retry_errors=args.retry_errors)
    print(f"ppbench: {report.summary()}", file=sys.stderr)
    for key, message in list(report.errors.items())[:10]:
        if report.statuses.get(key) == "error":
            print(f"  error: {message.splitlines()[0][:200]}", file=sys.stderr)
    boards = boards_from_store(ResultStore(args.store), report.cell_keys, spec.standard_check)
    print(render(boards, args.format))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .boards.build import boards_from_store
    from .boards.render import render, write_leaderboards
    from .runner import plan
    from .store import ResultStore

    if not Path(args.store).exists():
        raise SpecError(f"{args.store}: no results store here; run `ppbench run` first or pass --store")
    spec = load_spec(args.spec) if args.spec else None
    keys = [c.key for c in plan(spec)] if spec else None
    boards = boards_from_store(ResultStore(args.store), keys, spec.standard_check if spec else None)
    if args.out:
        for path in write_leaderboards(boards, Path(args.out), [args.format]):
            print(path)
    else:
        print(render(boards, args.format))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .boards.build import boards_from_store
    from .publish import publish
    from .runner import plan
    from .store import ResultStore

    spec_path = Path(args.spec) if args.spec else default_spec_path()
    spec = load_spec(spec_path)
    cells = plan(spec)
    store = ResultStore(args.store)
    missing = len(cells) - store.frame([c.key for c in cells])["cell_key"].nunique()
    if missing:
        raise SpecError(f"{args.store} lacks {missing} of the {len(cells)} cells of {spec_path}; "
                        f"run `ppbench run {spec_path} --store {args.store}` first")
    out = Path(args.out) if args.out else Path("leaderboards") / spec.name
    boards = boards_from_store(store, [c.key for c in cells], spec.standard_check)
    for path in publish(boards, spec_path.read_text(), out):
        print(path)
    return 0


def cmd_check_harness(args: argparse.Namespace) -> int:
    from .planning import resolve_device
    from .sanity import check_harness

    print("ppbench: running the sanity gates (identity reaches the ceiling, blackout sits at "
          "chance, the Bayes accuracy on gaussians2d)", file=sys.stderr)
    gates = check_harness(args.keep, profile=args.profile, seed=args.seed,
                          device=resolve_device(args.device), show_progress=not args.no_progress)
    for gate in gates:
        print(gate.line())
    failed = [g for g in gates if not g.passed]
    print(f"{len(gates) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ppbench", description="Benchmark image sanitizers against privacy attacks.")
    sub = parser.add_subparsers(dest="command", required=True)

    listing = sub.add_parser("list", help="list data sets, sanitizers, attacks and metrics")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_list)

    runner = sub.add_parser("run", help="run a benchmark and print its leaderboard",
                            description="Run the cells of a benchmark spec that the store does not "
                                        "hold yet (the default benchmark when no spec is given); "
                                        "flags override the spec.")
    runner.add_argument("spec", nargs="?", help="benchmark spec (TOML); default: the default benchmark")
    runner.add_argument("--dataset", help="data set name")
    runner.add_argument("--task", action="append", help="task name (repeatable)")
    runner.add_argument("--sanitizer", action="append", metavar="NAME[:k=v,...]",
                        help="sanitizer configuration; a list value sweeps, e.g. blur:sigma=[1,2,4]")
    runner.add_argument("--attack", action="append", metavar="NAME[:k=v,...]")
    runner.add_argument("--metric", action="append", metavar="NAME[:k=v,...]")
    runner.add_argument("--seeds", type=int, help="number of seeds (replicates)")
    runner.add_argument("--seed", type=int, help="first run seed")
    runner.add_argument("--profile", choices=["quick", "standard", "paper"])
    runner.add_argument("--executor", default="local", choices=["local", "process"])
    runner.add_argument("--workers", type=int, default=2, help="workers of the process executor")
    runner.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    runner.add_argument("--retry-errors", action="store_true", help="run cells stored as errors again")
    runner.add_argument("--time-limit", type=float, help="seconds per fit and per cell (default: profile's)")
    runner.add_argument("--no-progress", action="store_true", help="no progress bars")
    runner.add_argument("--format", default="md", choices=["md", "csv", "json", "html"])
    runner.set_defaults(func=cmd_run)

    board = sub.add_parser("leaderboard", help="tables from the results store")
    board.add_argument("spec", nargs="?", help="restrict to the cells of this spec")
    board.add_argument("--format", default="md", choices=["md", "csv", "json", "html"])
    board.add_argument("--out", help="write files into this folder instead of printing")
    board.set_defaults(func=cmd_leaderboard)

    publisher = sub.add_parser("publish", help="write leaderboards/<benchmark>/: spec, tables, plots, HTML")
    publisher.add_argument("spec", nargs="?", help="benchmark spec; default: the default benchmark")
    publisher.add_argument("--out", help="folder (default: leaderboards/<benchmark name>)")
    publisher.set_defaults(func=cmd_publish)

    checker = sub.add_parser("check-harness", help="run the sanity gates on this machine",
                             description="Known answers a trustworthy harness must reproduce: the "
                                         "identity sanitizer reaches the ceiling, blackout sits at "
                                         "chance, the adversary reaches the Bayes accuracy on "
                                         "gaussians2d. Exit status 1 when a gate fails.")
    checker.add_argument("--profile", default="quick", choices=["quick", "standard", "paper"])
    checker.add_argument("--seed", type=int, default=0)
    checker.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    checker.add_argument("--keep", help="keep the store and cache in this folder (default: a temporary one)")
    checker.add_argument("--no-progress", action="store_true", help="no progress bars")
    checker.set_defaults(func=cmd_check_harness)

    for p in (runner, board, publisher):
        p.add_argument("--store", default=os.environ.get("PPBENCH_STORE", "results.db"),
                       help="SQLite results file (default: results.db, or $PPBENCH_STORE)")
    runner.add_argument("--cache", default=os.environ.get("PPBENCH_CACHE", ".ppbench-cache"),
                        help="folder for fitted sanitizers and shared models")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SpecError, KeyError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"ppbench: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ppbench: interrupted; finished cells are stored, run again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
