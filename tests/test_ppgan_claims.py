"""Liu, Tan and Garg's subverted PP-GAN on synthfaces: the claims of the synthfaces-identity board.

1. ppgan: the standard check's identity leakage is near the leakage floor (its 95% interval
   reaches down to it, or its mean is within 0.05 of it). Its expression is kept, but not within
   10 points of the raw ceiling: on the published board fixed-utility's expression balanced
   accuracy is 0.369 for ppgan against 0.724 for untouched faces (chance 1/7 = 0.143; means of
   three seeds), a gap of 35 points. Measured why: the quick profile's game is 40 epochs on 16×16
   faces, where an expression is a few pixels of mouth and eyes, and the decoder must render it
   from a code penalised for carrying the identity; at 20 epochs it read 0.16, at 40 0.48 (seed 0,
   before the code-independence penalty), so the gap is the game's length: the standard profile
   (240 epochs, 64×64) is where to check it, on a GPU.
2. ppgan-subverted (keyed): the standard check, the linear probe and the residual probe are each
   within 0.05 advantage of ppgan's; its expression utility is within 0.05 of ppgan's; and
   secret-extraction recovers the source identity in at least 99% of the test images.
3. ppgan-subverted (keyed=false): at least one keyless attack reaches advantage 0.5.
4. The board flags the keyed subverted row and does not flag ppgan.
5. reconstruction's scoring computes PSNR and SSIM exactly as distortion does: held by
   ``test_reconstruction_and_reference.py`` (the same function on the same pairs, compared for
   equality).

The default suite runs claims 2 and 3 live, on one seed with a shorter game (8 epochs instead of
the profile's 40: the subverted model is the honest one plus a payload, whatever the game, and
both are fitted with the same seeds, so the comparison does not need the full game), in about
two and a half minutes on two cores. Claims 1 and 4 need the full game (at 8 epochs the standard
check still reads the identity); the default suite checks them on the published board (three
seeds, the full game), and ``-m slow`` runs the board's PP-GAN rows anew (three seeds: about 25
minutes on two cores) and checks them there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ppbench.boards.build import build_leaderboards
from ppbench.runner import RunOptions, run
from ppbench.spec import spec_from_dict
from ppbench.store import ResultStore
from ppbench.sweep_curves import split_label

BOARD = Path(__file__).resolve().parents[1] / "leaderboards" / "synthfaces-identity"
NEAR = 0.05  # advantage: the subverted model against the honest one, and ppgan against the floor
# One seed of a short game: two equal models' keyless figures differ by the attacks' training
# noise, which one seed cannot average out (the published board's three seeds: the adversarial
# classifier's seed-to-seed SD is 0.01 on ppgan's outputs and 0.04 on the keyed build's, so a
# one-seed gap has an SD of about 0.04; a change of the data's seeds moved it from under 0.05 to
# 0.052). 0.15 is over 3.5 of those, and far below what a keyless attack reads of a payload it
# can see (the unkeyed build: ≥ 0.5).
NEAR_ONE_SEED = 0.15
# The key holder's read of the payload is bounded by the vendor's identity reader, whose misses on
# the raw faces it carries along: on the full game (the published board, three seeds) 0.991 on
# the data of 2026-12-04 and 0.980 (0.971 to 0.990 per seed) on the current draw, the paper's
# "100%" less the reader's errors; the reduced run's 8-epoch game reads 0.97 to 1.0 depending on
# the data's seeds (0.971 on the current draw), still the payload read nearly whole where no
# keyless attack reads it.
READ_FULL_GAME, READ_SHORT_GAME = 0.97, 0.95
KEYED, UNKEYED = "ppgan-subverted(keyed=True)", "ppgan-subverted(keyed=False)"
KEYLESS = ("adversarial-classifier", "linear-probe", "residual-probe")


def claims_spec(seeds: int, epochs: int | None) -> dict:
    game = {"epochs": epochs} if epochs else {}
    return {
        "benchmark": {"name": "ppgan-claims", "tasks": ["identity"], "seeds": seeds,
                      "standard_check": "adversarial-classifier"},
        "dataset": {"name": "synthfaces", "n_identities": 6},
        "sanitizers": [{"name": "ppgan", **game}, {"name": "ppgan-subverted", "keyed": [True, False], **game}],
        "attacks": [{"name": name} for name in (*KEYLESS, "secret-extraction")],
        "metrics": [{"name": "fixed-utility"}],
    }


def row_name(label: str) -> str:
    """A configuration's label without the game's length: ``ppgan-subverted(keyed=True)``."""
    name, params = split_label(label)
    params.pop("epochs", None)
    return f"{name}({','.join(f'{k}={v}' for k, v in params.items())})" if params else name


def figures(store: Path) -> pd.DataFrame:
    """sanitizer configuration × (plugin, metric): means over seeds."""
    frame = ResultStore(store).frame()
    assert (frame.loc[frame["status"] != "n/a", "status"] == "ok").all(), frame["error"].dropna().unique()
    frame = frame[frame["status"] == "ok"].assign(row=lambda f: f["sanitizer_label"].map(row_name))
    return frame.pivot_table(index="row", columns=["plugin", "metric"], values="value", aggfunc="mean")


def check_claims_2_and_3(table: pd.DataFrame, near: float = NEAR, read: float = READ_FULL_GAME) -> None:
    honest, keyed = table.loc["ppgan"], table.loc[KEYED]
    for attack in KEYLESS:
        gap = abs(keyed[(attack, "advantage")] - honest[(attack, "advantage")])
        assert gap <= near, f"{attack}: keyed subverted {keyed[(attack, 'advantage')]:.3f}, ppgan {honest[(attack, 'advantage')]:.3f}"
    assert abs(keyed[("fixed-utility", "bacc:expression")] - honest[("fixed-utility", "bacc:expression")]) <= NEAR
    assert keyed[("secret-extraction", "accuracy")] >= read
    unkeyed = table.loc[UNKEYED]
    assert max(unkeyed[(attack, "advantage")] for attack in KEYLESS) >= 0.5


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ppgan-claims")
    spec = spec_from_dict(claims_spec(seeds=1, epochs=8), "ppgan-claims.toml")
    run(spec, RunOptions(store=str(root / "r.db"), cache_dir=str(root / "cache")), executor="process", workers=2)
    return root / "r.db"


def test_the_subverted_model_passes_the_keyless_checks_and_the_key_holder_reads_it(reduced_run):
    table = figures(reduced_run)
    assert set(table.index) == {"ppgan", KEYED, UNKEYED}
    check_claims_2_and_3(table, NEAR_ONE_SEED, READ_SHORT_GAME)


def test_the_naive_payload_is_caught_by_a_keyless_attack_and_the_keyed_one_is_not(reduced_run):
    table = figures(reduced_run)
    # The payload is what separates them: without the key nothing keyless reads it.
    assert table.loc[KEYED, ("residual-probe", "advantage")] < table.loc[UNKEYED, ("residual-probe", "advantage")] - 0.5


# --- the published board (claims 1 to 4 on three seeds and the full game) -------------------------


def published_rows() -> tuple[dict[str, dict], dict]:
    boards = json.loads((BOARD / "leaderboard.json").read_text())
    (board,) = boards
    return {row["sanitizer"]: row for row in board["rows"]}, board


def mean(row: dict, column: str) -> float:
    return row["values"][column]["mean"]


def test_the_published_board_holds_the_claims():
    rows, board = published_rows()
    floor = board["leakage_floor"]["mean"]
    ppgan, keyed, unkeyed = rows["ppgan"], rows[KEYED], rows[UNKEYED]
    # Claim 1.
    standard = ppgan["values"]["adversarial-classifier adv"]
    assert standard["ci_low"] <= floor or standard["mean"] - floor <= NEAR, (standard, floor)
    # Claim 2.
    for attack in KEYLESS:
        assert abs(mean(keyed, f"{attack} adv") - mean(ppgan, f"{attack} adv")) <= NEAR, attack
    assert mean(keyed, "secret-extraction acc") >= READ_FULL_GAME
    # Claim 3.
    assert max(mean(unkeyed, f"{attack} adv") for attack in KEYLESS) >= 0.5
    # Claim 4.
    assert keyed["flag"] and "key holder recovers" in keyed["flag"]
    assert not ppgan["flag"]


@pytest.mark.slow
def test_the_claims_hold_on_the_full_game(tmp_path):
    spec = claims_spec(seeds=3, epochs=None)
    spec["sanitizers"].insert(0, {"name": "identity"})
    run(spec_from_dict(spec, "ppgan-claims.toml"), RunOptions(store=str(tmp_path / "r.db"),
                                                             cache_dir=str(tmp_path / "cache")),
        executor="process", workers=2)
    table = figures(tmp_path / "r.db")
    check_claims_2_and_3(table)
    (board,) = build_leaderboards(ResultStore(tmp_path / "r.db").frame(), standard_check="adversarial-classifier")
    ranking = board.ranking.set_index("sanitizer")
    assert ranking.loc[KEYED, "flag"] and not ranking.loc["ppgan", "flag"]
    # Claim 1's utility part does not hold at this profile (see the module doc): the expression is
    # kept far above chance (1/7), not within 10 points of the raw ceiling.
    kept = table.loc["ppgan", ("fixed-utility", "bacc:expression")]
    assert kept >= 0.30 and table.loc["identity", ("fixed-utility", "bacc:expression")] - kept > 0.10
