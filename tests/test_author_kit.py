"""The plugin author kit: `ppbench new` writes packages that install and pass their own tests and
`ppbench check` as written, and `ppbench check` fails each broken rule by name."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from ppbench import Attack, AttackResult, Sanitizer
from ppbench.cli import main
from ppbench.conformance import check_attack_conformance, check_sanitizer_conformance
from ppbench.data import ImageSet
from ppbench.registry import get_registry, reset_registry


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PPBENCH_LOAD_PLUGINS", None)  # the venv's registry must see its new entry points
    return env


def _rows(output: str) -> dict[str, str]:
    """rule -> result, read from a printed table."""
    rules = ("construct", "contract", "determinism", "no in-place edits", "device and dtype",
             "time", "threat model")
    rows = {}
    for line in output.splitlines():
        for rule in rules:
            match = re.match(rf"{re.escape(rule)}\s+(pass|FAIL|n/a)\s", line + " ")
            if match:
                rows[rule] = match.group(1)
    return rows


# --- ppbench new: exactly what a user does -------------------------------------------------------


def test_new_packages_install_pass_their_tests_and_pass_ppbench_check(tmp_path, capsys):
    assert main(["new", "sanitizer", "demo-blur", "--dir", str(tmp_path)]) == 0
    assert main(["new", "attack", "demo-probe", "--dir", str(tmp_path)]) == 0
    blur, probe = tmp_path / "ppbench-demo-blur", tmp_path / "ppbench-demo-probe"
    for package in (blur, probe):
        assert {"pyproject.toml", "README.md"} <= {p.name for p in package.iterdir()}
        assert "ppbench check" in (package / "README.md").read_text()
    assert "demo-blur = \"ppbench_demo_blur.sanitizer\"" in (blur / "pyproject.toml").read_text()

    # A venv that borrows torch and ppbench, so that the installs never reach the main
    # environment (an installed test plugin would join every other test's registry).
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps",
                              "--no-build-isolation", "-e", str(blur), "-e", str(probe)],
                             capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr

    tests = subprocess.run([python, "-m", "pytest", str(blur), str(probe), "-q",
                            "-p", "no:cacheprovider"],
                           capture_output=True, text=True, env=_env(), cwd=tmp_path)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    passed = re.search(r"(\d+) passed", tests.stdout)
    assert passed and int(passed.group(1)) >= 6 and "failed" not in tests.stdout, tests.stdout

    for name, kind, rules in (("demo-blur", "sanitizer", 6), ("demo-probe", "attack", 7)):
        check = subprocess.run([python, "-m", "ppbench.cli", "check", name, "--device", "cpu"],
                               capture_output=True, text=True, env=_env(), cwd=tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"from ppbench-{name} 0.1.0" in check.stderr  # found through its entry point
        rows = _rows(check.stdout)
        assert len(rows) == rules and set(rows.values()) == {"pass"}, check.stdout
        assert f"{kind} {name}: {rules} passed, 0 failed" in check.stdout
        assert max(len(line) for line in check.stdout.splitlines()) <= 100

    # Nothing leaked into this environment.
    reset_registry()
    assert "demo-blur" not in get_registry().names("sanitizers")


def test_new_refuses_an_existing_folder_a_bad_name_and_a_taken_name(tmp_path, capsys):
    (tmp_path / "ppbench-mine").mkdir()
    assert main(["new", "sanitizer", "mine", "--dir", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["new", "attack", "My_Attack", "--dir", str(tmp_path)]) == 2
    assert "lowercase letters, digits and hyphens" in capsys.readouterr().err
    assert main(["new", "sanitizer", "blur", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "already registered" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "ppbench-blur").exists()


# --- ppbench check on built-in plugins -----------------------------------------------------------


@pytest.mark.parametrize("name, rules", [("blur", 6), ("linear-probe", 7)])
def test_builtin_plugins_pass_ppbench_check(name, rules, capsys):
    assert main(["check", name, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert len(rows) == rules and set(rows.values()) == {"pass"}, out
    assert re.search(r"1,000 .*images .* in [\d.]+ s on cpu \(budget \d+ s\)", " ".join(out.split()))
    assert max(len(line) for line in out.splitlines()) <= 100


def test_check_names_close_plugins_for_an_unknown_name_and_refuses_a_sweep(capsys):
    assert main(["check", "blr"]) == 2
    err = capsys.readouterr().err
    assert "did you mean blur" in err and len(err.strip().splitlines()) == 1
    assert main(["check", "blur", "--params", "sigma=[1,2]"]) == 2
    assert "one configuration at a time" in capsys.readouterr().err


# --- ppbench check on installed plugins that break a rule ----------------------------------------


def test_installed_offenders_fail_the_rule_they_break_with_exit_status_1(install_plugin_dists, capsys):
    install_plugin_dists("offender")
    expected = {"inplace-darken": ("no in-place edits", "modified the images it was given"),
                "raw-peek": ("threat model", "requires raw_train, which its threat model"),
                "fragile-constructor": ("construct", "RuntimeError: cannot build the model")}
    for name, (rule, message) in expected.items():
        assert main(["check", name, "--device", "cpu"]) == 1
        out = capsys.readouterr().out
        rows = _rows(out)
        assert [r for r, status in rows.items() if status == "FAIL"] == [rule], out
        assert message in " ".join(out.split()), out
    assert set(_rows(out).values()) == {"FAIL", "n/a"}  # nothing runs on an unbuilt plugin


# --- in process: one broken rule each ------------------------------------------------------------


class SeedlessNoise(Sanitizer):
    """Adds noise from a generator seeded by the operating system, not by ctx."""

    name = "seedless-noise"

    def transform(self, images, ctx):
        g = torch.Generator()
        g.seed()
        return (images + 0.01 * torch.randn(images.shape, generator=g)).clamp(0, 1)


class ByteOutput(Sanitizer):
    """Returns 8-bit integers instead of floats."""

    name = "byte-output"

    def transform(self, images, ctx):
        return (images * 255).round().to(torch.uint8)


class HalfPrecision(Sanitizer):
    """Returns float16: the harness accepts it and converts it, with a note."""

    name = "half-precision"

    def transform(self, images, ctx):
        return images.half()


class Alias(Sanitizer):
    """Returns its input unchanged: the very tensor it was lent."""

    name = "alias"

    def transform(self, images, ctx):
        return images


def _failed(report) -> dict[str, str]:
    return {row.rule: row.detail for row in report.rows if row.status == "FAIL"}


def test_a_nondeterministic_sanitizer_fails_determinism_only():
    report = check_sanitizer_conformance(SeedlessNoise)
    assert list(_failed(report)) == ["determinism"]
    assert "the same seed gave different outputs" in _failed(report)["determinism"]


def test_integer_output_fails_the_dtype_rule_and_float16_passes_with_a_note():
    failed = _failed(check_sanitizer_conformance(ByteOutput))
    assert "device and dtype" in failed and "must return floats" in failed["device and dtype"]
    half = check_sanitizer_conformance(HalfPrecision)
    assert half.passed
    assert "converts float16 to float32" in half.row("device and dtype").detail


def test_returning_the_input_itself_fails_no_in_place_edits():
    failed = _failed(check_sanitizer_conformance(Alias))
    assert list(failed) == ["no in-place edits"] and "returned its input" in failed["no in-place edits"]


class Slow(Sanitizer):
    """Takes 0.3 s per batch."""

    name = "slow"

    def transform(self, images, ctx):
        import time

        time.sleep(0.3)
        return images.clone()


def test_a_sanitizer_over_the_time_budget_fails_the_time_rule(monkeypatch):
    import ppbench.conformance as conformance

    monkeypatch.setattr(conformance, "_quick_budget", lambda items: 0.1)
    failed = _failed(check_sanitizer_conformance(Slow))
    assert list(failed) == ["time"] and "budget" in failed["time"]


class LabelThief(Attack):
    """Finds the labelled copy of its test images in the interpreter's memory."""

    name = "label-thief"

    def run(self, view, task, ctx):
        import gc

        for obj in gc.get_objects():
            if (type(obj) is ImageSet and obj is not view.test and task.sensitive in obj.labels
                    and obj.images.shape == view.test.images.shape
                    and torch.equal(obj.images, view.test.images)):
                return AttackResult(obj.labels[task.sensitive].clone())
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


