"""The ``ppbench`` command: list plugins, run a benchmark, print and publish leaderboards."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from .cache_admin import CacheError
from .planning import check_plugin_params, resolve_device
from .spec import BenchmarkSpec, SpecError, load_spec, parse_dataset_arg, parse_plugin_arg
from .sealing import SealError
from .store import StoreError

DEFAULT_BENCHMARK = "synthfaces"
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


def cmd_run(args: argparse.Namespace) -> int:
    from .boards.build import boards_from_store
    from .cache_admin import check_cache_dir, resolve_cache_dir
    from .runner import RunOptions, plan, run
    from .store import ResultStore, check_store

    # Every input is checked before any work: the spec and flags, the device, the store and the
    # cache folder (a read-only store would otherwise fail only when the first cell is committed).
    spec = spec_from_args(args)
    plan(spec)
    if args.executor == "ray":
        from .ray_executor import import_ray

        import_ray()  # the missing extra is one line, before any work
    rerun = check_rerun(spec, args.rerun)
    device = resolve_device(args.device)
    check_store(args.store, write=True)
    cache = resolve_cache_dir(args.cache)
    check_cache_dir(cache)
    salt = run_salt(args)
    batching = args.batch_attacks == "on" or (args.batch_attacks == "auto"
                                              and device.startswith("cuda"))
    # Bars only where they redraw in place; a log gets a line per finished job instead.
    terminal = sys.stderr.isatty()
    options = RunOptions(store=args.store, cache_dir=str(cache), device=device,
                         show_progress=not args.no_progress and terminal,
                         progress_lines=not args.no_progress and not terminal,
                         time_limit=args.time_limit, salt=salt,
                         isolation=args.isolation, batch_attacks=batching)
    say(f"benchmark {spec.name} ({spec.source}), data set {spec.dataset}, profile {spec.profile}, "
        f"{spec.seeds} seed(s), device {options.device}, store {args.store}, cache {cache}")
    if salt is not None:
        from .sealing import commitment, salt_file

        print(f"ppbench: sealed run {commitment(salt)[:16]}…: the data are drawn with a secret salt "
              f"kept in {salt_file(args.store)}; `ppbench reveal` publishes it", file=sys.stderr)
    if rerun:
        print(f"ppbench: recomputing the stored cells of {', '.join(rerun)}", file=sys.stderr)
    report = run(spec, options, executor=args.executor, workers=args.workers,
                 retry_errors=args.retry_errors, rerun=rerun,
                 cache_transfer=args.executor == "ray" and args.ray_cache == "object-store")
    say(report.summary())
    if args.profile_run:
        from .profiling import summarize, write_profile

        write_profile(report.profile, Path(args.profile_run), report.wall_time)
        print(f"ppbench: {summarize(report.profile, report.wall_time)}\n"
              f"ppbench: per-job and per-cell phases written to {args.profile_run}", file=sys.stderr)
    for key, message in list(report.errors.items())[:10]:
        if report.statuses.get(key) == "error":
            print(f"  error: {shorten(message.splitlines()[0], 240)}", file=sys.stderr)
    boards = boards_from_store(ResultStore(args.store), report.cell_keys, spec.standard_check,
                               spec.ranking_utility)
    print_boards(boards, args)
    sys.stdout.flush()  # the table before the summary, when both go to one terminal or log
    for line in closing_summary(spec, args.store, cache, len(report.cell_keys)):
        say(line)
    return 0


def say(text: str) -> None:
    """One message on stderr, on one line (a log is searched line by line)."""
    print(f"ppbench: {text}", file=sys.stderr)


def closing_summary(spec: BenchmarkSpec, store: str, cache: Path, cells: int) -> list[str]:
    """Where the run left everything: the store, the cache, and the published folder (or how to
    publish one)."""
    from .cache_admin import human_size, info

    cached = info(cache)
    lines = [f"results: {cells} cells in the store {Path(store).resolve()}",
             f"fits and shared models: {cache} ({human_size(cached.total)}; `ppbench cache info`)"]
    if spec.source.endswith(" + flags"):
        lines.append("not published: flags changed the spec, and `ppbench publish` takes the spec "
                     "file a board is reproduced from; put the flags' settings in a copy of "
                     f"{spec.source.removesuffix(' + flags')} to publish")
        return lines
    source = Path(spec.source) if spec.source else None
    published = source.parent if source is not None and source.name == "benchmark.toml" \
        and (source.parent / "leaderboard.json").exists() else None
    spec_arg = f" {source}" if source is not None and source.exists() else ""
    command = f"`ppbench publish{spec_arg} --store {store}`"
    if published is not None:
        lines.append(f"published board: {published}/ (from its own run; {command} republishes it "
                     "from this store, and the site)")
    else:
        lines.append(f"not published: {command} writes leaderboards/{spec.name}/ and the site")
    return lines


def shorten(text: str, width: int) -> str:
    """``text`` cut at a word boundary with an ellipsis when longer than ``width`` (the full
    message is stored with the cell)."""
    if len(text) <= width:
        return text
    cut = text[:width - 1]
    return (cut[:cut.rfind(" ")] if " " in cut else cut) + "…"


def run_salt(args: argparse.Namespace) -> str | None:
    """The salt of this run: ``--salt`` (reproducing a revealed sealed run), a new or resumed one
    for ``--sealed``, else None. The store records its commitment before any work."""
    from .sealing import check_salt, commitment, find_salt, keep_salt, new_salt
    from .store import ResultStore

    if args.salt and args.sealed:
        raise SpecError("--salt reproduces a revealed sealed run and --sealed starts a new one; "
                        "give one of them")
    if args.salt:
        salt = check_salt(args.salt)
        ResultStore(args.store).record_seal(commitment(salt), salt)
        return salt
    if not args.sealed:
        return None
    store = ResultStore(args.store)
    unrevealed = [seal for seal, revealed in store.seals() if revealed is None]
    if unrevealed:  # resume the store's sealed run rather than start a second one
        return find_salt(args.store, unrevealed[-1])
    salt = new_salt()
    store.record_seal(keep_salt(args.store, salt))
    return salt


def store_seal(store: Any, public: bool = False) -> str:
    """The seal whose cells a board shows: the store's latest sealed run, or '' for none."""
    seals = store.seals()
    return "" if public or not seals else seals[-1][0]


