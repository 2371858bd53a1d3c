"""Shared fixtures: test plugin distributions put on sys.path the way pip lays them out."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PLUGIN_DISTS = Path(__file__).parent / "plugin_dists"


@pytest.fixture
def install_plugin_dists(monkeypatch):
    """Make the named test distributions importable and discoverable (here and in subprocesses)."""

    def install(*names: str) -> None:
        from ppbench.registry import reset_registry

        for name in names:
            path = str(PLUGIN_DISTS / name)
            monkeypatch.syspath_prepend(path)
            monkeypatch.setenv("PYTHONPATH", path + os.pathsep + os.environ.get("PYTHONPATH", ""))
        reset_registry()

    yield install
    from ppbench.registry import reset_registry

    reset_registry()
    for name in list(sys.modules):
        if name.startswith("ppbench_"):
            del sys.modules[name]


@pytest.fixture
def testkit(install_plugin_dists):
    install_plugin_dists("testkit")


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """No test writes to the real per-user cache: runs that pass no --cache use a session folder
    (tests of the default location unset PPBENCH_CACHE themselves); and no test starts a
    process pool unless it asks for one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PPBENCH_CACHE", str(tmp_path_factory.mktemp("ppbench-cache")))
        # `ppbench run` in tests runs in the test's process: a pool's spawned workers would cost
        # seconds per small run (tests of the pool and of `auto` name their executor).
        patch.setenv("PPBENCH_EXECUTOR", "local")
        yield


@pytest.fixture(autouse=True)
def _fresh_process_state():
    from ppbench import cache

    cache._DATA_CACHE.clear()
    yield
    cache._DATA_CACHE.clear()


@pytest.fixture(scope="module")
def single_torch_thread():
    """For modules of tiny tensors: intra-op threads cost more in synchronisation than they save,
    and on a busy machine every parallel region can stall on a descheduled thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
