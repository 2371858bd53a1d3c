"""Sanity gates: known answers that a trustworthy harness must reproduce on this machine.

``ppbench check-harness`` runs them through the ordinary runner (plugins by name, through the
registry) and prints one line per gate:

- **ceiling**: on the ``identity`` sanitizer (raw data), the standard adversary, retrained on the
  attack split, reaches what the raw-trained reference classifier reads; and the utility metric
  keeps its raw-data ceiling exactly. An under-trained adversary fails here;
- **chance**: on ``blackout`` every attack's advantage interval contains 0 and nothing is kept;
- **Bayes**: on Martinsson et al.'s two Gaussians the adversary reaches the Bayes accuracy
  Φ(√2 / σ) ≈ 0.978 for σ = 0.7 within its interval.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .boards.board import ATTACK, Leaderboard
from .boards.build import boards_from_store
from .planning import RunOptions, plan
from .runner import run
from .spec import BenchmarkSpec, PluginConfig
from .store import ResultStore

STANDARD_CHECK = "adversarial-classifier"
NAIVE_AUDIT = "fixed-classifier"
PROBE = "linear-probe"
UTILITY = "fixed-utility"
GAUSSIAN_STD = 0.7


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


def bayes_accuracy(std: float = GAUSSIAN_STD) -> float:
    """Bayes accuracy of two isotropic Gaussians at (−1, 1) and (1, −1): Φ(√2 / σ)."""
    return 0.5 * (1.0 + math.erf(math.sqrt(2.0) / std / math.sqrt(2.0)))


def _figure(board: Leaderboard, sanitizer: str, attack: str, value: str = "advantage") -> Any:
    column = next(c for c in board.columns
                  if c.key.kind == ATTACK and c.key.plugin == attack and c.key.value == value)
    return board.figure(sanitizer, column)


def _spec(name: str, dataset: str, params: dict[str, Any], task: str, sanitizers: list[str],
          attacks: list[str], metrics: list[str], seed: int, profile: str) -> BenchmarkSpec:
    return BenchmarkSpec(
        name=name, dataset=dataset, tasks=(task,), profile=profile, seed=seed, seeds=1,
        dataset_params=tuple(sorted(params.items())),
        sanitizers=tuple(PluginConfig.make(s) for s in sanitizers),
        attacks=tuple(PluginConfig.make(a) for a in attacks),
        metrics=tuple(PluginConfig.make(m) for m in metrics),
        source=f"check-harness:{name}", standard_check=STANDARD_CHECK)


def _contains(figure: Any, value: float) -> bool:
    return float(figure["ci_low"]) <= value <= float(figure["ci_high"])


def check_harness(work_dir: str | Path | None = None, *, profile: str = "quick", seed: int = 0,
                  device: str = "cpu", show_progress: bool = False,
                  synthfaces_params: dict[str, Any] | None = None,
                  gaussians_params: dict[str, Any] | None = None) -> list[Gate]:
    """Run the gates in ``work_dir`` (a temporary folder when None); return one result each."""
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() if work_dir is None else contextlib.nullcontext(work_dir) as root:
        root = Path(root)
        options = RunOptions(store=str(root / "results.db"), cache_dir=str(root / "cache"),
                             device=device, show_progress=show_progress)
        faces = _spec("faces", "synthfaces", synthfaces_params or {}, "smiling",
                      ["identity", "blackout"], [STANDARD_CHECK, NAIVE_AUDIT, PROBE], [UTILITY],
                      seed, profile)
        points = _spec("points", "gaussians2d", {"std": GAUSSIAN_STD, **(gaussians_params or {})}, "s",
                       ["identity"], [STANDARD_CHECK], [], seed, profile)
        gates: list[Gate] = []
        store = ResultStore(options.store)
        for spec in (faces, points):
            report = run(spec, options)
            failed = {k: m for k, m in report.errors.items() if report.statuses.get(k) == "error"}
            if failed:
                gates.append(Gate(spec.name, False, "cells failed: " + next(iter(failed.values()))))
                return gates
        (faces_board,) = boards_from_store(store, _keys(faces), STANDARD_CHECK)
        (points_board,) = boards_from_store(store, _keys(points), STANDARD_CHECK)
        gates += _ceiling(faces_board) + _chance(faces_board) + _bayes(points_board)
        return gates


def _keys(spec: BenchmarkSpec) -> list[str]:
    return [cell.key for cell in plan(spec)]


def _utility(board: Leaderboard, sanitizer: str) -> Any:
    return board.figure(sanitizer, board.utility_column)


def _ceiling(board: Leaderboard) -> list[Gate]:
    adversary = _figure(board, "identity", STANDARD_CHECK)
    reference = _figure(board, "identity", NAIVE_AUDIT)
    # Both read raw images; the retrained adversary must not fall significantly short.
    reaches = float(adversary["ci_high"]) >= float(reference["mean"])
    gates = [Gate("ceiling (leakage)", reaches,
                  f"{STANDARD_CHECK} on raw images: advantage {adversary['mean']:.3f} "
                  f"[{adversary['ci_low']:.3f}, {adversary['ci_high']:.3f}]; raw-trained reference "
                  f"{reference['mean']:.3f}")]
    utility = _utility(board, "identity")
    kept = math.isfinite(float(utility["mean"])) and float(utility["mean"]) > 0.5
    gates.append(Gate("ceiling (utility)", kept,
                      f"{UTILITY} on raw images: {utility['mean']:.3f} (chance-corrected; 1 = "
                      "every kept attribute read perfectly)"))
    return gates


def _chance(board: Leaderboard) -> list[Gate]:
    gates = []
    for attack in (STANDARD_CHECK, NAIVE_AUDIT, PROBE):
        figure = _figure(board, "blackout", attack)
        gates.append(Gate(f"chance ({attack} on blackout)", _contains(figure, 0.0),
                          f"advantage {figure['mean']:.3f} [{figure['ci_low']:.3f}, "
                          f"{figure['ci_high']:.3f}] must contain 0"))
    utility = _utility(board, "blackout")
    gates.append(Gate("chance (utility of blackout)", abs(float(utility["mean"])) <= 0.05,
                      f"{UTILITY} {utility['mean']:.3f} must be ≈ 0"))
    return gates


def _bayes(board: Leaderboard) -> list[Gate]:
    target = bayes_accuracy()
    figure = _figure(board, "identity", STANDARD_CHECK)
    # Advantage on a balanced binary attribute is 2·bacc − 1.
    low, high = (float(figure["ci_low"]) + 1) / 2, (float(figure["ci_high"]) + 1) / 2
    return [Gate("Bayes (gaussians2d)", low <= target <= high,
                 f"{STANDARD_CHECK} balanced accuracy {(float(figure['mean']) + 1) / 2:.4f} "
                 f"[{low:.4f}, {high:.4f}] must contain Φ(√2/{GAUSSIAN_STD}) = {target:.4f}")]
