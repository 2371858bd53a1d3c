"""Discovery through real entry points: installed distributions, broken ones, clashes, filtering."""

from __future__ import annotations

import json
import subprocess
import sys

from ppbench.registry import build_registry, describe, get_registry

BUILT_IN_SANITIZERS = {"identity", "blackout", "blur", "pixelate", "noise", "filter-generator", "gap-filter",
                       "generator-only", "ppgan", "ppgan-subverted"}
BUILT_IN_ATTACKS = {"adversarial-classifier", "fixed-classifier", "linear-probe", "real-fake", "residual-probe",
                    "secret-extraction", "stego-detector", "reconstruction"}


def test_built_ins_register_through_the_ppbench_distribution():
    registry = build_registry()
    assert BUILT_IN_SANITIZERS <= set(registry.names("sanitizers"))
    assert BUILT_IN_ATTACKS <= set(registry.names("attacks"))
    assert {"fixed-utility", "distortion"} <= set(registry.names("metrics"))
    assert {"synthfaces", "gaussians2d"} <= set(registry.names("datasets"))
    for name in BUILT_IN_SANITIZERS:
        assert registry.source("sanitizers", name).distribution == "ppbench"
    assert not [f for f in registry.failures if f.distribution == "ppbench"]


def test_an_installed_third_party_distribution_is_discovered(testkit):
    registry = get_registry()
    source = registry.source("sanitizers", "darken")
    assert (source.distribution, source.version, source.plugin) == ("ppbench-testkit", "0.1.0", "testkit")
    assert "tiny" in registry.names("datasets")
    assert BUILT_IN_SANITIZERS <= set(registry.names("sanitizers"))


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_load(install_plugin_dists):
    install_plugin_dists("broken", "testkit")
    registry = get_registry()
    failures = {f.plugin: f for f in registry.failures}
    assert "broken" in failures
    assert failures["broken"].distribution == "ppbench-broken"
    assert "needs a module that is not installed" in failures["broken"].error
    assert "darken" in registry.names("sanitizers") and "blur" in registry.names("sanitizers")


def test_a_hook_that_matches_no_spec_fails_loudly_by_name(install_plugin_dists):
    install_plugin_dists("badhook")
    failures = {f.plugin: f for f in get_registry().failures}
    assert "badhook" in failures
    assert "ppbench_register_sanitiser" in failures["badhook"].error


def test_a_name_registered_twice_is_an_error_naming_both_distributions(install_plugin_dists):
    install_plugin_dists("clash")
    registry = get_registry()
    message = " ".join(f.error for f in registry.failures)
    assert "'blur'" in message and "ppbench-clash" in message and "ppbench 0.1.0" in message
    try:
        registry.sanitizer("blur")
    except KeyError as exc:
        assert "ppbench-clash" in str(exc) and "ppbench " in str(exc)
    else:
        raise AssertionError("a clashing name must not resolve to either plugin")


def test_load_plugins_variable_restricts_loading(install_plugin_dists, monkeypatch):
    install_plugin_dists("testkit", "broken")
    monkeypatch.setenv("PPBENCH_LOAD_PLUGINS", "testkit")
    registry = build_registry()
    assert registry.names("sanitizers") == sorted(["darken", "crashing-sanitizer", "shape-changer",
                                                   "nan-sanitizer", "with-discriminator", "seeded-veil",
                                                   "stamped-veil", "dangling-vendor", "copy-release",
                                                   "noise-release", "memorising-filter"])
    assert not registry.failures  # the broken plugin was not even imported
    monkeypatch.setenv("PPBENCH_LOAD_PLUGINS", "ppbench")
    assert "darken" not in build_registry().names("sanitizers")


def test_registering_a_non_plugin_is_reported():
    from ppbench import hookimpl

    class NotASanitizer:
        name = "nope"

    class Plugin:
        @hookimpl
        def ppbench_register_sanitizers(self, register):
            register(NotASanitizer)

    registry = build_registry(extra_plugins={"bad-register": Plugin()})
    failure = next(f for f in registry.failures if f.plugin == "bad-register")
    assert "subclass of ppbench.Sanitizer" in failure.error


def _attack_plugin(**attributes):
    from ppbench import Attack, hookimpl

    attack = type("Declared", (Attack,), {"name": "declared", **attributes})

    class Plugin:
        @hookimpl
        def ppbench_register_attacks(self, register):
            register(attack)

    return Plugin()


def test_threat_models_are_identifiers_from_the_one_table():
    from ppbench.kinds import THREAT_MODELS, ThreatModel

    registry = build_registry(extra_plugins={"vague": _attack_plugin(threat_model="whatever I had")})
    failure = next(f for f in registry.failures if f.plugin == "vague")
    assert "unknown threat_model 'whatever I had'" in failure.error
    assert all(name in failure.error for name in THREAT_MODELS)
    own = ThreatModel("lab-insider", "holds the lab's raw photos", "informed")
    registry = build_registry(extra_plugins={"own": _attack_plugin(threat_model=own)})
    assert "declared" in registry.names("attacks") and not [f for f in registry.failures if f.plugin == "own"]
    row = next(r for r in describe(registry)["attacks"] if r["name"] == "declared")
    assert (row["threat_model"], row["knowledge"], row["kind"]) == ("lab-insider", "informed", "attribute")


def test_an_unknown_scoring_kind_is_reported_when_the_plugin_loads():
    registry = build_registry(extra_plugins={"odd": _attack_plugin(kind="telepathy")})
    failure = next(f for f in registry.failures if f.plugin == "odd")
    assert "unknown kind 'telepathy'" in failure.error and "attribute" in failure.error


def test_every_plugin_kind_has_its_hook_generated_from_the_table():
    from ppbench import hookspecs
    from ppbench.kinds import PLUGIN_KINDS

    for kind in PLUGIN_KINDS.values():
        assert callable(getattr(hookspecs, kind.hook)), kind.hook
    assert sorted(build_registry().entries) == sorted(PLUGIN_KINDS)


def test_ppbench_list_shows_versions_parameters_and_failures(install_plugin_dists):
    install_plugin_dists("testkit", "broken")
    result = subprocess.run([sys.executable, "-m", "ppbench.cli", "list", "--json"],
                            capture_output=True, text=True, check=True)
    info = json.loads(result.stdout)
    darken = next(r for r in info["sanitizers"] if r["name"] == "darken")
    assert darken["distribution"] == "ppbench-testkit" and darken["version"] == "0.1.0"
    assert darken["params"] == {"strength": 0.5}
    attack = next(r for r in info["attacks"] if r["name"] == "discriminator-attack")
    assert attack["requires"] == ["discriminator"] and attack["threat_model"] == "white-box"
    assert any(f["plugin"] == "broken" for f in info["failures"])
    text = subprocess.run([sys.executable, "-m", "ppbench.cli", "list"], capture_output=True,
                          text=True, check=True).stdout
    assert "Plugins that failed to load:" in text and "broken (ppbench-broken)" in text
    assert describe(get_registry())["datasets"]
