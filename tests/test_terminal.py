"""What a terminal user reads (issue 11): a compact table that fits 120 columns with the key
figures, every column with ``--wide``, the provenance once, no bars in a log but a line per
finished job, bar labels that do not repeat themselves, a closing summary of where things are,
``ppbench leaderboard --task`` and ``ppbench list`` with versions and utility attributes."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest
from test_cli_errors import run_args, tiny_spec
from test_leaderboard import board, store  # noqa: F401 (fixtures)

from ppbench.boards.terminal import WIDTH, render_terminal
from ppbench.cli import main
from ppbench.progress import bar_label


@pytest.fixture
def tiny_store(testkit, tmp_path, capsys):
    """The testkit's tiny benchmark run once through the CLI, with what it wrote."""
    args = [a for a in run_args(tmp_path) if a != "--no-progress"]
    assert main(args) == 0
    return tmp_path / "r.db", capsys.readouterr()


def test_a_log_gets_a_line_per_finished_job_and_no_bars(tiny_store):
    _, captured = tiny_store
    # capsys' stderr is not a terminal: no bar redraws (carriage returns), one line per job.
    assert "\r" not in captured.err
    lines = [line for line in captured.err.splitlines() if re.match(r"ppbench: \[\s*\d+/\d+ cells", line)]
    # Two sanitizer configurations on one task and one seed: two jobs, two cells each.
    assert len(lines) == 2, captured.err
    assert re.search(r"\[2/4 cells, .*\] secret/darken\(strength=0\.0\) seed 0: 2 ok$", lines[0]), lines[0]
    assert "[4/4 cells" in lines[-1]


def test_the_run_ends_with_where_the_store_cache_and_board_are(tiny_store, tmp_path):
    _, captured = tiny_store
    tail = captured.err.splitlines()[-3:]
    assert tail[0] == f"ppbench: results: 4 cells in the store {(tmp_path / 'r.db').resolve()}"
    assert tail[1].startswith(f"ppbench: fits and shared models: {tmp_path / 'cache'} (")
    assert "not published: `ppbench publish" in tail[2] and "--store" in tail[2]


def test_no_progress_means_no_progress_lines(testkit, tmp_path, capsys):
    assert main(run_args(tmp_path)) == 0
    assert not re.search(r"ppbench: \[\s*\d+/\d+ cells", capsys.readouterr().err)


