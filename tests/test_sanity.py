"""The sanity gates (`ppbench check-harness`) pass on this machine, on small data."""

from __future__ import annotations


import pytest

from ppbench.cli import main
from ppbench.sanity import bayes_accuracy, check_harness

SMALL_FACES = {"n_train": 600, "n_attack": 600, "n_test": 400, "n_aux": 50}
SMALL_POINTS = {"n_train": 3000, "n_attack": 3000, "n_test": 4000, "n_aux": 50}


def test_the_bayes_accuracy_of_the_two_gaussians():
    assert bayes_accuracy(0.7) == pytest.approx(0.97832, abs=1e-5)
    assert bayes_accuracy(1e-3) == pytest.approx(1.0) and bayes_accuracy(1e3) == pytest.approx(0.5, abs=1e-3)


@pytest.fixture(scope="module")
def gates(tmp_path_factory):
    return check_harness(tmp_path_factory.mktemp("gates"), synthfaces_params=SMALL_FACES,
                         gaussians_params=SMALL_POINTS)


def test_every_gate_passes(gates):
    assert [g.name for g in gates if not g.passed] == [], "\n".join(g.line() for g in gates)
    names = " ".join(g.name for g in gates)
    assert "ceiling" in names and "chance" in names and "Bayes" in names


def test_the_cli_reports_the_gates_and_exits_zero(gates, tmp_path, capsys, monkeypatch):
    import ppbench.sanity as sanity

    monkeypatch.setattr(sanity, "check_harness", lambda *args, **kwargs: gates)
    assert main(["check-harness", "--device", "cpu", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS") == len(gates) and f"{len(gates)} passed, 0 failed" in out
