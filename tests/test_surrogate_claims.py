"""Webster et al.'s private data surrogates on synthfaces: the claims of the synthfaces-surrogates
board (quick profile, CPU, fixed seeds).

1. logan-whitebox: Algorithm-1 accuracy >= 0.8 at the small fit set (n_train = 500), falling by
   >= 0.15 at the largest (2,000). The paper: 99.4% with 5k training images, 62.9% with 26k.
2. latent-recovery stays within 0.1 of 0.5 (the paper: 50-58%).
3. surrogate-utility's gap C - C' is <= 10 points at the largest fit set.

Claims 4 and 5 (agreement with scikit-learn, no labels reach an attack) are held by
``test_membership_and_release.py``.

Measured, and where they fall short, on the published board: see
``test_the_published_board_holds_the_claims``. Claim 1's 0.8 is not reached yet (0.777 on DCGAN),
which a strict xfail records; claim 3 holds for DCGAN (9.3 points), not for LSGAN (12.1).

The default suite checks them on the published board (its seeds, the full step budget). A live
fit of the GAN at both sizes takes about five minutes on two cores, so the live check of claim 1
is under ``-m slow``; the default suite instead fits at a quarter of the step budget on a fit set
of 150 images, where the over-fit shows within seconds, and checks its direction there.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from ppbench import Context
from ppbench.membership import MembershipView
from ppbench.plugins.attacks.logan import LoganWhitebox
from ppbench.plugins.datasets.synthfaces import TASKS, load
from ppbench.plugins.sanitizers.surrogate_gan import SurrogateGAN

SMILING = next(task for task in TASKS if task.name == "smiling")
# The live checks label one attribute only: the labeller C is not what they measure.
SMILING_ONLY = dataclasses.replace(SMILING, utility=("male",))
BOARD = Path(__file__).resolve().parents[1] / "leaderboards" / "synthfaces-surrogates" / "leaderboard.json"
SMALL, LARGE = 500, 2000


def board_figures() -> dict[tuple[str, str], dict[str, float]]:
    """(data label, sanitizer) -> column header -> mean over seeds, from the published board."""
    figures = {}
    for board in json.loads(BOARD.read_text()):
        for row in board["rows"]:
            figures[(board["data"], row["sanitizer"])] = {
                key: value["mean"] for key, value in row["values"].items()
                if isinstance(value, dict) and value.get("mean") is not None}
    return figures


def sanitizers(figures, data: str) -> list[str]:
    return [sanitizer for label, sanitizer in figures if label == data]


def test_the_published_board_holds_the_claims():
    """Measured on the published board (two seeds): logan-whitebox reads 0.777 [0.739, 0.815] on
    DCGAN at 500 images and 0.548 at 2,000 (a fall of 0.23); LSGAN's least-squares game did not
    over-fit at this budget (0.514 and 0.496; see surrogate_gan's table). latent-recovery: 0.50 to
    0.55 on every row. surrogate-utility's gap C - C' at 2,000 images (from the store; the board
    shows C' only): 9.3 points for DCGAN, 12.1 for LSGAN (C 0.950, C' 0.857 and 0.829)."""
    figures = board_figures()
    small, large = f"n_train={SMALL}", f"n_train={LARGE}"
    dcgan, lsgan = "surrogate-gan(arch=dcgan)", "surrogate-gan(arch=lsgan)"
    assert sorted(sanitizers(figures, small)) == sorted(sanitizers(figures, large)) == [dcgan, lsgan]
    # Claim 1, on DCGAN: the over-fit of a small fit set, and its fall with the fit set's size.
    at_small, at_large = figures[(small, dcgan)], figures[(large, dcgan)]
    assert at_small["logan-whitebox acc"] >= 0.75
    assert at_small["logan-whitebox acc"] - at_large["logan-whitebox acc"] >= 0.15
    # Claim 2, at both sizes, with both feature maps, on both losses.
    for (data, sanitizer), row in figures.items():
        for header in (h for h in row if h.startswith("latent-recovery") and h.endswith(" acc")):
            assert abs(row[header] - 0.5) <= 0.1, (data, sanitizer, header, row[header])


@pytest.mark.xfail(strict=True, reason="measured 0.777 [0.739, 0.815] on DCGAN and 0.514 on LSGAN at "
                                       "500 images: the quick profile's budget stops short of 0.8")
def test_the_white_box_attack_reaches_0_8_at_the_small_fit_set():
    figures = board_figures()
    assert max(figures[(f"n_train={SMALL}", s)]["logan-whitebox acc"]
               for s in sanitizers(figures, f"n_train={SMALL}")) >= 0.8


def whitebox_accuracy(n_train: int, steps: int, arch: str = "dcgan", seed: int = 0) -> float:
    """logan-whitebox's Algorithm-1 accuracy on a surrogate-gan fitted on n_train faces:
    as many members (from the fit split) as non-members (from the test split)."""
    from ppbench.api import PROFILES
    from ppbench.membership import algorithm1_calls

    profile = PROFILES["quick"]
    splits = load(profile, seed=seed, n_train=n_train, n_attack=16, n_test=1000, n_aux=16)
    ctx = Context(profile=profile, seed=seed)
    sanitizer = SurrogateGAN(arch=arch, steps=steps).fit(splits.train, SMILING_ONLY, ctx)
    n = min(n_train, len(splits.test))
    candidates = torch.cat([splits.train.images[:n], splits.test.images[:n]])
    view = MembershipView(candidates=candidates, n_members=n, handles=sanitizer.handles())
    scores = LoganWhitebox().run(view, SMILING_ONLY, ctx).scores.numpy()
    truth = torch.cat([torch.ones(n), torch.zeros(n)]).numpy()
    calls = algorithm1_calls(scores, n, torch.randperm(2 * n, generator=torch.Generator().manual_seed(1)).numpy())
    return float((calls == truth).mean())


def test_a_small_fit_set_is_over_fitted_and_read_by_the_white_box_attack():
    # Measured (one thread): 0.84 at 150 images (320 epochs), 0.54 at 1,200 (40 epochs).
    small, large = whitebox_accuracy(150, steps=750), whitebox_accuracy(1200, steps=750)
    assert small >= 0.75 and small - large >= 0.15, (small, large)


@pytest.mark.slow
def test_claim_1_live_at_the_boards_sizes():
    small, large = whitebox_accuracy(SMALL, steps=3000), whitebox_accuracy(LARGE, steps=3000)
    assert small >= 0.8 and small - large >= 0.15, (small, large)
