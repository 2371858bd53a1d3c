"""Print the lowest versions pyproject.toml allows, as pip requirement lines (`name==X`).

Used by .ci/lowest-deps. Every requirement of [project].dependencies and of the extras named
with --extra must have a lower bound (`>=X`, `~=X` or `==X`); `>=X` and `~=X` become `==X`.
--override NAME==X replaces a dependency's pin (torch: the CPU build this machine's index serves)
and must name a dependency that pyproject.toml declares. Exits 1 with one line per problem.

    python .ci/lowest_pins.py [--extra dev] [--override torch==2.13.0] [pyproject.toml]
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

# name, optional [extras], then the specifiers and an optional `; marker` (PEP 508, no URLs).
REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?"
    r"\s*(?P<specs>[^;]*?)\s*(?:;\s*(?P<marker>.+?))?\s*$")
SPECIFIER = re.compile(r"^\s*(?P<op>===|==|~=|!=|<=|>=|<|>)\s*(?P<version>[^\s,]+)\s*$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lowest(requirement: str) -> str:
    """`name[extras]==X[; marker]` for one requirement string; ValueError if it has no floor."""
    match = REQUIREMENT.match(requirement)
    if not match:
        raise ValueError(f"cannot parse requirement {requirement!r}")
    name, extras, specs, marker = match.group("name", "extras", "specs", "marker")
    floor = None
    for spec in filter(None, (s.strip() for s in specs.strip("()").split(","))):
        parsed = SPECIFIER.match(spec)
        if not parsed:
            raise ValueError(f"{name}: cannot parse specifier {spec!r}")
        op, version = parsed.group("op", "version")
        if op in {">=", "~=", "==", "==="} and "*" not in version:
            floor = version
        elif op == ">":
            raise ValueError(f"{name}: '>{version}' has no lowest version; write '>=' with the "
                             "lowest version that works")
    if floor is None:
        raise ValueError(f"{name} has no lower bound in pyproject.toml; add one ('{name}>=X', X "
                         "the lowest version that installs and passes the suite)")
    pin = f"{name}{f'[{extras}]' if extras else ''}=={floor}"
    return pin + (f"; {marker}" if marker else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", nargs="?", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--extra", action="append", default=[], help="an optional-dependencies group")
    parser.add_argument("--override", action="append", default=[], metavar="NAME==X",
                        help="pin this dependency to X instead of its lower bound")
    args = parser.parse_args(argv)

    project = tomllib.loads(args.pyproject.read_text(encoding="utf-8"))["project"]
    requirements = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    problems = []
    for extra in args.extra:
        if extra not in optional:
            problems.append(f"no extra {extra!r} in [project.optional-dependencies]")
        requirements += optional.get(extra, [])

    overrides = {}
    for override in args.override:
        name = REQUIREMENT.match(override)
        if not name or "==" not in override:
            problems.append(f"--override {override!r}: expected NAME==VERSION")
            continue
        overrides[canonical(name.group("name"))] = override.strip()

    pins, used = [], set()
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        name = canonical(match.group("name")) if match else None
        if name in overrides:
            used.add(name)
            pin = overrides[name]
        else:
            try:
                pin = lowest(requirement)
            except ValueError as error:
                problems.append(str(error))
                continue
        if pin not in pins:
            pins.append(pin)
    for name in overrides.keys() - used:
        problems.append(f"--override {overrides[name]}: {name} is not a dependency in {args.pyproject}")

    if problems:
        for problem in problems:
            print(f"lowest_pins: {problem}", file=sys.stderr)
        return 1
    print("\n".join(pins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