def cmd_reveal(args: argparse.Namespace) -> int:
    from .sealing import find_salt
    from .store import ResultStore, check_store

    if not Path(args.store).exists():
        raise SpecError(f"{args.store}: no results store here; pass --store")
    check_store(args.store, write=True)
    store = ResultStore(args.store)
    hidden = [seal for seal, salt in store.seals() if salt is None]
    if not hidden:
        print(f"ppbench: {args.store} holds no unrevealed sealed run", file=sys.stderr)
        return 0
    for seal in hidden:
        salt = find_salt(args.store, seal)
        store.reveal_seal(seal, salt)
        print(f"sealed run {seal}: salt {salt}")
        print(f"  reproduce it with: ppbench run --salt {salt} ...", file=sys.stderr)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .boards.build import boards_from_store
    from .boards.render import write_leaderboards
    from .runner import plan
    from .store import ResultStore, check_store

    if not Path(args.store).exists():
        raise SpecError(f"{args.store}: no results store here; run `ppbench run` first or pass --store")
    check_store(args.store, write=False)
    spec = load_spec(spec_path_arg(args.spec)) if args.spec else None
    keys = [c.key for c in plan(spec, seal=store_seal(ResultStore(args.store)))] if spec else None
    boards = boards_from_store(ResultStore(args.store), keys, spec.standard_check if spec else None,
                               spec.ranking_utility if spec else None)
    if args.task:
        known = sorted({b.task for b in boards})
        unknown = [t for t in args.task if t not in known]
        if unknown:
            raise SpecError(f"--task {unknown[0]}: no board of that task in {args.store}; its tasks: "
                            f"{', '.join(known) or 'none'}")
        boards = [b for b in boards if b.task in args.task]
    if args.out:
        from .boards.render import FILE_FORMATS

        for path in write_leaderboards(boards, Path(args.out), [args.format] if args.format else FILE_FORMATS):
            print(path)
    else:
        print_boards(boards, args)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .boards.build import boards_from_store
    from .publish import publish
    from .runner import plan
    from .site import build_site
    from .store import ResultStore, check_store

    if args.site_only:
        if args.spec:
            raise SpecError("--site-only regenerates the pages of every published folder; it takes no spec")
        try:
            pages = build_site(args.root)
        except ValueError as exc:
            raise SpecError(str(exc)) from None
        for path in pages:
            print(path)
        return 0
    if not Path(args.store).exists():
        raise SpecError(f"{args.store}: no results store here; run `ppbench run` first or pass --store")
    check_store(args.store, write=False)
    spec_path = spec_path_arg(args.spec)
    spec = load_spec(spec_path)
    store = ResultStore(args.store)
    cells = plan(spec, seal=store_seal(store))
    missing = len(cells) - store.frame([c.key for c in cells])["cell_key"].nunique()
    if missing:
        raise SpecError(f"{args.store} lacks {missing} of the {len(cells)} cells of {spec_path}; "
                        f"run `ppbench run {spec_path} --store {args.store}` first")
    out = Path(args.out) if args.out else Path("leaderboards") / spec.name
    boards = boards_from_store(store, [c.key for c in cells], spec.standard_check, spec.ranking_utility)
    examples: dict = {}
    if spec.examples_where is not None:
        from .cache_admin import resolve_cache_dir
        from .examples import draw_examples

        if store_seal(store):
            print("ppbench: note: no example figures for a sealed run (its data needs the salt)",
                  file=sys.stderr)
        else:
            examples, notes = draw_examples(spec, resolve_cache_dir(args.cache), out)
            for note in notes:
                print(f"ppbench: note: examples: {note}", file=sys.stderr)
            from .publish import kept_examples

            for slug, figures in kept_examples(out, [b.slug for b in boards], examples).items():
                print(f"ppbench: note: examples: kept {', '.join(name for name, _ in figures)} from the "
                      f"earlier publication (its fits are not in this cache)", file=sys.stderr)
                examples[slug] = figures
    from .membership_roc import draw_membership_roc

    for slug, figures in draw_membership_roc(store, boards, [c.key for c in cells], out).items():
        examples.setdefault(slug, []).extend(figures)
    for path in publish(boards, spec_path.read_text(), out, examples=examples, references=spec.references):
        print(path)
    # The site covers every folder beside this one: its front page and their pages are rebuilt.
    try:
        pages = build_site(out.parent)
    except ValueError as exc:
        raise SpecError(f"{out} is published, but the site was not rebuilt: {exc}") from None
    for path in pages:
        if path.parent != out:
            print(path)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from .show import show
    from .store import ResultStore, check_store

    if not Path(args.store).exists():
        raise SpecError(f"{args.store}: no results store here; pass --store")
    check_store(args.store, write=False)
    for line in show(ResultStore(args.store).frame(), args.cell, sanitizer=args.sanitizer,
                     plugin=args.plugin, seed=args.seed, task=args.task, store=args.store):
        print(line)
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


def print_boards(boards: Sequence[Any], args: argparse.Namespace) -> None:
    from .boards.render import render
    from .boards.terminal import render_terminal

    fmt = args.format or "text"
    print(render_terminal(boards, wide=args.wide) if fmt == "text" else render(boards, fmt),
          end="" if fmt == "text" else "\n")


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
    runner.add_argument("--executor", default="local", choices=["local", "process", "ray"],
                        help="where jobs run: this process, a pool of worker processes, or a Ray "
                             "cluster (RAY_ADDRESS, else a local one; pip install 'ppbench[ray]')")
    runner.add_argument("--workers", type=positive_int, default=2,
                        help="workers of the process executor; CPUs of a local Ray cluster")
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
