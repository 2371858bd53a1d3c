"""What a run says while it runs: bars on a terminal, one line per finished job elsewhere.

A log file or a CI console gets no bars (each redraw of a bar is another line there: 190 KB for
the default run); it gets a line per finished job instead, with the cells done so far and their
statuses, which is what a reader of a log looks for.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from typing import IO, Iterable


def _words(text: str) -> list[str]:
    """``text``'s words, a plugin label's parameters and the separators '-', '_' and ':' dropped,
    so that "adversarial-classifier" and "adversarial classifier" read the same."""
    plain = re.sub(r"\([^)]*\)", "", text.lower())
    return [w for w in re.split(r"[\s/:_-]+", plain) if w]


def bar_label(label: str, desc: str) -> str:
    """A bar's label: the cell's ``label`` and the plugin's ``desc``, without the leading words of
    ``desc`` that only repeat the end of ``label`` ("smiling/identity adversarial-classifier"
    and "adversarial classifier" make "smiling/identity adversarial-classifier")."""
    if not label:
        return desc
    known, said = _words(label), desc.split()
    rest = desc
    for cut in range(len(said), 0, -1):
        head = _words(" ".join(said[:cut]))
        if head and len(head) <= len(known) and known[-len(head):] == head:
            rest = " ".join(said[cut:])
            break
    return f"{label} {rest.lstrip(':,;- ')}".strip()


class JobLines:
    """One line per finished job, for a stderr that is not a terminal."""

    def __init__(self, total_cells: int, stream: IO[str] | None = None) -> None:
        self.total = total_cells
        self.done = 0
        self.started = time.monotonic()
        self.stream = stream

    def job_done(self, label: str, seed: int, statuses: Iterable[str], lost: str = "") -> None:
        counted = Counter(statuses)
        cells = sum(counted.values())
        self.done += cells
        width = len(str(self.total))
        what = ", ".join(f"{n} {status}" for status, n in sorted(counted.items())) or "no cells stored"
        if lost:
            what += f"; lost with its worker ({lost})"
        elapsed = time.monotonic() - self.started
        print(f"ppbench: [{self.done:>{width}}/{self.total} cells, {elapsed:6.1f}s] {label} seed {seed}: "
              f"{what}", file=self.stream or sys.stderr, flush=True)
