"""Membership ROC curves on log-log axes: what an attack achieves at the low false-positive rates
that matter (Carlini et al.'s LiRA argument: an attack that is right about a few people with
certainty leaks more than its average accuracy says).

For every board with membership attacks, ``ppbench publish`` draws the row and attack with the
highest Algorithm-1 accuracy, the board's strongest membership attack, and beside it the other
membership attacks on the same row: each one's ROC from the per-candidate scores the store holds
(one curve per seed), on log-log axes from one false positive up, with the chance diagonal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .boards.board import ATTACK, Leaderboard, is_finite
from .boards.build import data_labels_of

ROC_PREFIX = "roc-"
ROC_CAPTION = "membership ROC of the strongest attack, log-log"


def roc_path_name(board: Leaderboard) -> str:
    return f"{ROC_PREFIX}{board.slug}.png"


def strongest_membership(board: Leaderboard) -> tuple[str, str, list[str]] | None:
    """``(sanitizer, attack, every membership attack)`` with the highest mean Algorithm-1
    accuracy on ``board``; None when it has no membership figure."""
    columns = [c for c in board.columns if c.key.kind == ATTACK and c.threat_model == "membership"
               and c.key.value == "accuracy"]
    best, best_value = None, -1.0
    for column in columns:
        for sanitizer in board.ranking["sanitizer"]:
            mean = board.figure(sanitizer, column)["mean"]
            if is_finite(mean) and float(mean) > best_value:
                best, best_value = (sanitizer, column.key.plugin), float(mean)
    if best is None:
        return None
    return best[0], best[1], [c.key.plugin for c in columns]


def draw_membership_roc(store: Any, boards: Sequence[Leaderboard], cell_keys: Sequence[str],
                        out_dir: str | Path) -> dict[str, list[tuple[str, str]]]:
    """The ROC figure of every board with membership attacks, from the per-candidate scores of
    the cells ``cell_keys`` in ``store``; returns, per board slug, the (file name, caption)."""
    import numpy as np
    from sklearn.metrics import roc_curve

    frame = store.frame(cell_keys)
    if frame.empty:
        return {}
    frame = frame[(frame["status"] == "ok") & (frame["scoring"] == "membership")]
    frame = frame.assign(data=data_labels_of(frame)) if len(frame) else frame
    written: dict[str, list[tuple[str, str]]] = {}
    for board in boards:
        strongest = strongest_membership(board)
        if strongest is None:
            continue
        sanitizer, attack, attacks = strongest
        rows = frame[(frame["dataset"] == board.dataset) & (frame["task"] == board.task)
                     & (frame["profile"] == board.profile) & (frame["data"] == board.data)
                     & (frame["sanitizer_label"] == sanitizer)]
        curves: dict[str, list[tuple[Any, Any]]] = {}
        lowest = 1.0
        for label in attacks:
            keys = rows.loc[rows["plugin_label"] == label].sort_values("seed")["cell_key"].unique().tolist()
            stored = store.items(keys)
            for items in (stored[key] for key in keys if key in stored):
                if "scores" in items and "truth" in items and len(set(items["truth"].tolist())) == 2:
                    fpr, tpr, _ = roc_curve(items["truth"], items["scores"])
                    curves.setdefault(label, []).append((fpr, tpr))
                    # The axes start at one false positive.
                    lowest = min(lowest, 1.0 / max(1, int((items["truth"] == 0).sum())))
        if not curves:
            continue
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6.4, 5.2), dpi=120, layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for index, label in enumerate(sorted(curves, key=lambda name: name != attack)):
            for seed_index, (fpr, tpr) in enumerate(curves[label]):
                axes.plot(np.maximum(fpr, lowest), np.maximum(tpr, lowest), color=f"C{index % 10}",
                          linewidth=2.0 if label == attack else 1.0, alpha=1.0 if seed_index == 0 else 0.5,
                          label=label if seed_index == 0 else None, drawstyle="steps-post")
        grid = np.logspace(np.log10(lowest), 0, 50)
        axes.plot(grid, grid, color="0.5", linestyle=":", linewidth=1, label="chance")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlim(lowest, 1.0)
        axes.set_ylim(lowest, 1.05)
        axes.set_xlabel("false-positive rate (non-members called members)")
        axes.set_ylabel("true-positive rate (members found)")
        axes.set_title(f"{board.title}\n{sanitizer}: {ROC_CAPTION}", fontsize=9)
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=7, loc="lower right")
        figure.text(0.01, 0.005, "one curve per seed (fainter: later seeds); bold: the strongest attack",
                    fontsize=7, color="0.3", ha="left", va="bottom")
        figure.get_layout_engine().set(rect=(0, 0.03, 1, 0.97))
        path = Path(out_dir) / roc_path_name(board)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", metadata={"Software": None})
        written[board.slug] = [(path.name, f"{ROC_CAPTION}, {board.title}")]
    return written
