"""gaussians2d reproduces Martinsson et al.'s toy problem, and the built-in matrix runs on it."""

from __future__ import annotations

import torch

from ppbench import get_profile
from ppbench.registry import build_registry
from ppbench.runner import RunOptions, run
from ppbench.spec import spec_from_dict
from ppbench.store import ResultStore


def test_two_balanced_gaussians_with_the_public_codes_std():
    spec = build_registry().dataset("gaussians2d")
    splits = spec.load(get_profile("quick"), seed=0, **{**spec.params, "n_train": 40000})
    assert splits.train.images.shape == (40000, 2) and splits.test.images.shape == (2560, 2)
    x, s = splits.train.images, splits.train.labels["s"]
    assert abs(float(s.float().mean()) - 0.5) < 0.01
    for label, mean in ((0, (-1.0, 1.0)), (1, (1.0, -1.0))):
        points = x[s == label]
        assert torch.allclose(points.mean(0), torch.tensor(mean), atol=0.02)
        assert torch.allclose(points.std(0), torch.tensor([0.7, 0.7]), atol=0.02)
    again = spec.load(get_profile("quick"), seed=0, **{**spec.params, "n_train": 40000})
    assert torch.equal(again.train.images, x)


def test_the_built_in_matrix_on_vectors(tmp_path):
    spec = spec_from_dict({
        "benchmark": {"tasks": ["s"]}, "dataset": {"name": "gaussians2d", "n_train": 2000},
        "sanitizers": [{"name": "identity"}, {"name": "blackout"}, {"name": "blur"}],
        "attacks": [{"name": "adversarial-classifier"}, {"name": "linear-probe"}],
        "metrics": [{"name": "fixed-utility"}],
    }, "gaussians.toml")
    report = run(spec, RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "c")))
    assert report.count("n/a") == 3  # blur applies to images only
    assert report.count("ok") == 6, report.errors
    frame = ResultStore(tmp_path / "r.db").frame()
    accuracy = frame[frame.metric == "accuracy"].pivot(index="sanitizer_label", columns="plugin", values="value")
    # Bayes accuracy: the means lie 2√2 apart, so Φ(√2 / 0.7) ≈ 0.978 with σ = 0.7.
    assert (accuracy.loc["identity"] > 0.95).all()
    assert (accuracy.loc["blackout"] < 0.56).all()
    utility = frame[frame.metric == "utility"].set_index("sanitizer_label").value
    assert utility["identity"] == 1.0 and utility["blackout"] < utility["identity"]
