"""The wheel, installed for real: everything lives under ``ppbench``, so a user's own ``plugins/`` or
``harness/`` folder in the working directory cannot shadow the built-ins.

One module-scoped fixture builds the wheel from a copy of the sources (so no ``build/`` lands in the
checkout) and installs it into a throw-away virtual environment that borrows torch and the other
dependencies from the system site-packages. The system site-packages also holds the developer's
editable install of ppbench, so every test checks that what ran came from the venv.
"""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# folder in the checkout -> its place in the wheel
PACKAGE_ROOTS = {"harness": "ppbench", "plugins": "ppbench/plugins"}

DATASETS = {"synthfaces", "gaussians2d"}
SANITIZERS = {"identity", "blackout", "blur", "pixelate", "noise"}
ATTACKS = {"adversarial-classifier", "fixed-classifier", "linear-probe"}
METRICS = {"fixed-utility", "distortion"}

# Imports that must not be answered from the working directory: a decoy that raises on import.
DECOY = 'raise ImportError("decoy {name!r} from the working directory was imported")\n'

# Prints where ppbench came from and imports every module of the installed package.
PROBE = """
import importlib, json, pkgutil, sys
import ppbench, ppbench.plugins, ppbench.plugins.datasets.synthfaces
from importlib import metadata
modules = []
for info in pkgutil.walk_packages(ppbench.__path__, "ppbench."):
    importlib.import_module(info.name)
    modules.append(info.name)
print(json.dumps({
    "ppbench": ppbench.__file__,
    "plugins": ppbench.plugins.__file__,
    "synthfaces": ppbench.plugins.datasets.synthfaces.__file__,
    "modules": modules,
    # every ppbench module loaded, and where from: the editable install's finder in the system
    # site-packages answers for any subpackage the wheel lacks, from the checkout
    "files": {name: getattr(module, "__file__", None) for name, module in sys.modules.items()
              if name == "ppbench" or name.startswith("ppbench.")},
    "harness_imported": "harness" in sys.modules,
    "plugins_imported": "plugins" in sys.modules,
}))
"""


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH (tests elsewhere point it at the test plugin distributions), no filters."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
           and not k.startswith("PPBENCH_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def _run(cmd, cwd, timeout=300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_clean_env(), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def _source_modules() -> set[str]:
    """Every .py file of every package in the checkout, as its path inside the wheel."""
    expected = set()
    for folder, target in PACKAGE_ROOTS.items():
        root = REPO / folder
        for path in root.rglob("*.py"):
            package = path.parent.relative_to(root).parts
            if all((root.joinpath(*package[:i]) / "__init__.py").exists() for i in range(len(package) + 1)):
                expected.add(f"{target}/{path.relative_to(root).as_posix()}")
    return expected


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, venv python, venv site-packages, a working directory full of decoys)."""
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in PACKAGE_ROOTS:
        shutil.copytree(REPO / folder, source / folder, ignore=ignore)

    wheels = tmp / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", wheels, source], cwd=tmp)
    (wheel,) = wheels.glob("ppbench-*.whl")

    # No pip of its own: the system pip (seen through --system-site-packages) installs into the
    # venv. --ignore-installed: the editable ppbench in the system site-packages is left alone.
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=tmp)
    python = venv / "bin" / "python"
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              cwd=tmp).stdout.strip())
    assert site_packages.is_relative_to(venv)
    if sys.prefix != sys.base_prefix:
        # pytest itself runs in a virtual environment (as in many CI set-ups), whose packages
        # --system-site-packages does not reach: add them after the venv's own, as a .pth file.
        outer = dict.fromkeys(sysconfig.get_path(k) for k in ("purelib", "platlib"))
        (site_packages / "_outer_env.pth").write_text("".join(f"{path}\n" for path in outer))
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q",
          wheel], cwd=tmp)
    # The editable install's import hook would quietly fill any gap in the wheel from the checkout;
    # in the venv it is dropped once the system site-packages are processed, like a clean machine.
    (site_packages / "sitecustomize.py").write_text(
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path\n"
        "                    if not getattr(f, '__module__', '').startswith('__editable___ppbench_')]\n")

    work = tmp / "work"
    for package in ("plugins", "plugins/datasets", "plugins/attacks", "harness"):
        (work / package).mkdir(parents=True)
        (work / package / "__init__.py").write_text(DECOY.format(name=package.replace("/", ".")))
    return wheel, python, site_packages, work


def test_wheel_holds_one_namespace_and_every_module(installed):
    wheel, *_ = installed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points_txt,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = configparser.ConfigParser(delimiters=("=",))
        entry_points.optionxform = str  # entry point names are case-sensitive
        entry_points.read_string(archive.read(entry_points_txt).decode())

    assert {"ppbench/__init__.py", "ppbench/registry.py", "ppbench/cli.py",
            "ppbench/plugins/__init__.py", "ppbench/plugins/datasets/synthfaces.py"} <= names
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"ppbench"}, f"the wheel installs more than ppbench: {sorted(top_level)}"
    missing = _source_modules() - names
    assert not missing, f"modules in the checkout but not in the wheel (pyproject packages?): {sorted(missing)}"

    assert dict(entry_points["console_scripts"]) == {"ppbench": "ppbench.cli:main"}
    plugins = dict(entry_points["ppbench"])
    assert {"synthfaces", "gaussians2d", "baseline-sanitizers", "adversarial-classifier",
            "fixed-utility", "distortion"} <= set(plugins)
    for name, target in plugins.items():
        assert target.startswith("ppbench.plugins."), (name, target)
        assert f"{target.split(':')[0].replace('.', '/')}.py" in names, (name, target)


def test_the_installed_wheel_is_what_runs_and_every_module_imports(installed):
    _, python, site_packages, work = installed
    probe = json.loads(_run([python, "-c", PROBE], cwd=work).stdout)
    for key in ("ppbench", "plugins", "synthfaces"):
        assert Path(probe[key]).resolve().is_relative_to(site_packages.resolve()), (
            f"{key} came from {probe[key]}, not the wheel in {site_packages}")
    assert "ppbench.plugins.datasets.synthfaces" in probe["modules"]
    outside = {name: file for name, file in probe["files"].items()
               if not (file and Path(file).resolve().is_relative_to(site_packages.resolve()))}
    assert not outside, f"ppbench modules imported from outside the wheel: {outside}"
    assert not probe["harness_imported"] and not probe["plugins_imported"]


def _check_listing(info: dict) -> None:
    def names(kind):
        return {row["name"] for row in info[kind]}

    assert DATASETS <= names("datasets")
    assert SANITIZERS <= names("sanitizers")
    assert ATTACKS <= names("attacks")
    assert METRICS <= names("metrics")
    assert info["failures"] == []
    assert {row["distribution"] for kind in ("datasets", "sanitizers", "attacks", "metrics")
            for row in info[kind]} == {"ppbench"}


def test_decoy_folders_in_the_working_directory_do_not_shadow_the_built_ins(installed):
    _, python, _, work = installed
    # `python -m` puts the working directory first on sys.path: the old layout imported the decoys,
    # which are live.
    for module in ("plugins.datasets", "harness"):
        shadowed = subprocess.run([python, "-c", f"import {module}"], cwd=work, env=_clean_env(),
                                  capture_output=True, text=True, timeout=60)
        assert shadowed.returncode != 0 and "decoy" in shadowed.stderr, shadowed.stderr
    result = _run([python, "-m", "ppbench.cli", "list", "--json"], cwd=work)
    _check_listing(json.loads(result.stdout))
    assert "decoy" not in result.stderr


def test_the_console_script_works_from_a_folder_with_decoys(installed):
    _, python, _, work = installed
    script = python.parent / "ppbench"
    assert script.exists()
    assert Path(script.read_text().splitlines()[0].removeprefix("#!")).parent == python.parent
    result = _run([script, "list"], cwd=work)
    for name in DATASETS | SANITIZERS | ATTACKS | METRICS:
        assert name in result.stdout
    assert "failed to load" not in result.stdout and "decoy" not in result.stderr
