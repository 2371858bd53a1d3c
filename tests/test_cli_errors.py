"""The command line's promises (issue 6): bad input gets one clear line on stderr naming what is at
fault, exit status 2 and no traceback, before any work; ``--rerun``; the per-user cache folder and
``ppbench cache info|prune``.

Every run here is the testkit's tiny data set (milliseconds), never the default benchmark.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ppbench.cache_admin import default_cache_dir, info, prune, resolve_cache_dir
from ppbench.cli import main
from ppbench.store import ResultStore


def tiny_spec(folder: Path, extra: str = "", tasks: str = '["secret"]') -> Path:
    path = folder / "tiny.toml"
    path.write_text(textwrap.dedent(f"""
        [benchmark]
        name = "tiny"
        tasks = {tasks}

        [dataset]
        name = "tiny"

        [[sanitizers]]
        name = "darken"
        strength = [0.0, 1.0]

        [[attacks]]
        name = "threshold"

        [[attacks]]
        name = "seed-echo"
        """) + extra)
    return path


def run_args(tmp_path: Path, *args: str, spec: Path | None = None) -> list[str]:
    spec = spec or tiny_spec(tmp_path)
    return ["run", str(spec), "--store", str(tmp_path / "r.db"), "--cache", str(tmp_path / "cache"),
            "--no-progress", "--device", "cpu", *args]


def one_line_error(capsys) -> str:
    """What the command wrote to stderr: exactly one line, and no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def read_only():
    """chmod a path read-only for the test; restored afterwards so the folder can be cleaned."""
    changed: list[tuple[Path, int]] = []

    def make(path: Path) -> None:
        changed.append((path, path.stat().st_mode))
        path.chmod(0o555 if path.is_dir() else 0o444)

    yield make
    for path, mode in reversed(changed):
        path.chmod(stat.S_IMODE(mode))


# --- one line for bad input ------------------------------------------------------------------------


@pytest.mark.parametrize("seeds", ["0", "-1"])
def test_seeds_must_be_a_positive_integer(testkit, tmp_path, capsys, seeds):
    assert main(run_args(tmp_path, "--seeds", seeds)) == 2
    line = one_line_error(capsys)
    assert "--seeds" in line and "positive integer" in line and seeds in line
    assert not (tmp_path / "r.db").exists(), "nothing may run"


def test_an_unknown_device_lists_the_accepted_ones(testkit, tmp_path, capsys):
    assert main(run_args(tmp_path, "--device", "tpu")) == 2
    line = one_line_error(capsys)
    assert "--device" in line and "tpu" in line and "auto, cpu, cuda, cuda:N" in line
    assert main(["check-harness", "--device", "tpu"]) == 2
    assert "auto, cpu, cuda, cuda:N" in one_line_error(capsys)


