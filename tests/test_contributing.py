"""CONTRIBUTING.md's example package must work as printed: its files are extracted, laid out the
way pip installs them, discovered through their entry points and run through the harness."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from ppbench.registry import get_registry
from ppbench.runner import RunOptions, run
from ppbench.spec import load_spec
from ppbench.store import ResultStore

GUIDE = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"
BLOCK = re.compile(r'```\w+ title="([^"]+)"\n(.*?)```', re.S)


def extract_example(root: Path) -> Path:
    files = dict(BLOCK.findall(GUIDE.read_text()))
    assert "ppbench-example/pyproject.toml" in files, "CONTRIBUTING.md lost its example package"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "ppbench-example"


def install_like_pip(package: Path) -> None:
    """What `pip install -e` leaves behind: the package importable and a .dist-info declaring
    the entry points of its pyproject.toml."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    info = package / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    points = "\n".join(f"{k} = {v}" for k, v in project["entry-points"]["ppbench"].items())
    (info / "entry_points.txt").write_text(f"[ppbench]\n{points}\n")


def test_the_example_package_installs_passes_its_tests_and_runs(install_plugin_dists, tmp_path, monkeypatch):
    package = extract_example(tmp_path / "src")
    install_like_pip(package)
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.setenv("PYTHONPATH", str(package) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    install_plugin_dists("testkit")  # for its tiny data set

    registry = get_registry()
    assert registry.source("sanitizers", "median").distribution == "ppbench-example"
    assert registry.source("attacks", "nearest-centroid").plugin == "example-centroid"

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(package / "tests")], capture_output=True, text=True, cwd=package)
    assert tests.returncode == 0, tests.stdout + tests.stderr

    spec = tmp_path / "spec.toml"
    spec.write_text('[benchmark]\nname = "example"\ntasks = ["secret"]\n[dataset]\nname = "tiny"\n'
                    '[[sanitizers]]\nname = "median"\nsize = [1, 3]\n'
                    '[[attacks]]\nname = "nearest-centroid"\n')
    report = run(load_spec(spec), RunOptions(store=str(tmp_path / "r.db"), cache_dir=str(tmp_path / "c")))
    assert report.count("ok") == 2
    frame = ResultStore(tmp_path / "r.db").frame()
    accuracy = frame[frame.metric == "accuracy"].set_index("sanitizer_label").value
    assert accuracy["median(size=1)"] > 0.9  # size 1 is the identity: the secret is plain
