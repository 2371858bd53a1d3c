"""Local files change; results must not: a store refuses cells computed from other contents of
the same folder, and the cache never answers an edited folder with a fit of the old one."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest
from PIL import Image

from ppbench.cli import main
from ppbench.data_revision import folder_digest
from ppbench.runner import RunOptions, run
from ppbench.spec import SpecError, load_spec


def write_folder(root, n: int = 60) -> None:
    (root / "img").mkdir(parents=True)
    rows = ["file,gender,smiling"]
    for i in range(n):
        pixels = np.full((8, 8, 3), 40 + 150 * (i % 2), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "img" / f"{i}.png")
        rows.append(f"img/{i}.png,{'fm'[i % 2]},{'ny'[i // 2 % 2]}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def test_the_digest_follows_the_files_not_the_walk(tmp_path):
    write_folder(tmp_path / "a")
    first = folder_digest(tmp_path / "a")
    assert folder_digest(tmp_path / "a") == first
    image = tmp_path / "a" / "img" / "3.png"
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 10**9))
    touched = folder_digest(tmp_path / "a")
    assert touched != first
    (tmp_path / "a" / "img" / "extra.png").write_bytes(image.read_bytes())
    assert folder_digest(tmp_path / "a") not in (first, touched)


@pytest.fixture
def folder_spec(tmp_path):
    root = tmp_path / "faces"
    write_folder(root)
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent(f"""
        [benchmark]
        name = "folder"
        tasks = ["sensitive"]

        [dataset]
        name = "imagefolder"
        root = "{root}"
        sensitive = "gender"
        utility = "smiling"
        image_size = 8
        n_train = 20
        n_attack = 20
        n_test = 10
        n_aux = 0

        [[sanitizers]]
        name = "noise"
        std = 0.1

        [[attacks]]
        name = "linear-probe"
        """))
    return root, spec


def _run(spec, store, cache):
    return run(load_spec(spec), RunOptions(store=str(store), cache_dir=str(cache), isolation="none"))


def test_an_edited_folder_is_refused_by_its_store_and_refitted_not_read_from_the_cache(folder_spec, tmp_path, capsys):
    root, spec = folder_spec
    cache = tmp_path / "cache"
    first = _run(spec, tmp_path / "r1.db", cache)
    assert first.count("ok") == 1 and first.fits_computed == 1
    # The same files in a new store: the cached fit is theirs, and is reused.
    again = _run(spec, tmp_path / "r2.db", cache)
    assert again.fits_reused == 1 and again.fits_computed == 0

    # One image is rewritten: its pixels change.
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(root / "img" / "0.png")
    with pytest.raises(SpecError, match=r"data set 'imagefolder': its files changed since the cells in .*r1\.db"):
        _run(spec, tmp_path / "r1.db", cache)
    # Through the command line: one line, exit status 2, nothing run.
    assert main(["run", str(spec), "--store", str(tmp_path / "r1.db"), "--cache", str(cache),
                 "--no-progress", "--isolation", "none"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "its files changed since" in err
    # A new store for the new files: fitted again, not answered from the cache.
    edited = _run(spec, tmp_path / "r3.db", cache)
    assert edited.fits_computed == 1 and edited.fits_reused == 0 and edited.count("ok") == 1
