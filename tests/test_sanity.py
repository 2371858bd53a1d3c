"""The sanity gates (`ppbench check-harness`) pass on this machine, on small data."""

from __future__ import annotations


import pytest

from ppbench.cli import main
from ppbench.sanity import bayes_accuracy, check_harness

# Small enough for the suite: the raw-data classifiers (one per kept attribute, each trained to
# convergence) take seconds on 16 px faces of 8 identities.
SMALL_FACES = {"n_train": 500, "n_attack": 500, "n_test": 400, "n_aux": 50, "image_size": 16,
               "n_identities": 8}
SMALL_POINTS = {"n_train": 3000, "n_attack": 3000, "n_test": 4000, "n_aux": 50}


def test_the_bayes_accuracy_of_the_two_gaussians():
    assert bayes_accuracy(0.7) == pytest.approx(0.97832, abs=1e-5)
    assert bayes_accuracy(1e-3) == pytest.approx(1.0) and bayes_accuracy(1e3) == pytest.approx(0.5, abs=1e-3)


# About 25 s on two idle CPU cores: every gate trains converged classifiers, on small data.
def test_every_gate_passes(tmp_path):
    gates = check_harness(tmp_path, synthfaces_params=SMALL_FACES, gaussians_params=SMALL_POINTS)
    assert [g.name for g in gates if not g.passed] == [], "\n".join(g.line() for g in gates)
    names = " ".join(g.name for g in gates)
    assert "ceiling" in names and "chance" in names and "Bayes" in names


@pytest.mark.parametrize("failing", [0, 1])
def test_the_cli_reports_each_gate_and_fails_when_one_does(failing, capsys, monkeypatch):
    import ppbench.sanity as sanity

    gates = [sanity.Gate("chance (blackout)", True, "advantage 0.000 [0.000, 0.000] must contain 0"),
             sanity.Gate("Bayes (gaussians2d)", not failing, "balanced accuracy 0.9790 ...")]
    monkeypatch.setattr(sanity, "check_harness", lambda *args, **kwargs: gates)
    assert main(["check-harness", "--device", "cpu", "--no-progress"]) == failing
    out = capsys.readouterr().out
    assert out.count("PASS") == 2 - failing and out.count("FAIL") == failing
    assert f"{2 - failing} passed, {failing} failed" in out