def test_the_leaderboard_command_filters_by_task_and_names_the_known_ones(tiny_store, capsys):
    store, _ = tiny_store
    assert main(["leaderboard", "--store", str(store), "--task", "secret"]) == 0
    assert "tiny / secret" in capsys.readouterr().out
    assert main(["leaderboard", "--store", str(store), "--task", "smiling"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ppbench: error: --task smiling: no board of that task in {store}; its tasks: secret"


def test_the_compact_table_fits_120_columns_with_the_key_figures(board):
    text = render_terminal([board])
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    header = next(line for line in text.splitlines() if line.lstrip().startswith("tier"))
    for key in ("sanitizer", "fixed-utility", "worst case", "worst attack", "leaks", "front", "⚠"):
        assert key in header
    # Per-attack columns are --wide's; the flag is numbered in the table and spelled out below.
    assert "linear-probe adv" not in text
    blur = next(line for line in text.splitlines() if line.lstrip()[:1].isdigit() and "blur(sigma=2.0)" in line)
    number = re.search(r"⚠(\d+)", blur).group(1)
    assert re.search(rf"^⚠{number} blur\(sigma=2\.0\): passes the standard check", text, re.M)


def test_long_names_are_cut_to_fit_but_numbers_never(board):
    long = "a-sanitizer-with-a-very-long-name(strength=0.123456789,other=[1,2,3],mode='x')"
    ranking = board.ranking.assign(sanitizer=[f"{long}-{i}" for i in range(len(board.ranking))])
    text = render_terminal([replace(board, ranking=ranking)])
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert "…" in text
    worst = [f"{v:.3f}" for v in board.ranking["worst_case"] if v == v]
    assert all(w in text for w in worst)


def test_a_threat_model_judged_apart_gets_its_own_compact_column(board):
    # Its ranking columns ("key-holder_worst_case") are not Python identifiers: the table reads
    # them by name (a key-holder board once failed to print after its run).
    ranking = board.ranking.assign(**{"key-holder_worst_case": 0.9, "key-holder_worst_case_ci_low": 0.85,
                                      "key-holder_worst_case_ci_high": 0.95})
    text = render_terminal([replace(board, ranking=ranking)])
    header = next(line for line in text.splitlines() if line.lstrip().startswith("tier"))
    assert "key holder" in header
    assert text.count("0.900 ± 0.050") == len(ranking)


def test_wide_shows_every_column(board):
    text = render_terminal([board], wide=True)
    for column in board.display().columns:
        if column != "flag":
            assert column in text


def test_provenance_is_said_once_for_several_boards(board):
    other = replace(board, slug="synthfaces-smiling-copy", task="smiling-copy")
    text = render_terminal([board, other])
    assert text.count("provenance: ppbench") == 1
    assert text.count("device: cpu") == 1


@pytest.mark.parametrize("label, desc, shown", [
    ("smiling/identity adversarial-classifier", "adversarial classifier", "smiling/identity adversarial-classifier"),
    ("smiling/ppgan fit", "ppgan fit", "smiling/ppgan fit"),
    ("smiling/blur(sigma=2.0) linear-probe", "linear-probe: train", "smiling/blur(sigma=2.0) linear-probe train"),
    ("smiling/blur fixed-classifier", "train", "smiling/blur fixed-classifier train"),
    ("", "train", "train"),
])
def test_bar_labels_do_not_repeat_themselves(label, desc, shown):
    assert bar_label(label, desc) == shown


def test_list_shows_plugin_versions_and_the_utility_attributes_of_tasks(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  blur v\d+  \[ppbench ", out, re.M)
    assert re.search(r"^        smiling: hide smiling; keep \(utility\) identity, ", out, re.M)
    # Each attack's attacker-knowledge level, from its threat model (issue 13's classification).
    for attack, level in (("fixed-classifier", "ignorant"), ("adversarial-classifier", "semi-informed"),
                          ("secret-extraction", "informed")):
        assert re.search(rf"^  {attack} v\d+ [^\n]*\n(?:      [^\n]*\n)*?      attacker knowledge: {level}; "
                         r"threat model: ", out, re.M), attack
    assert main(["list", "--json"]) == 0
    synthfaces = next(d for d in json.loads(capsys.readouterr().out)["datasets"] if d["name"] == "synthfaces")
    smiling = next(t for t in synthfaces["task_details"] if t["name"] == "smiling")
    assert smiling["sensitive"] == "smiling" and "identity" in smiling["utility"]


def test_the_spec_changed_by_flags_says_why_it_is_not_published(testkit, tmp_path, capsys):
    assert main(run_args(tmp_path, "--seeds", "1", spec=tiny_spec(tmp_path))) == 0
    capsys.readouterr()
    assert main(run_args(tmp_path, "--attack", "threshold")) == 0
    assert "not published: flags changed the spec" in capsys.readouterr().err


def test_a_published_benchmark_is_named_by_its_name():
    from ppbench.spec_args import default_spec_path, spec_path_arg
    from ppbench.spec import SpecError

    root = default_spec_path().parents[1]
    assert spec_path_arg("mnist5k") == root / "mnist5k" / "benchmark.toml"
    assert spec_path_arg(None) == default_spec_path()
    with pytest.raises(SpecError, match=r"nosuch: no such spec file, nor a published benchmark .*mnist5k"):
        spec_path_arg("nosuch")


def test_show_prints_a_cell_in_full_and_names_ambiguity(tiny_store, capsys):
    store, _ = tiny_store
    assert main(["leaderboard", "--store", str(store), "--format", "json"]) == 0
    (board,) = json.loads(capsys.readouterr().out)
    row = next(r for r in board["rows"] if r["sanitizer"] == "darken(strength=1.0)")
    key = row["values"]["threshold adv"]["cell_keys"]["0"]
    assert main(["show", key[:10], "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"cell {key}: attack threshold on darken(strength=1.0), tiny / secret")
    for section in ("status: ok", "threat model: ", "figures:", "  advantage ", "budget:",
                    "  profile quick: ", "provenance:", "  run_seed: 0"):
        assert section in out, section
    # The budget the plugin recorded with its figure, stored beside it (issue 13).
    attack_items = re.search(r"attack_items (\d+)", out).group(1)
    assert f"  recorded with the figures: training_items {attack_items}" in out
    assert main(["show", "--store", str(store), "--plugin", "threshold"]) == 0
    assert capsys.readouterr().out.count("\ncell ") + 1 == 2  # one per sanitizer configuration
    assert main(["show", "", "--store", str(store)]) == 2
    assert "name a cell" in capsys.readouterr().err
    assert main(["show", "zzzz", "--store", str(store)]) == 2
    assert "no stored cell matches key zzzz*" in capsys.readouterr().err
