"""Sealed runs: the test items cannot be drawn again from the public loader and seeds until the
salt is revealed; then anyone can verify it against the commitment and reproduce the run."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from ppbench.cache import forget_datasets, load_dataset
from ppbench.cli import main
from ppbench.registry import get_registry
from ppbench.sealing import SealError, commitment, salt_file
from ppbench.store import ResultStore

from test_runner import tables, write_spec


def spec(tmp_path):
    return str(write_spec(tmp_path / "s.toml", tables("sanitizers", 'name = "darken"'),
                          tables("attacks", 'name = "threshold"')))


def values(store) -> dict:
    frame = ResultStore(store).frame()
    return {(r.plugin, r.metric): r.value for r in frame.itertuples() if r.status == "ok"}


def test_a_sealed_run_hides_its_salt_and_reveal_lets_anyone_reproduce_it(testkit, tmp_path, capsys):
    store = str(tmp_path / "sealed.db")
    assert main(["run", spec(tmp_path), "--sealed", "--store", store, "--no-progress"]) == 0
    ((seal, salt),) = ResultStore(store).seals()
    assert salt is None, "the store must hold only the commitment until the run is revealed"
    salts = salt_file(store)
    assert stat.S_IMODE(os.stat(salts).st_mode) == 0o600
    secret = next(iter(__import__("json").loads(salts.read_text()).values()))
    assert commitment(secret) == seal
    assert secret not in (tmp_path / "sealed.db").read_bytes().decode("latin-1")

    # The public loader with the public seed derivation draws other test items.
    forget_datasets()
    public = load_dataset(get_registry(), "tiny", (), "quick", 0)
    forget_datasets()
    sealed = load_dataset(get_registry(), "tiny", (), "quick", 0, salt=secret)
    assert not torch.equal(public.test.images, sealed.test.images)

    # Resuming the sealed run reuses its salt: nothing is computed again.
    capsys.readouterr()
    assert main(["run", spec(tmp_path), "--sealed", "--store", store, "--no-progress"]) == 0
    assert "1 already stored, 0 run" in capsys.readouterr().err

    assert main(["reveal", "--store", store]) == 0
    out = capsys.readouterr().out
    assert f"sealed run {seal}: salt {secret}" in out
    assert ResultStore(store).seals() == [(seal, secret)]

    # Anyone with the salt reproduces the numbers exactly, on a fresh store and cache.
    again = str(tmp_path / "again.db")
    assert main(["run", spec(tmp_path), "--salt", secret, "--store", again, "--cache",
                 str(tmp_path / "other-cache"), "--no-progress"]) == 0
    assert values(again) == values(store) and values(store)
    # And the public run is a different draw with cells of its own.
    public_store = str(tmp_path / "public.db")
    assert main(["run", spec(tmp_path), "--store", public_store, "--no-progress"]) == 0
    assert set(ResultStore(public_store).frame()["cell_key"]).isdisjoint(
        ResultStore(store).frame()["cell_key"])


def test_a_salt_that_does_not_match_its_commitment_is_refused(testkit, tmp_path, capsys):
    store = str(tmp_path / "sealed.db")
    assert main(["run", spec(tmp_path), "--sealed", "--store", store, "--no-progress"]) == 0
    ((seal, _),) = ResultStore(store).seals()
    salt_file(store).write_text('{"%s": "%s"}' % (seal, "0" * 32))
    capsys.readouterr()
    assert main(["reveal", "--store", store]) == 2
    err = capsys.readouterr().err
    assert "does not match its commitment" in err and "Traceback" not in err
    with pytest.raises(SealError):
        ResultStore(store).reveal_seal(seal, "0" * 32)
    assert main(["run", spec(tmp_path), "--salt", "xyz", "--store", store]) == 2
    assert "32 hex digits" in capsys.readouterr().err
