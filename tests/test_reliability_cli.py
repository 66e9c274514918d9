"""Fuzzing the command line's arguments: every bad argument is one line on stderr and exit status 2.

Bad law names get suggestions; malformed `--x`, absurd numbers and
unwritable output paths are refused before any fitting; a failure while
writing the JSON leaves neither a partial file nor a temporary one, and an
earlier file at that path untouched. Each input checked is counted in the
hostile-input tally (tests/hostile.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hostile import handled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scalejax as sj
import scalejax.cli
from scalejax.cli import main

# The same 8 runs as tests/test_reliability_ingest.py, so that the one CLI fit below shares its compiled shape.
X = np.geomspace(1e3, 1e9, 8)
LOSS = 1.7 + 400.0 * X**-0.3
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ANY_TEXT = st.text(max_size=20)


@pytest.fixture(scope="module")
def good_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    pd.DataFrame({"params": X, "loss": LOSS, "note": "n"}).to_csv(path, index=False)
    return path


def run(argv, capsys):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_refused(status, out, err, *fragments):
    assert status == 2, (out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalejax: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert "wrote" not in out


def fit_args(csv, law="power", x=("x=params",), y="loss", extra=()):
    argv = ["fit", csv, "--law", law]
    for item in x:
        argv += ["--x", item]
    return [*argv, "--y", y, *extra]


def one_edit(name: str):
    """Strategy: `name` with one character deleted, replaced, inserted or swapped, or its case changed."""
    i = st.integers(0, len(name) - 1)
    c = st.sampled_from("abcdefghijklmnopqrstuvwxyz_")
    return st.one_of(
        i.map(lambda k: name[:k] + name[k + 1 :]),
        st.tuples(i, c).map(lambda t: name[: t[0]] + t[1] + name[t[0] + 1 :]),
        st.tuples(i, c).map(lambda t: name[: t[0]] + t[1] + name[t[0] :]),
        st.integers(0, len(name) - 2).map(lambda k: name[:k] + name[k + 1] + name[k] + name[k + 2 :]),
        st.just(name.upper()),
    )


@FUZZ
@given(data=st.data(), law=st.sampled_from(sj.laws.available()))
def test_misspelled_law_names_get_a_suggestion(data, law, good_csv, capsys):
    typo = data.draw(one_edit(law).filter(lambda s: s not in sj.laws.available() and not s.startswith("-")))
    status, out, err = run(fit_args(good_csv, law=typo), capsys)
    assert_refused(status, out, err, f"unknown law {typo!r}", "did you mean", repr(law), "available: ")
    handled("cli: misspelled law")


@FUZZ
@given(name=ANY_TEXT.filter(lambda s: s not in sj.laws.available() and not s.startswith("-")))
def test_arbitrary_law_names_are_refused_on_one_line(name, good_csv, capsys):
    status, out, err = run(fit_args(good_csv, law=name), capsys)
    assert_refused(status, out, err, "unknown law", "available: " + ", ".join(sj.laws.available()))
    handled("cli: arbitrary law name")


COLUMN = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=10)


@st.composite
def malformed_x(draw):
    """`(items for --x, fragment of the error)`."""
    kind = draw(st.sampled_from(["no_equals", "empty_name", "empty_column", "repeated", "unknown_input", "no_column"]))
    if kind == "no_equals":
        item = draw(COLUMN.filter(lambda s: "=" not in s and not s.startswith("-")))
        return kind, [item], [f"--x {item!r} is not NAME=COLUMN"]
    if kind == "empty_name":
        item = draw(st.sampled_from(["", " ", "\t"])) + "=" + draw(COLUMN)
        return kind, [item], ["is not NAME=COLUMN"]
    if kind == "empty_column":
        item = draw(st.sampled_from(["x", "N", "zz"])) + "=" + draw(st.sampled_from(["", " ", "  "]))
        return kind, [item], ["is not NAME=COLUMN"]
    if kind == "repeated":
        return kind, ["x=params", "x=" + draw(st.sampled_from(["params", "loss", "other"]))], ["maps input 'x' twice"]
    if kind == "unknown_input":
        name = draw(COLUMN.filter(lambda s: "=" not in s and s.strip() and s.strip() != "x" and not s.startswith("-")))
        return kind, ["x=params", f"{name}=params"], ["law 'power' takes inputs x", "not inputs of the law"]
    column = draw(COLUMN.filter(lambda s: s.strip() not in {"params", "loss", "note", ""} and not s.startswith("-")))
    return kind, [f"x={column}"], [f"column {column.strip()!r} (for x['x']) not found"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed_x())
def test_malformed_x_mappings(case, good_csv, capsys):
    kind, items, fragments = case
    status, out, err = run(fit_args(good_csv, x=items), capsys)
    assert_refused(status, out, err, *[scalejax.cli.one_line(f) for f in fragments])
    handled(f"cli: --x {kind}")


def not_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


def not_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return True
    return False


# option -> strategy of bad values (as text) -> fragment of the error
BAD_OPTIONS = {
    "--bootstrap": st.one_of(
        st.integers(max_value=1).map(str),
        st.integers(min_value=1_000_001).map(str),
        st.sampled_from(["1e3", "2.5", "many", "", "0x10", "10**12"]),
        ANY_TEXT.filter(not_int),
    ),
    "--max-steps": st.one_of(
        st.integers(max_value=0).map(str),
        st.integers(min_value=1_000_001).map(str),
        st.sampled_from(["1.5", "inf", ""]),
        ANY_TEXT.filter(not_int),
    ),
    "--seed": st.one_of(
        st.integers(max_value=-1).map(str),
        st.integers(min_value=2**63).map(str),  # beyond JAX's 64-bit seeds: an OverflowError under --posterior
        st.sampled_from(["1.0", "seed", "", str(2**64)]),
    ),
    "--level": st.one_of(
        st.floats(max_value=0).map(repr),
        st.floats(min_value=1).map(repr),
        st.sampled_from(["nan", "inf", "-inf", "0", "1", "", "95", "95%"]),
        ANY_TEXT.filter(not_float),
    ),
    "--delta": st.one_of(
        st.floats(max_value=0).map(repr),
        st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "-0.0", "", "abc"]),
        ANY_TEXT.filter(not_float),
    ),
    "--loss": ANY_TEXT.filter(lambda s: s not in {"huber", "squared_log", "squared"}),
}


@pytest.mark.parametrize("command", ["fit", "report"])
@pytest.mark.parametrize("option", sorted(BAD_OPTIONS))
@FUZZ
@given(data=st.data())
def test_absurd_option_values(command, option, data, good_csv, tmp_path, capsys):
    """`fit` and `report` check every option alike, before any work (`--posterior` makes a bad seed fatal)."""
    value = data.draw(BAD_OPTIONS[option].filter(lambda s: not s.startswith("-") or s[1:2].isdigit() or s == "-inf"))
    argv = [*fit_args(good_csv), f"{option}={value}", "--posterior" if option == "--seed" else "--y=loss"]
    if command == "report":
        argv = ["report", *argv[1:], "--out", tmp_path / "r.html"]
    status, out, err = run(argv, capsys)
    word = {"--delta": "delta"}.get(option, option)
    assert_refused(status, out, err, word)
    assert out == ""
    handled(f"cli: bad {option} ({command})")


@FUZZ
@given(
    pieces=st.lists(
        st.sampled_from(
            [
                ["--bootstrap", "0"],
                ["--bootstrap", "-5"],
                ["--bootstrap", str(10**12)],
                ["--max-steps", "-1"],
                ["--delta", "nan"],
                ["--seed", "-3"],
                ["--x", "x=params"],
                ["--x", "N"],
                ["--frobnicate"],
                ["--json", "/nonexistent-dir/out.json"],
                ["--law", "chinchila"],
                ["--y", "no-such-column"],
                ["--weights", "missing-weights"],
            ]
        ),
        min_size=1,
        max_size=5,
    ),
    order=st.randoms(use_true_random=False),
)
def test_random_combinations_of_bad_arguments(pieces, order, good_csv, capsys):
    """Any mix of bad arguments, in any order: one line, exit 2, nothing fitted or written."""
    base = [["--law", "power"], ["--x", "x=params"], ["--y", "loss"]]
    groups = base + pieces
    order.shuffle(groups)
    argv = ["fit", good_csv, *[a for g in groups for a in g]]
    # A repeated --law, --x or --y may be overridden by a later good one (argparse keeps
    # the last), so make sure at least one argument is bad whatever the order.
    overridable = (["--x", "x=params"], ["--law", "chinchila"], ["--y", "no-such-column"])
    if all(p in overridable for p in pieces):
        argv.append("--frobnicate")
    status, out, err = run(argv, capsys)
    assert_refused(status, out, err)
    handled("cli: random bad combination")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "required: command"),
        (["laws", "extra"], "unrecognized arguments: extra"),
        (["demo", "--law", "power"], "unrecognized arguments"),
        (["fit"], "required"),
        (["fit", "{csv}"], "required"),
        (["fit", "{csv}", "--law", "-x", "--x", "x=params", "--y", "loss"], "--law: expected one argument"),
        (["fit", "{dir}", "--law", "power", "--x", "x=params", "--y", "loss"], "is a directory"),
        (["fit", "{missing}", "--law", "power", "--x", "x=params", "--y", "loss"], "no such file"),
        (["fit", "{csv}\nsecond line", "--law", "power", "--x", "x=params", "--y", "loss"], "\\nsecond line"),
    ],
)
def test_structural_argument_errors(argv, fragment, good_csv, tmp_path, capsys):
    subs = {"{csv}": str(good_csv), "{dir}": str(tmp_path), "{missing}": str(tmp_path / "missing.csv")}
    for key, value in subs.items():
        argv = [a.replace(key, value) for a in argv]
    status, out, err = run(argv, capsys)
    assert_refused(status, out, err, fragment)
    handled("cli: structural argument error")


def unwritable_paths(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    (tmp_path / "a_dir").mkdir()
    return {
        "missing directory": (tmp_path / "no" / "such" / "out.json", "does not exist"),
        "parent is a file": (a_file / "out.json", "is a file, not a directory"),
        "path is a directory": (tmp_path / "a_dir", "is a directory"),
        "empty": ("", "--json needs a file path"),
        "NUL byte": ("out\x00.json", "--json needs a file path"),
    }


@pytest.mark.parametrize("case", ["missing directory", "parent is a file", "path is a directory", "empty", "NUL byte"])
def test_unwritable_json_path_is_refused_before_fitting(case, good_csv, tmp_path, capsys):
    path, fragment = unwritable_paths(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    status, out, err = run([*fit_args(good_csv), "--json", path], capsys)
    assert_refused(status, out, err, fragment)
    assert out == ""  # refused before any fit ran
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    handled("cli: unwritable --json path")


def test_unwritable_path_through_the_console_command(good_csv, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scalejax.cli",
            *map(str, fit_args(good_csv)),
            "--json",
            str(tmp_path / "no" / "o.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    handled("cli: unwritable --json (subprocess)")


@pytest.mark.parametrize("failure", ["disk full while writing", "rename refused"])
def test_a_failed_write_leaves_no_partial_file_and_keeps_the_old_one(failure, good_csv, tmp_path, capsys, monkeypatch):
    """The fit succeeds but writing fails: exit 2, one line, the earlier file intact, no temporary file."""
    out_path = tmp_path / "fit.json"
    out_path.write_text('{"earlier": true}\n')
    import scalejax._output

    if failure == "disk full while writing":

        def fsync(fd):  # the bytes reached the temporary file, but the disk is full
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(scalejax._output.os, "fsync", fsync)
    else:

        def replace(src, dst):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(scalejax._output.os, "replace", replace)
    status, out, err = run([*fit_args(good_csv), "--json", out_path], capsys)
    assert_refused(status, out, err, f"--json {out_path}: writing failed", "nothing was written")
    assert out_path.read_text() == '{"earlier": true}\n'
    assert sorted(os.listdir(tmp_path)) == ["fit.json"]
    handled("cli: write failure")


def test_a_successful_run_replaces_the_old_file_whole(good_csv, tmp_path, capsys):
    out_path = tmp_path / "fit.json"
    out_path.write_text("stale")
    status, _, err = run([*fit_args(good_csv), "--json", out_path], capsys)
    assert status == 0, err
    payload = json.loads(out_path.read_text())
    assert payload["params"] == pytest.approx({"E": 1.7, "A": 400.0, "alpha": 0.3}, rel=1e-6)
    assert payload["warnings"] == [] and sorted(os.listdir(tmp_path)) == ["fit.json"]


def test_fit_warnings_reach_stderr_and_the_json(tmp_path, capsys):
    """A flat loss fits but cannot identify the exponent: exit 0, a warning line, and the warning in the JSON."""
    path = tmp_path / "flat.csv"
    pd.DataFrame({"params": X, "loss": np.full(8, 2.0), "note": "n"}).to_csv(path, index=False)
    out_path = tmp_path / "fit.json"
    status, _, err = run([*fit_args(path), "--json", out_path], capsys)
    assert status == 0
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: law 'power': ")
    payload = json.loads(out_path.read_text())
    assert len(payload["warnings"]) == 1 and payload["warnings"][0] in lines[0]
    assert all(v is None for v in payload["stderr"].values())
    assert np.isclose(payload["params"]["E"] + payload["params"]["A"] * 1e6 ** -payload["params"]["alpha"], 2.0)
    handled("cli: flat loss (warning)")