class Relabeller(Attack):
    """Overwrites the labels of the attack split it was lent."""

    name = "relabeller"

    def run(self, view, task, ctx):
        view.attack.labels[task.sensitive].zero_()
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


class CoinFlip(Attack):
    """Guesses with a fresh seed every run: honest, but not reproducible."""

    name = "coin-flip"

    def run(self, view, task, ctx):
        g = torch.Generator()
        g.seed()
        return AttackResult(torch.randint(0, 2, (len(view.test),), generator=g))


class BooleanGuess(Attack):
    """Returns booleans instead of class indices."""

    name = "boolean-guess"

    def run(self, view, task, ctx):
        return AttackResult(view.test.images[:, 0].mean(dim=(1, 2)) > 0.45)


def test_an_attack_reading_the_withheld_labels_fails_the_threat_model():
    failed = _failed(check_attack_conformance(LabelThief))
    assert list(failed) == ["threat model"]
    assert "depends on the withheld test labels" in failed["threat model"]


def test_an_attack_that_edits_its_view_fails_no_in_place_edits():
    failed = _failed(check_attack_conformance(Relabeller))
    assert "no in-place edits" in failed
    assert "modified the labels of the attack split" in failed["no in-place edits"]


def test_a_nondeterministic_attack_fails_determinism_but_not_the_threat_model():
    failed = _failed(check_attack_conformance(CoinFlip))
    assert list(failed) == ["determinism"] and "different predictions" in failed["determinism"]


def test_boolean_predictions_fail_the_dtype_rule():
    failed = _failed(check_attack_conformance(BooleanGuess))
    assert list(failed) == ["device and dtype"] and "bool" in failed["device and dtype"]
