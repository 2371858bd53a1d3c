"""``ppbench run`` and ``ppbench reveal``: run a benchmark's missing cells, say where everything
went, and publish a sealed run's salt."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .executors import choose_executor
from .planning import resolve_device
from .spec import BenchmarkSpec, SpecError
from .board_commands import print_boards
from .spec_args import check_rerun, spec_from_args


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
    executor, workers = choose_executor(args.executor, device, args.workers)
    where = f"{workers} worker processes" if executor == "process" else (
        "this process" if executor == "local" else f"ray, {workers} CPUs")
    say(f"benchmark {spec.name} ({spec.source}), data set {spec.dataset}, profile {spec.profile}, "
        f"{spec.seeds} seed(s), device {options.device} ({where}), store {args.store}, "
        f"cache {cache}")
    if salt is not None:
        from .sealing import commitment, salt_file

        print(f"ppbench: sealed run {commitment(salt)[:16]}…: the data are drawn with a secret salt "
              f"kept in {salt_file(args.store)}; `ppbench reveal` publishes it", file=sys.stderr)
    if rerun:
        print(f"ppbench: recomputing the stored cells of {', '.join(rerun)}", file=sys.stderr)
    report = run(spec, options, executor=executor, workers=workers,
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
