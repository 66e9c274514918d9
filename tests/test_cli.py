"""The command line: JSON contents on a good CSV, exit status 2 and one clear line on bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scalejax as sj
from scalejax.cli import main
from scalejax.schema import SCHEMA_VERSION, fit_schema

jsonschema = pytest.importorskip("jsonschema")
README = Path(__file__).resolve().parents[1] / "README.md"

EXAMPLE = sj.datasets.load_example("chinchilla")
STARTS_ARGS = ["--law", "chinchilla", "--x", "N=params", "--x", "D=tokens", "--y", "loss"]


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "runs.csv"
    EXAMPLE.rename(columns={"N": "params", "D": "tokens"}).to_csv(path, index=False)
    return path


def run(argv, capsys):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_valid(payload: dict) -> None:
    """The payload satisfies the packaged JSON Schema, and the schema documents every key it holds."""
    schema = fit_schema()
    jsonschema.Draft202012Validator(schema).validate(payload)
    assert set(payload) <= set(schema["properties"]), set(payload) - set(schema["properties"])
    assert payload["schema_version"] == SCHEMA_VERSION


def test_fit_writes_json_matching_the_python_api(good_csv, tmp_path, capsys):
    out_path = tmp_path / "fit.json"
    status, out, err = run(["fit", good_csv, *STARTS_ARGS, "--json", out_path], capsys)
    assert status == 0, err
    payload = json.loads(out_path.read_text())
    assert payload["law"] == "chinchilla"
    assert list(payload["params"]) == ["E", "A", "B", "alpha", "beta"]
    reference = sj.fit("chinchilla", EXAMPLE, x={"N": "N", "D": "D"}, y="loss")
    for name, value in reference.params.items():
        assert payload["params"][name] == pytest.approx(value, rel=1e-9)
    assert payload["objective"] == pytest.approx(reference.objective, rel=1e-12)
    assert payload["n_starts"] == 4500 and payload["n_starts_polished"] == reference.n_starts
    assert 1 <= payload["n_at_best"] <= payload["n_starts_converged"] <= payload["n_starts_polished"] <= 4500
    assert "intervals" not in payload and "n_converged" not in payload  # starts are n_starts_converged
    assert all(np.isfinite(v) and v > 0 for v in payload["stderr"].values())
    assert "alpha" in out and "wrote" in out
    assert_valid(payload)


def test_bootstrap_adds_intervals_and_n_converged(good_csv, tmp_path, capsys):
    out_path = tmp_path / "boot.json"
    status, _, err = run(
        ["fit", good_csv, *STARTS_ARGS, "--bootstrap", "50", "--seed", "3", "--json", out_path], capsys
    )
    assert status == 0, err
    payload = json.loads(out_path.read_text())
    reference = sj.bootstrap("chinchilla", EXAMPLE, x={"N": "N", "D": "D"}, y="loss", n=50, seed=3).interval(0.95)
    assert set(payload["intervals"]) == {"E", "A", "B", "alpha", "beta"}
    for name, (lo, hi) in payload["intervals"].items():
        assert lo < payload["params"][name] < hi
        assert [lo, hi] == pytest.approx([reference.loc[name, "lo"], reference.loc[name, "hi"]], rel=1e-9)
    assert payload["n_converged"] == payload["n_resamples"] == 50
    assert payload["level"] == 0.95
    assert_valid(payload)


def test_level_sets_every_interval(good_csv, tmp_path, capsys):
    out_path = tmp_path / "boot.json"
    argv = ["fit", good_csv, *STARTS_ARGS, "--bootstrap", "50", "--seed", "3", "--level", "0.8", "--json", out_path]
    status, out, err = run(argv, capsys)
    assert status == 0, err
    payload = json.loads(out_path.read_text())
    reference = sj.bootstrap("chinchilla", EXAMPLE, x={"N": "N", "D": "D"}, y="loss", n=50, seed=3).interval(0.8)
    for name, (lo, hi) in payload["intervals"].items():
        assert [lo, hi] == pytest.approx([reference.loc[name, "lo"], reference.loc[name, "hi"]], rel=1e-9)
    assert payload["level"] == 0.8
    assert out.splitlines()[5].split()[-2:] == ["lo80", "hi80"]  # the table's header names the level
    assert_valid(payload)


@pytest.mark.parametrize("path", ["-", "/dev/stdout"])
def test_json_to_stdout_pipes_into_json_tool(path, tmp_path):
    """`scalejax fit ... --json - | python -m json.tool`: standard output is the JSON and nothing else."""
    x = np.geomspace(1e3, 1e9, 8)
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"params": x, "loss": 1.7 + 400.0 * x**-0.3}).to_csv(csv, index=False)
    argv = ["fit", str(csv), "--law", "power", "--x", "x=params", "--y", "loss", "--json", path]
    fit = subprocess.Popen(
        [sys.executable, "-m", "scalejax.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    tool = subprocess.run([sys.executable, "-m", "json.tool"], stdin=fit.stdout, capture_output=True, check=False)
    fit.stdout.close()
    fit_err = fit.stderr.read().decode()
    fit.stderr.close()
    assert fit.wait() == 0 and tool.returncode == 0, (fit_err, tool.stderr)
    payload = json.loads(tool.stdout)
    assert payload["law"] == "power" and "objective: " in fit_err  # the table went to stderr
    assert_valid(payload)


@pytest.mark.slow
def test_posterior_json_matches_the_schema(tmp_path, capsys, monkeypatch):
    """Real `--posterior` output (2 short chains, to stay quick) validates against the schema."""
    import scalejax.bayes

    real = scalejax.bayes.posterior
    monkeypatch.setattr(
        scalejax.bayes, "posterior", lambda *a, **k: real(*a, **{**k, "chains": 2, "draws": 100, "warmup": 100})
    )
    x = np.geomspace(1e3, 1e9, 8)
    noise = np.array([0.01, -0.02, 0.015, -0.005, 0.02, -0.01, 0.005, -0.015])
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"params": x, "loss": (1.7 + 400.0 * x**-0.3) * (1 + noise)}).to_csv(csv, index=False)
    out_path = tmp_path / "post.json"
    argv = ["fit", csv, "--law", "power", "--x", "x=params", "--y", "loss", "--posterior", "--json", out_path]
    status, _, err = run(argv, capsys)
    assert status == 0, err
    payload = json.loads(out_path.read_text())
    assert payload["posterior"]["chains"] == 2 and set(payload["posterior"]["intervals"]) >= {"E", "A", "alpha"}
    assert_valid(payload)


def test_the_readme_documents_the_keys_the_schema_defines():
    """The README's table of JSON keys and the packaged schema agree, key for key and on when each appears."""
    section = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    documented = {key: when.strip() for key, when in rows}
    schema = fit_schema()
    assert set(documented) == set(schema["properties"])
    assert {k for k, when in documented.items() if when == "always"} == set(schema["required"])
    bootstrap = {k for k, when in documented.items() if when == "`--bootstrap`"}
    assert bootstrap == {"intervals", *schema["dependentRequired"]["intervals"]}


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        ([], ["examples:", "scalejax fit runs.csv", "'scalejax COMMAND --help'"]),
        (["fit"], ["examples:", "--json - | python -m json.tool", "--level", "/dev/stdin", "fit.schema.json"]),
        (["report"], ["examples:", "--out report.md --save boot.npz", "both or neither"]),
    ],
)
def test_help_shows_examples(argv, needles, capsys):
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    out, err = capsys.readouterr()
    assert stop.value.code == 0 and err == ""
    for needle in needles:
        assert needle in out, needle


