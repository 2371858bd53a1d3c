"""What an attack `requires`: read from the configured instance, entries that may be alternatives
("any one of these"), resolved against the sanitizer and the data set, validated, and listed.

The attacks and the data set with aux data live in this module and reach the runner as extra
plugins of a registry built here.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ppbench import Attack, AttackResult, DatasetSpec, Task, hookimpl
from ppbench.api import PluginContractError
from ppbench.kinds import requirement_alternatives, requirement_labels, resolve_requirements
from ppbench.registry import build_registry, describe
from ppbench.runner import RunOptions, run
from ppbench.spec import load_spec
from ppbench.store import ResultStore
from ppbench.testing import TOY_ATTRIBUTES, toy_splits

# --- plugins -------------------------------------------------------------------------------------


def load_tiny_with_aux(profile, seed, n_train=240, n_attack=240, n_test=120, size=8):
    return toy_splits(seed, n_train, n_test, size, n_attack=n_attack)  # toy_splits includes aux


TINY_WITH_AUX = DatasetSpec(
    name="tiny-with-aux",
    description="the testkit's tiny data set, with public aux data",
    load=load_tiny_with_aux,
    attributes=TOY_ATTRIBUTES,
    tasks=(Task("tiny-with-aux", "secret", "secret", ("keep",)),),
    params={"n_train": 240, "n_attack": 240, "n_test": 120, "size": 8},
)


class SourceAttack(Attack):
    """Requires what its `source` parameter names, per instance: "aux", or alternatives written
    "aux|raw_train". Reports in its diagnostics what its view carried."""

    name = "source-attack"

    def __init__(self, source: str = "raw_train"):
        self.source = source
        self.requires = {tuple(source.split("|"))}

    def run(self, view, task, ctx):
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long), diagnostics={
            "had_aux": float(view.aux is not None),
            "had_raw_train": float(view.raw_train is not None),
            "had_oracle": float(view.oracle is not None),
            "had_discriminator": float("discriminator" in view.handles),
        })


class EitherDataAttack(Attack):
    """Class-level alternatives: public aux data if there is some, else the raw train split."""

    name = "either-data-attack"
    requires = frozenset({("aux", "raw_train")})

    def run(self, view, task, ctx):
        return AttackResult(torch.zeros(len(view.test), dtype=torch.long))


@hookimpl
def ppbench_register_datasets(register):
    register(TINY_WITH_AUX)


@hookimpl
def ppbench_register_attacks(register):
    register(SourceAttack)
    register(EitherDataAttack)


@pytest.fixture
def registry(testkit):
    return build_registry(extra_plugins={"requirements": sys.modules[__name__]})


def run_cells(tmp_path: Path, registry, dataset: str, sanitizer: str, sources: list[str]) -> dict:
    """Run source-attack with each `source` on one sanitizer; (source -> (status, error, diags))."""
    attacks = "".join(f'\n[[attacks]]\nname = "source-attack"\nsource = "{s}"\n' for s in sources)
    tmp_path.mkdir(parents=True, exist_ok=True)
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent(f"""
        [benchmark]
        name = "requirements"
        tasks = ["secret"]
        seeds = 1

        [dataset]
        name = "{dataset}"

        [[sanitizers]]
        name = "{sanitizer}"
        """) + attacks)
    run(load_spec(spec), RunOptions(store=str(tmp_path / "results.db"),
                                    cache_dir=str(tmp_path / "cache")), registry=registry)
    out: dict[str, tuple[str, str | None, dict[str, float]]] = {}
    frame = ResultStore(tmp_path / "results.db").frame()
    for label, rows in frame.groupby("plugin_label"):
        source = label.split("source=", 1)[1].strip("')")
        diags = {m.removeprefix("diag:"): v for m, v in zip(rows.metric, rows.value)
                 if m.startswith("diag:")}
        error = rows.error.iloc[0]
        out[source] = (rows.status.iloc[0], error if isinstance(error, str) else None, diags)
    return out


# --- resolution ----------------------------------------------------------------------------------


def test_plain_names_are_granted_when_met_and_explained_when_not():
    met = resolve_requirements({"raw_train", "oracle"}, has_aux=False, capabilities=())
    assert met.granted == {"raw_train", "oracle"} and met.unmet is None

    unmet = resolve_requirements(frozenset({"discriminator"}), has_aux=False, capabilities=(),
                                 attack="probe", sanitizer="darken", dataset="tiny")
    assert unmet.unmet == "attack 'probe' requires discriminator, but sanitizer 'darken' does not expose discriminator"
    no_aux = resolve_requirements({"aux"}, has_aux=False, capabilities=(), attack="probe",
                                  dataset="tiny")
    assert no_aux.unmet == "attack 'probe' requires aux, but data set 'tiny' has no public aux data"


def test_alternatives_grant_the_first_that_can_be_met_in_the_order_given():
    either = {("aux", "raw_train")}
    assert resolve_requirements(either, has_aux=True, capabilities=()).granted == {"aux"}
    assert resolve_requirements(either, has_aux=False, capabilities=()).granted == {"raw_train"}
    # The order is the attack's preference, not an alphabetical one.
    assert resolve_requirements({("raw_train", "aux")}, has_aux=True, capabilities=()).granted == {"raw_train"}
    handles = {("generator", "discriminator")}
    assert resolve_requirements(handles, has_aux=False,
                                capabilities={"discriminator", "generator"}).granted == {"generator"}
    assert resolve_requirements(handles, has_aux=False,
                                capabilities={"discriminator"}).granted == {"discriminator"}


def test_unordered_alternatives_are_tried_alphabetically_so_every_process_grants_the_same():
    assert requirement_alternatives({frozenset({"raw_train", "aux"})}) == (("aux", "raw_train"),)
    assert resolve_requirements({frozenset({"raw_train", "aux"})}, has_aux=True,
                                capabilities=()).granted == {"aux"}


def test_alternatives_none_of_which_can_be_met_say_why_for_each():
    resolution = resolve_requirements({("aux", "discriminator"), "raw_train"}, has_aux=False,
                                      capabilities=(), attack="probe", sanitizer="darken",
                                      dataset="tiny")
    assert resolution.unmet == ("attack 'probe' requires aux|discriminator (any one), but data set "
                                "'tiny' has no public aux data and sanitizer 'darken' does not "
                                "expose discriminator")
    assert resolution.granted == {"raw_train"}  # what could be met, for the record


@pytest.mark.parametrize("requires, complaint", [
    ({"raw_trian"}, "unknown grants ['raw_trian']"),
    ({("aux", "raw-train")}, "unknown grants ['raw-train']"),
    ({(("aux",), "raw_train")}, "unknown grants [('aux',)]"),
    ({()}, "empty set of alternatives"),
    ("aux", "must be a collection of requirements"),
    ({3}, "each entry of requires is a name or a tuple"),
])
def test_invalid_requirements_are_a_clear_error_naming_the_attack(requires, complaint):
    with pytest.raises(PluginContractError) as error:
        resolve_requirements(requires, has_aux=True, capabilities=(), attack="probe")
    assert complaint in str(error.value) and "'probe'" in str(error.value)
    if "unknown" in complaint:
        assert "known: ['aux', 'discriminator', 'generator', 'honest_reference', 'oracle', 'raw_train', " in str(error.value)


# --- registration and listing --------------------------------------------------------------------


def test_class_level_alternatives_register_and_unknown_names_are_reported_at_load():
    class Misspelt(Attack):
        name = "misspelt"
        requires = frozenset({("aux", "raw_trian")})

    class Plugin:
        @hookimpl
        def ppbench_register_attacks(self, register):
            register(EitherDataAttack)
            register(Misspelt)

    registry = build_registry(extra_plugins={"plugin": Plugin()})
    failure = next(f for f in registry.failures if f.plugin == "plugin")
    assert "attack 'misspelt' requires unknown grants ['raw_trian']" in failure.error

    class Fine:
        @hookimpl
        def ppbench_register_attacks(self, register):
            register(EitherDataAttack)

    assert "either-data-attack" in build_registry(extra_plugins={"fine": Fine()}).names("attacks")


def test_ppbench_list_writes_alternatives_with_a_bar_and_shows_the_instance_requirements(registry):
    attacks = {row["name"]: row for row in describe(registry)["attacks"]}
    assert attacks["either-data-attack"]["requires"] == ["aux|raw_train"]
    # Set in __init__: the default configuration's, not the (empty) class attribute.
    assert attacks["source-attack"]["requires"] == ["raw_train"]
    assert attacks["discriminator-attack"]["requires"] == ["discriminator"]
    assert requirement_labels({"oracle", ("discriminator", "generator")}) == [
        "discriminator|generator", "oracle"]


# --- the runner ----------------------------------------------------------------------------------


def test_the_runner_reads_the_configured_instance_requirements(registry, tmp_path):
    got = run_cells(tmp_path, registry, "tiny", "darken", ["aux", "raw_train", "oracle"])
    status, error, _ = got["aux"]
    # The class attribute asks for nothing: only the instance says aux, and tiny has none.
    assert status == "n/a"
    assert error == ("attack 'source-attack(source=aux)' requires aux, but data set 'tiny' has "
                     "no public aux data")
    assert got["raw_train"][0] == "ok" and got["raw_train"][2] == {
        "had_aux": 0.0, "had_raw_train": 1.0, "had_oracle": 0.0, "had_discriminator": 0.0}
    assert got["oracle"][0] == "ok" and got["oracle"][2]["had_oracle"] == 1.0
    assert got["oracle"][2]["had_raw_train"] == 0.0


def test_the_view_grants_the_first_alternative_met_and_nothing_more(registry, tmp_path):
    sources = ["aux|raw_train", "raw_train|aux", "discriminator|raw_train"]
    with_aux = run_cells(tmp_path / "with-aux", registry, "tiny-with-aux", "darken", sources)
    assert with_aux["aux|raw_train"][2] == {"had_aux": 1.0, "had_raw_train": 0.0, "had_oracle": 0.0,
                                            "had_discriminator": 0.0}
    assert with_aux["raw_train|aux"][2]["had_raw_train"] == 1.0
    assert with_aux["raw_train|aux"][2]["had_aux"] == 0.0
    assert with_aux["discriminator|raw_train"][2]["had_raw_train"] == 1.0

    without_aux = run_cells(tmp_path / "without-aux", registry, "tiny", "darken", sources)
    assert without_aux["aux|raw_train"][0] == "ok"
    assert without_aux["aux|raw_train"][2]["had_aux"] == 0.0
    assert without_aux["aux|raw_train"][2]["had_raw_train"] == 1.0

    exposing = run_cells(tmp_path / "exposing", registry, "tiny", "with-discriminator",
                         ["discriminator|raw_train", "aux|discriminator"])
    assert exposing["discriminator|raw_train"][2]["had_discriminator"] == 1.0
    assert exposing["discriminator|raw_train"][2]["had_raw_train"] == 0.0
    assert exposing["aux|discriminator"][2]["had_discriminator"] == 1.0


def test_an_instance_with_unmet_alternatives_is_na_and_one_with_unknown_names_is_an_error(
        registry, tmp_path):
    got = run_cells(tmp_path, registry, "tiny", "darken", ["aux|discriminator", "raw_trian"])
    status, error, _ = got["aux|discriminator"]
    assert status == "n/a"
    assert "requires aux|discriminator (any one)" in error
    assert "data set 'tiny' has no public aux data" in error
    assert "sanitizer 'darken' does not expose discriminator" in error
    status, error, _ = got["raw_trian"]
    assert status == "error"
    assert "'source-attack(source=raw_trian)'" in error and "unknown grants ['raw_trian']" in error
    assert "'raw_train'" in error  # the valid names are listed