def test_cuda_without_cuda_is_refused_in_one_line(testkit, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = run_args(tmp_path)
    args[args.index("--device") + 1] = "cuda"
    assert main(args) == 2
    line = one_line_error(capsys)
    assert "--device cuda" in line and "CUDA" in line and "--device cpu" in line
    assert not (tmp_path / "r.db").exists()


def test_a_misspelt_plugin_parameter_lists_the_plugins_parameters(testkit, tmp_path, capsys):
    assert main(run_args(tmp_path, "--sanitizer", "blur:sigmaa=2")) == 2
    line = one_line_error(capsys)
    assert "--sanitizer blur:sigmaa=2" in line and "sigmaa" in line
    assert "its parameters: sigma=" in line

    assert main(run_args(tmp_path, "--attack", "sleepy:second=1")) == 2
    assert "attack sleepy has no parameter second; its parameters: seconds=0.5" in one_line_error(capsys)

    # The same check for a spec file's own entries, naming the file.
    spec = tiny_spec(tmp_path, '\n[[metrics]]\nname = "mean-abs-change"\nscale = 2\n')
    assert main(run_args(tmp_path, spec=spec)) == 2
    line = one_line_error(capsys)
    assert str(spec) in line and "metric mean-abs-change has no parameter scale" in line
    assert "its parameters: none" in line
    assert not (tmp_path / "r.db").exists()


def test_an_unknown_task_is_named_without_python_quotes(testkit, tmp_path, capsys):
    assert main(run_args(tmp_path, "--task", "nosuch")) == 2
    line = one_line_error(capsys)
    assert line == "ppbench: error: --task nosuch: data set tiny has no task nosuch; its tasks: secret"

    spec = tiny_spec(tmp_path, tasks='["secret", "nosuch"]')
    assert main(run_args(tmp_path, spec=spec)) == 2
    line = one_line_error(capsys)
    assert str(spec) in line and "has no task nosuch; its tasks: secret" in line
    assert "'" not in line.replace(str(spec), "")


def test_a_garbage_store_is_named_by_run_leaderboard_and_publish(testkit, tmp_path, capsys):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("these are my notes, not a results store\n" * 20)
    before = garbage.read_bytes()
    spec = tiny_spec(tmp_path)
    commands = [
        ["run", str(spec), "--store", str(garbage), "--cache", str(tmp_path / "cache"), "--device", "cpu"],
        ["leaderboard", "--store", str(garbage)],
        ["publish", str(spec), "--store", str(garbage), "--out", str(tmp_path / "out")],
    ]
    for command in commands:
        assert main(command) == 2, command
        assert one_line_error(capsys) == f"ppbench: error: not a ppbench results store: {garbage}"
    assert garbage.read_bytes() == before
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_a_read_only_store_is_refused_before_any_work(testkit, tmp_path, capsys, read_only):
    store = tmp_path / "r.db"
    ResultStore(store)
    before = store.read_bytes()
    read_only(store)
    assert main(run_args(tmp_path)) == 2
    line = one_line_error(capsys)
    assert str(store) in line and "read-only" in line
    assert not (tmp_path / "cache").exists(), "the check must come before any work"
    assert store.read_bytes() == before


def test_a_store_in_a_read_only_folder_is_refused_before_any_work(testkit, tmp_path, capsys,
                                                                   read_only):
    folder = tmp_path / "locked"
    folder.mkdir()
    ResultStore(folder / "r.db")
    read_only(folder)
    spec = tiny_spec(tmp_path)
    for store in (folder / "r.db", folder / "new.db", folder / "sub" / "new.db"):
        command = ["run", str(spec), "--store", str(store), "--cache", str(tmp_path / "cache"),
                   "--device", "cpu", "--no-progress"]
        assert main(command) == 2
        line = one_line_error(capsys)
        assert str(store) in line and "read-only" in line and str(folder) in line
    assert not (tmp_path / "cache").exists()


def test_a_read_only_cache_folder_is_refused_before_any_work(testkit, tmp_path, capsys, read_only):
    (tmp_path / "cache").mkdir()
    read_only(tmp_path / "cache")
    assert main(run_args(tmp_path)) == 2
    line = one_line_error(capsys)
    assert str(tmp_path / "cache") in line and "read-only" in line


# --- --rerun -----------------------------------------------------------------------------------------


def _tamper(store: Path, plugin: str) -> None:
    with sqlite3.connect(store) as db:
        db.execute("UPDATE cell_values SET value = -7 WHERE cell_key IN "
                   "(SELECT cell_key FROM cells WHERE plugin = ?)", (plugin,))


def test_rerun_recomputes_one_plugins_stored_cells_and_reuses_the_rest(testkit, tmp_path, capsys):
    assert main(run_args(tmp_path)) == 0
    assert "4 cells: 0 already stored, 4 run (4 ok" in capsys.readouterr().err
    store = tmp_path / "r.db"
    _tamper(store, "threshold")
    _tamper(store, "seed-echo")

    assert main(run_args(tmp_path, "--rerun", "threshold")) == 0
    err = capsys.readouterr().err
    assert "recomputing the stored cells of threshold" in err
    assert "4 cells: 2 already stored, 2 run (2 ok" in err
    assert "sanitizer fits: 0 computed, 2 from cache" in err
    frame = ResultStore(store).frame()
    assert frame.cell_key.nunique() == 4 and len(frame[frame.metric == "advantage"]) == 4
    by_plugin = frame.groupby("plugin").value.apply(lambda v: (v == -7).sum())
    assert by_plugin["threshold"] == 0, "the rerun cells replace the stored ones"
    assert by_plugin["seed-echo"] > 0, "other cells are reused as stored"


def test_rerun_names_an_attack_or_metric_of_the_run(testkit, tmp_path, capsys):
    assert main(run_args(tmp_path, "--rerun", "treshold")) == 2
    line = one_line_error(capsys)
    assert "--rerun treshold" in line and "threshold, seed-echo" in line
    assert main(run_args(tmp_path, "--rerun", "darken")) == 2
    assert "sanitizer" in one_line_error(capsys)
    assert not (tmp_path / "r.db").exists()


# --- where the cache lives -------------------------------------------------------------------------


def test_the_default_cache_is_the_per_user_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("PPBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    platformdirs = pytest.importorskip("platformdirs")
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("ppbench"))
    if sys.platform.startswith("linux"):
        assert default_cache_dir() == tmp_path / "xdg" / "ppbench"
    monkeypatch.setitem(sys.modules, "platformdirs", None)  # not installed
    assert default_cache_dir() == tmp_path / "xdg" / "ppbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ppbench"
    assert resolve_cache_dir() == default_cache_dir()

    monkeypatch.setenv("PPBENCH_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir() == tmp_path / "env"
    assert resolve_cache_dir(str(tmp_path / "flag")) == tmp_path / "flag"


def test_the_banner_names_the_cache_and_the_flag_wins_over_the_environment(testkit, tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("PPBENCH_CACHE", str(tmp_path / "env-cache"))
    assert main(run_args(tmp_path)) == 0
    banner = capsys.readouterr().err.splitlines()[0]
    assert banner.startswith("ppbench: benchmark") and f"cache {tmp_path / 'cache'}" in banner
    assert (tmp_path / "cache" / "sanitizers" / "darken").is_dir()
    assert not (tmp_path / "env-cache").exists()

    spec = tiny_spec(tmp_path)
    assert main(["run", str(spec), "--store", str(tmp_path / "r2.db"), "--no-progress",
                 "--device", "cpu"]) == 0
    banner = capsys.readouterr().err.splitlines()[0]
    assert f"cache {tmp_path / 'env-cache'}" in banner
    assert (tmp_path / "env-cache" / "sanitizers" / "darken").is_dir()


# --- ppbench cache info | prune -------------------------------------------------------------------


def _entry(path: Path, size: int, age_days: float = 0.0, sidecar: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    path.with_suffix(".lock").touch()
    files = [path, path.with_suffix(".lock")]
    if sidecar:
        checksum = path.with_name(path.name + ".sha256")
        checksum.write_text("0" * 64 + "\n")
        files.append(checksum)
    when = time.time() - age_days * 86400
    for file in files:
        os.utime(file, (when, when))
    return path


def test_cache_info_reports_the_folder_the_total_and_each_kind(tmp_path, capsys):
    root = tmp_path / "cache"
    _entry(root / "sanitizers" / "blur" / "a.pt", 1000)
    _entry(root / "sanitizers" / "blur" / "b.pt", 2000)
    _entry(root / "sanitizers" / "noise" / "c.pt", 3000, sidecar=False)
    _entry(root / "shared" / "raw-classifier-d1.pt", 5000)
    (root / "README.txt").write_text("not an entry")
    assert main(["cache", "info", "--cache", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"cache: {root}"
    assert out[1].startswith("total: ") and "4 entries" in out[1]
    rows = {line.split()[0]: line for line in out[2:]}
    assert set(rows) == {"sanitizers/blur", "sanitizers/noise", "shared"}
    assert "2 entries" in rows["sanitizers/blur"] and "1 entry" in rows["shared"]
    assert info(root).by_kind == {"sanitizers/blur": (2, 3000 + 130), "sanitizers/noise": (1, 3000),
                                  "shared": (1, 5000 + 65)}

    assert main(["cache", "info", "--cache", str(tmp_path / "none")]) == 0
    assert "nothing cached" in capsys.readouterr().out


def test_cache_prune_deletes_entries_older_than_asked_and_nothing_else(tmp_path, capsys):
    root = tmp_path / "cache"
    old = _entry(root / "sanitizers" / "blur" / "old.pt", 1000, age_days=10)
    young = _entry(root / "sanitizers" / "blur" / "young.pt", 1000, age_days=1)
    shared = _entry(root / "shared" / "raw-old.pt", 1000, age_days=10)
    leftover = root / "shared" / ".raw-gone.pt.123.tmp"
    leftover.write_bytes(b"half")
    os.utime(leftover, (time.time() - 20 * 86400,) * 2)
    (root / "README.txt").write_text("not an entry")

    assert main(["cache", "prune", "--cache", str(root), "--older-than", "5"]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert not old.exists() and not shared.exists() and not leftover.exists()
    assert not old.with_suffix(".lock").exists() and not Path(f"{old}.sha256").exists()
    assert not (root / "shared").exists(), "an emptied folder goes"
    assert young.exists() and young.with_suffix(".lock").exists() and Path(f"{young}.sha256").exists()
    assert (root / "README.txt").exists()

    # An entry a running job holds (its lock taken) is left alone; without --older-than the rest go.
    busy = _entry(root / "sanitizers" / "noise" / "busy.pt", 10)
    with open(busy.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        report = prune(root)
    assert report.removed == 1 and report.busy == 1
    assert busy.exists() and not young.exists()
    assert (root / "README.txt").exists()

    assert main(["cache", "prune", "--cache", str(root), "--older-than", "-1"]) == 2
    assert "--older-than" in one_line_error(capsys)


def test_a_pruned_cache_is_rebuilt_by_the_next_run(testkit, tmp_path, capsys):
    assert main(run_args(tmp_path)) == 0
    assert "sanitizer fits: 2 computed" in capsys.readouterr().err
    assert info(tmp_path / "cache").by_kind["sanitizers/darken"][0] == 2
    assert main(["cache", "prune", "--cache", str(tmp_path / "cache")]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert main(run_args(tmp_path, "--rerun", "threshold")) == 0
    assert "sanitizer fits: 2 computed, 0 from cache" in capsys.readouterr().err


def test_long_error_lines_are_cut_at_a_word_not_mid_word():
    from ppbench.run_command import shorten

    message = "sanitizer blur(sigma=2): transform raised ValueError: " + "word " * 80
    short = shorten(message, 120)
    assert len(short) <= 120 and short.endswith("…")
    assert short[:-1] == message[:len(short) - 1] and message[len(short) - 1] == " "
    assert shorten("short message", 120) == "short message"