def test_loss_options_reach_the_fit(good_csv, tmp_path, capsys):
    out_path = tmp_path / "fit.json"
    status, _, err = run(["fit", good_csv, *STARTS_ARGS, "--loss", "squared_log", "--json", out_path], capsys)
    assert status == 0, err
    assert json.loads(out_path.read_text())["loss"] == "squared_log"


def _bad_csvs(tmp_path):
    frame = EXAMPLE.rename(columns={"N": "params", "D": "tokens"})
    cases = {}

    def write(name, text):
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        cases[name] = path

    write("empty", "")
    write("header_only", "params,tokens,loss\n")
    nan = frame.copy()
    nan.loc[3, "loss"] = np.nan
    write("nan", nan.to_csv(index=False))
    negative = frame.copy()
    negative.loc[[4, 9], "tokens"] = -1.0
    write("negative", negative.to_csv(index=False))
    text = frame.copy().astype({"params": object})
    text.loc[2, "params"] = "big"
    write("text", text.to_csv(index=False))
    write("too_few", frame.head(3).to_csv(index=False))
    write("garbage", "\x00\x01\x02binary\xff")
    return cases


EXPECTED = {
    "empty": "empty",
    "header_only": "no rows",
    "nan": "line 5",  # row 3 of the frame is line 5 of the file (header is line 1)
    "negative": "lines 6, 11",
    "text": "'big'",
    "too_few": "only 3",
    "garbage": "",
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_csv_exits_2_with_one_line_and_no_output_file(case, tmp_path, capsys):
    path = _bad_csvs(tmp_path)[case]
    out_path = tmp_path / "out.json"
    status, _, err = run(["fit", path, *STARTS_ARGS, "--json", out_path], capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalejax: error:")
    assert EXPECTED[case] in lines[0]
    assert "Traceback" not in err
    assert not out_path.exists()
    assert list(tmp_path.glob(".out.json*")) == []


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (
            ["fit", "{csv}", "--law", "chinchila", "--x", "N=params", "--x", "D=tokens", "--y", "loss"],
            "did you mean 'chinchilla'",
        ),
        (["fit", "{csv}", "--law", "chinchilla", "--x", "N", "--x", "D=tokens", "--y", "loss"], "NAME=COLUMN"),
        (["fit", "{csv}", "--law", "chinchilla", "--x", "N=params", "--y", "loss"], "missing D"),
        (["fit", "{csv}", "--law", "chinchilla", "--x", "N=params", "--x", "D=toks", "--y", "loss"], "'toks'"),
        (["fit", "{csv}", *STARTS_ARGS, "--delta", "-1"], "delta"),
        (["fit", "{csv}", *STARTS_ARGS, "--max-steps", "0"], "max-steps"),
        (["fit", "{csv}", *STARTS_ARGS, "--bootstrap", "-5"], "--bootstrap"),
        (["fit", "{csv}", *STARTS_ARGS, "--bootstrap", "many"], "invalid int"),
        (["fit", "{csv}", *STARTS_ARGS, "--json", "/nonexistent-dir/x.json"], "does not exist"),
        (["fit", "missing.csv", *STARTS_ARGS], "no such file"),
        (["fit"], "required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2(argv, needle, good_csv, capsys):
    status, _, err = run([a.replace("{csv}", str(good_csv)) for a in argv], capsys)
    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert needle in err


def test_console_script_reports_exit_status_2(tmp_path):
    """The installed command itself (not only main()) exits 2 without a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "scalejax.cli", "fit", str(tmp_path / "nope.csv"), *STARTS_ARGS],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"scalejax: error: {tmp_path / 'nope.csv'}: no such file"


def test_laws_lists_the_builtins(capsys):
    status, out, _ = run(["laws"], capsys)
    assert status == 0
    for name in sj.laws.available():
        assert name in out


def test_demo_prints_parameters_and_the_70b_forecast(capsys):
    status, out, _ = run(["demo"], capsys)
    assert status == 0
    assert "70B-parameter, 1.4T-token" in out
    predicted = float(out.split("1.4T-token run: ")[1].split()[0])
    assert 1.9 < predicted < 2.1


def test_duplicate_rows_warn_but_fit(tmp_path, capsys):
    frame = EXAMPLE.rename(columns={"N": "params", "D": "tokens"})
    path = tmp_path / "dup.csv"
    pd.concat([frame, frame.head(1)]).to_csv(path, index=False)
    status, _, err = run(["fit", path, *STARTS_ARGS], capsys)
    assert status == 0
    assert err.startswith("warning:") and "repeat" in err
