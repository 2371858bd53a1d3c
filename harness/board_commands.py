"""``ppbench leaderboard``, ``ppbench publish`` and ``ppbench show``: boards, the published
folder and its site, and one stored cell in full, from a results store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from .spec import SpecError, load_spec
from .spec_args import spec_path_arg


def store_seal(store: Any, public: bool = False) -> str:
    """The seal whose cells a board shows: the store's latest sealed run, or '' for none."""
    seals = store.seals()
    return "" if public or not seals else seals[-1][0]

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

def print_boards(boards: Sequence[Any], args: argparse.Namespace) -> None:
    from .boards.render import render
    from .boards.terminal import render_terminal

    fmt = args.format or "text"
    print(render_terminal(boards, wide=args.wide) if fmt == "text" else render(boards, fmt),
          end="" if fmt == "text" else "\n")
