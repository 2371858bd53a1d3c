"""The ``ppbench`` command: list plugins, run a benchmark, print and publish leaderboards."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Sequence

from .board_commands import cmd_leaderboard, cmd_publish, cmd_show
from .cache_admin import CacheError
from .planning import resolve_device
from .run_command import cmd_reveal, cmd_run
from .spec import SpecError
from .sealing import SealError
from .store import StoreError

DEVICES = "auto, cpu, cuda, cuda:N"


class UsageError(Exception):
    """A command line argparse refuses (unknown flag, bad value): reported in one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (the usage is one ``--help`` away), raised rather than
    exiting, so that :func:`main` reports them like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: error: {message} (see `{self.prog} --help`)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def device_arg(text: str) -> str:
    """The device's spelling (auto, cpu, cuda, cuda:N); whether it exists is checked by
    :func:`~ppbench.planning.resolve_device` when the command runs."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"unknown device {text}; accepted: {DEVICES}")
    return text


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
            print(f"  {row['name']} v{row['plugin_version']}  [{row['distribution']} {row['version']}]  "
                  f"{row['description']}")
            params = ", ".join(f"{k}={v!r}" for k, v in row.get("params", {}).items())
            if params:
                print(f"      parameters: {params}")
            if kind == "datasets":
                print("      tasks:")
                for task in row["task_details"]:
                    print(f"        {task['name']}: hide {task['sensitive']}; keep (utility) "
                          f"{', '.join(task['utility']) or 'nothing named'}")
            if row.get("capabilities"):
                print(f"      capabilities: {', '.join(row['capabilities'])}")
            if kind == "sanitizers":
                print(f"      inputs: {', '.join(row['inputs'])}")
            if kind == "attacks":
                requires = ", ".join(row["requires"]) or "nothing beyond the standard view"
                print(f"      attacker knowledge: {row['knowledge']}; threat model: {row['threat_model']}: "
                      f"{row['threat_model_description']}")
                print(f"      requires: {requires}; scoring: {row['kind']}")
        print()
    if info["failures"]:
        print("Plugins that failed to load:")
        for failure in info["failures"]:
            print(f"  {failure['plugin']} ({failure['distribution']}): {failure['error']}")
    return 0


def cmd_check_harness(args: argparse.Namespace) -> int:
    from .sanity import check_harness

    device = resolve_device(args.device)
    print("ppbench: running the sanity gates (identity reaches the ceiling, blackout sits at "
          "chance, the Bayes accuracy on gaussians2d)", file=sys.stderr)
    gates = check_harness(args.keep, profile=args.profile, seed=args.seed,
                          device=device, show_progress=not args.no_progress and sys.stderr.isatty())
    for gate in gates:
        print(gate.line())
    failed = [g for g in gates if not g.passed]
    print(f"{len(gates) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import cmd_new as new

    return new(args)


def cmd_check(args: argparse.Namespace) -> int:
    from .conformance import cmd_check as check

    return check(args)


def cmd_cache_info(args: argparse.Namespace) -> int:
    from .cache_admin import info, resolve_cache_dir

    for line in info(resolve_cache_dir(args.cache)).lines():
        print(line)
    return 0


def cmd_cache_prune(args: argparse.Namespace) -> int:
    from .cache_admin import prune, resolve_cache_dir

    root = resolve_cache_dir(args.cache)
    print(prune(root, args.older_than).line(root))
    return 0


def add_board_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=["text", "md", "csv", "json", "html"],
                        help="text (default): the key figures in a table that fits 120 columns; "
                             "md, csv, json, html: every figure, with footnotes")
    parser.add_argument("--wide", action="store_true",
                        help="text: every attack's and metric's column, however wide")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ppbench", description="Benchmark image sanitizers against privacy attacks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = sub.add_parser("list", help="list data sets, sanitizers, attacks and metrics")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_list)

    runner = sub.add_parser("run", help="run a benchmark and print its leaderboard",
                            description="Run the cells of a benchmark spec that the store does not "
                                        "hold yet (the default benchmark when no spec is given); "
                                        "flags override the spec.")
    runner.add_argument("spec", nargs="?", help="benchmark spec (TOML), or a published benchmark's "
                                                "name (mnist5k); default: the default benchmark")
    runner.add_argument("--dataset", metavar="NAME[:k=v,...]",
                        help="data set, with loader parameters, e.g. celeba:root=/data/celeba")
    runner.add_argument("--task", action="append", help="task name (repeatable)")
    runner.add_argument("--sanitizer", action="append", metavar="NAME[:k=v,...]",
                        help="sanitizer configuration; a list value sweeps, e.g. blur:sigma=[1,2,4]")
    runner.add_argument("--attack", action="append", metavar="NAME[:k=v,...]")
    runner.add_argument("--metric", action="append", metavar="NAME[:k=v,...]")
    runner.add_argument("--seeds", type=positive_int, help="number of seeds (replicates)")
    runner.add_argument("--seed", type=int, help="first run seed")
    runner.add_argument("--profile", choices=["quick", "standard", "paper"])
    runner.add_argument("--executor", default=os.environ.get("PPBENCH_EXECUTOR", "auto"),
                        choices=["auto", "local", "process", "ray"],
                        help="where jobs run: this process, a pool of worker processes, or a Ray "
                             "cluster (RAY_ADDRESS, else a local one; pip install 'ppbench[ray]'); "
                             "auto (default, or $PPBENCH_EXECUTOR): a pool of one worker per core "
                             "on a multi-core CPU, this process on a GPU")
    runner.add_argument("--workers", type=positive_int, default=None,
                        help="workers of the process executor, CPUs of a local Ray cluster "
                             "(default: one per core)")
    runner.add_argument("--batch-attacks", choices=["auto", "on", "off"], default="auto",
                        help="run a batchable attack (the adversarial classifier) on several "
                             "sanitizer configurations at once, training their classifiers as "
                             "one network; auto: on a GPU")
    runner.add_argument("--ray-cache", choices=["shared", "object-store"], default="shared",
                        help="ray: the --cache folder is on a file system every node sees "
                             "(shared), or fits travel with the jobs through Ray (object-store)")
    runner.add_argument("--device", default="auto", type=device_arg,
                        help="auto (CUDA when present), cpu, cuda, cuda:N")
    runner.add_argument("--retry-errors", action="store_true", help="run cells stored as errors again")
    runner.add_argument("--sealed", action="store_true",
                        help="draw the data with a secret salt kept beside the store, so that no "
                             "plugin can regenerate the test items; `ppbench reveal` publishes it")
    runner.add_argument("--salt", metavar="HEX", help="reproduce a revealed sealed run")
    runner.add_argument("--isolation", choices=["process", "none"], default="process",
                        help="process (default): every fit and cell runs in a warm child process "
                             "that holds only what it is granted; none: in this process, faster "
                             "to debug")
    runner.add_argument("--rerun", action="append", metavar="PLUGIN",
                        help="recompute the stored cells of this attack or metric (repeatable), "
                             "e.g. while developing it; other cells are reused")
    runner.add_argument("--time-limit", type=float, help="seconds per fit and per cell (default: profile's)")
    runner.add_argument("--no-progress", action="store_true",
                        help="no progress output (bars on a terminal, else a line per finished job)")
    runner.add_argument("--profile-run", nargs="?", const="ppbench-profile.csv", metavar="CSV",
                        help="write where the time went, per job and per cell and phase (data, "
                             "fit, transform, train, predict, scoring, store, ...), to CSV "
                             "(default ppbench-profile.csv) and print a summary")
    add_board_format(runner)
    runner.set_defaults(func=cmd_run)

    board = sub.add_parser("leaderboard", help="tables from the results store")
    board.add_argument("spec", nargs="?", help="restrict to the cells of this spec")
    board.add_argument("--task", action="append", help="only this task's boards (repeatable)")
    add_board_format(board)
    board.add_argument("--out", help="write files into this folder instead of printing (md, csv, "
                                     "json and html unless --format names one)")
    board.set_defaults(func=cmd_leaderboard)

    publisher = sub.add_parser("publish", help="write leaderboards/<benchmark>/: spec, tables, plots, HTML")
    publisher.add_argument("spec", nargs="?", help="benchmark spec; default: the default benchmark")
    publisher.add_argument("--out", help="folder (default: leaderboards/<benchmark name>)")
    publisher.add_argument("--cache", help="where the run left its fits, for the spec's [examples] figures "
                                           "(default: $PPBENCH_CACHE, else the per-user cache folder)")
    publisher.add_argument("--site-only", action="store_true",
                           help="only regenerate the static site (every folder's pages and the front "
                                "page) from the published folders under --root; needs no store")
    publisher.add_argument("--root", default="leaderboards",
                           help="the folder of published benchmarks, for --site-only (default: leaderboards)")
    publisher.set_defaults(func=cmd_publish)

    shower = sub.add_parser("show", help="one stored cell in full: figures, diagnostics, budget, provenance",
                            description="Print a stored cell: its configuration, status and message, "
                                        "figures with intervals, diagnostics, the budget its figure "
                                        "was produced with, and its provenance.")
    shower.add_argument("cell", nargs="?", help="the cell's key, or a unique prefix of it (a board's "
                                                "JSON lists them under cell_keys)")
    shower.add_argument("--sanitizer", help="every cell of this sanitizer label (as on the board)")
    shower.add_argument("--plugin", help="every cell of this attack or metric label (as on the board)")
    shower.add_argument("--seed", type=int, help="only this run seed")
    shower.add_argument("--task", help="only this task")
    shower.set_defaults(func=cmd_show)

    revealer = sub.add_parser("reveal", help="publish the salt of the store's sealed run, so "
                                             "that anyone can reproduce it")
    revealer.set_defaults(func=cmd_reveal)
    checker = sub.add_parser("check-harness", help="run the sanity gates on this machine",
                             description="Known answers a trustworthy harness must reproduce: the "
                                         "identity sanitizer reaches the ceiling, blackout sits at "
                                         "chance, the adversary reaches the Bayes accuracy on "
                                         "gaussians2d. Exit status 1 when a gate fails.")
    checker.add_argument("--profile", default="quick", choices=["quick", "standard", "paper"])
    checker.add_argument("--seed", type=int, default=0)
    checker.add_argument("--device", default="auto", type=device_arg,
                         help="auto (CUDA when present), cpu, cuda, cuda:N")
    checker.add_argument("--keep", help="keep the store and cache in this folder (default: a temporary one)")
    checker.add_argument("--no-progress", action="store_true", help="no progress bars")
    checker.set_defaults(func=cmd_check_harness)

    new = sub.add_parser("new", help="write a ready plugin package: ppbench new sanitizer|attack NAME",
                         description="Write ppbench-NAME/: a pyproject.toml with the entry point, a "
                                     "module with a working minimal plugin, tests that use "
                                     "ppbench.testing, and a README. `pip install -e` and "
                                     "`pytest` pass on it as written.")
    new.add_argument("kind", choices=["sanitizer", "attack"])
    new.add_argument("name", help="plugin name: lowercase letters, digits, hyphens (e.g. my-blur)")
    new.add_argument("--dir", help="where to write ppbench-NAME/ (default: the current folder)")
    new.set_defaults(func=cmd_new)

    conformance = sub.add_parser(
        "check", help="run the conformance suite against an installed sanitizer or attack",
        description="Check an installed plugin on a toy data set, rule by rule: the contract, "
                    "determinism under the same seed, no in-place edits, the device and dtype "
                    "rules, the time for 1,000 images, and for attacks the declared threat "
                    "model. Prints a pass/fail table; exit status 1 when a rule fails.")
    conformance.add_argument("name", help="a registered sanitizer or attack (see `ppbench list`)")
    conformance.add_argument("--params", metavar="k=v,...",
                             help="constructor parameters, spelled as in `ppbench run --sanitizer "
                                  "NAME:k=v,...`; default: the plugin's defaults")
    conformance.add_argument("--device", default="auto", type=device_arg,
                             help="auto (CUDA when present), cpu, cuda, cuda:N: where the device "
                                  "rule and the timing run")
    conformance.set_defaults(func=cmd_check)

    cache = sub.add_parser("cache", help="show or empty the cache of fitted sanitizers and shared models",
                           description="The cache folder: --cache, else $PPBENCH_CACHE, else the "
                                       "per-user cache folder (e.g. ~/.cache/ppbench).")
    cache_sub = cache.add_subparsers(dest="action", required=True, metavar="info|prune")
    cache_info = cache_sub.add_parser("info", help="the cache folder, its size, the size per entry kind")
    cache_info.set_defaults(func=cmd_cache_info)
    cache_prune = cache_sub.add_parser("prune", help="delete the cache's entries")
    cache_prune.add_argument("--older-than", type=non_negative_float, metavar="DAYS",
                             help="only entries written more than DAYS days ago")
    cache_prune.set_defaults(func=cmd_cache_prune)

    for p in (runner, board, publisher, revealer, shower):
        p.add_argument("--store", default=os.environ.get("PPBENCH_STORE", "results.db"),
                       help="SQLite results file (default: results.db, or $PPBENCH_STORE)")
    for p in (runner, cache_info, cache_prune):
        p.add_argument("--cache", help="folder for fitted sanitizers and shared models (default: "
                                       "$PPBENCH_CACHE, else the per-user cache folder)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return args.func(args)
    except (SpecError, StoreError, CacheError, SealError, KeyError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"ppbench: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ppbench: interrupted; finished cells are stored, run again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ppbench list | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
