"""Hostile tables: CSV files through the command line, DataFrames through the library.

Every hostile input must be refused with one clear error naming the problem
(column, rows or file lines, and the fix); on the command line that is exit
status 2, one line on stderr, no traceback and no output file left behind.
Each input checked is counted in the hostile-input tally (tests/hostile.py).
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hostile import handled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scalejax as sj
from scalejax.cli import main

# A clean table for the `power` law: exact y = 1.7 + 400 x^-0.3 on 8 runs, plus a text column.
X = np.geomspace(1e3, 1e9, 8)
LOSS = 1.7 + 400.0 * X**-0.3
HEADER = ["params", "loss", "note"]
ROWS = [[repr(float(x)), repr(float(y)), f"run {i}"] for i, (x, y) in enumerate(zip(X, LOSS, strict=True))]
ARGS = ["--law", "power", "--x", "x=params", "--y", "loss"]

HYPOTHESIS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text no reader takes for a number or for a missing value: no NUL (that makes a
# binary file) and no line breaks (those shift line numbers; tested on their own).
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n"), min_size=1, max_size=12
).filter(
    lambda s: (
        s.strip().lower() not in {"", "na", "n/a", "nan", "null", "none", "<na>", "#n/a"}
        and pd.isna(pd.to_numeric(pd.Series([s.strip()], dtype=object), errors="coerce")[0])
    )
)
MISSING = st.sampled_from(["", "NA", "nan", "NaN", "null", "None", "  "])
INFINITE = st.sampled_from(["inf", "-inf", "Infinity", "1e999", "-1e400"])
NONPOSITIVE = st.sampled_from(["0", "-0.0", "-1", "-1e-300", "0e5", "-123456789"])


def lines_text(lines) -> str:
    """`line 5` or `lines 3, 9` (the first 8, then `and N more`), as the errors write them."""
    lines = sorted(lines)
    noun = "line" if len(lines) == 1 else "lines"
    shown = ", ".join(str(n) for n in lines[:8])
    return f"{noun} {shown}" + (f" and {len(lines) - 8} more" if len(lines) > 8 else "")


def rows_text(labels) -> str:
    """`row 4` or `rows a, 'b c'`: labels that are blank, hold commas or control characters are quoted."""
    labels = [
        str(v) if str(v) and str(v).isprintable() and str(v) == str(v).strip() and "," not in str(v) else repr(str(v))
        for v in labels
    ]
    noun = "row" if len(labels) == 1 else "rows"
    return f"{noun} {', '.join(labels[:8])}" + (f" and {len(labels) - 8} more" if len(labels) > 8 else "")


def serialise(rows, draw, *, blank_lines=True) -> tuple[bytes, list[int]]:
    """CSV bytes of `rows` (header first) with random line endings and blank lines; data rows' line numbers."""
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    out, numbers, line = [], [], 0
    for i, row in enumerate(rows):
        if blank_lines and i > 0:
            for _ in range(draw(st.integers(0, 2))):
                out.append(ending)
                line += 1
        buf = io.StringIO()
        csv.writer(buf, lineterminator=ending).writerow(row)
        out.append(buf.getvalue())
        line += 1
        if i > 0:
            numbers.append(line)
    return "".join(out).encode("utf-8"), numbers


CSV_KINDS = [
    "empty",
    "header_only",
    "too_few_rows",
    "binary",
    "not_utf8",
    "ragged",
    "duplicate_column",
    "unknown_column",
    "text_in_numbers",
    "missing",
    "infinite",
    "nonpositive",
    "wrong_separator",
]


@st.composite
def hostile_csvs(draw, kind):
    """`(kind, file bytes, fragments the one error line must contain)` for one kind of damage."""
    rows = [list(r) for r in ROWS]
    if kind == "empty":
        return kind, draw(st.sampled_from([b"", b"\n", b"  \n\n", b"\r\n", b"\xef\xbb\xbf"])), ["the file is empty"]
    if kind == "header_only":
        data, _ = serialise([HEADER], draw)
        return kind, data + draw(st.sampled_from([b"", b"\n\n", b"\r\n"])), ["has a header but no rows"]
    if kind == "too_few_rows":
        n = draw(st.integers(1, 2))
        data, _ = serialise([HEADER, *rows[:n]], draw)
        return kind, data, [f"only {n} weighted points", "3 parameters", "'power'"]
    if kind == "binary":
        blob = draw(st.binary(max_size=200))
        at = draw(st.integers(0, len(blob)))
        data = blob[:at] + b"\x00" + blob[at:]
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return kind, data, ["UTF-16", "save it as a UTF-8 CSV"]
        return kind, data, ["binary file", "NUL"]
    if kind == "not_utf8":
        data, _ = serialise([HEADER, *rows], draw)
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xe9", b"\x80abc", b"\xed\xa0\x80"]))
        at = draw(st.integers(len(b"params,"), len(data)))
        return kind, data[:at] + bad + data[at:], ["is not UTF-8 text", "save it as a UTF-8 CSV"]
    if kind == "ragged":
        bad = draw(st.sets(st.integers(0, len(rows) - 1), min_size=1, max_size=len(rows)))
        widths = {}
        for i in bad:
            extra = draw(st.integers(-2, 3).filter(lambda k: k != 0))
            rows[i] = rows[i][: 3 + extra] if extra < 0 else rows[i] + [draw(st.sampled_from(["", "1", "x"]))] * extra
            widths[i] = len(rows[i])
        data, lines = serialise([HEADER, *rows], draw)
        shown = sorted(bad)[:4]
        detail = ", ".join(f"line {lines[i]} has {widths[i]}" for i in shown)
        noun = "1 row does not" if len(bad) == 1 else f"{len(bad)} rows do not"
        return kind, data, [f"{noun} have the 3 fields", detail, "one value per column"]
    if kind == "duplicate_column":
        used = draw(st.sampled_from(["params", "loss"]))
        header = [*HEADER[:2], used]
        data, _ = serialise([header, *rows], draw)
        return kind, data, [f"column name {used!r} appears more than once", "rename"]
    if kind == "unknown_column":
        names = draw(st.lists(TEXT.filter(lambda s: s.strip() not in {"params", "loss"}), min_size=3, max_size=3))
        names = [n.replace(",", "_").replace('"', "_") for n in names]
        data, _ = serialise([names, *rows], draw)
        return kind, data, ["column 'params' (for x['x']) not found", "the table has columns"]

    # Corrupt some cells of one used column.
    column = draw(st.sampled_from(["params", "loss"]))
    j = HEADER.index(column)
    bad = sorted(draw(st.sets(st.integers(0, len(rows) - 1), min_size=1, max_size=len(rows))))
    values = {"text_in_numbers": TEXT, "missing": MISSING, "infinite": INFINITE, "nonpositive": NONPOSITIVE}
    if kind == "wrong_separator":
        sep = draw(st.sampled_from([";", "\t", "|"]))
        text = "\n".join(sep.join(r) for r in [HEADER, *rows]) + "\n"
        return kind, text.encode(), [f"looks separated by {sep!r}", "save it with commas"]
    for i in bad:
        rows[i][j] = draw(values[kind])
    data, lines = serialise([HEADER, *rows], draw)
    where = lines_text([lines[i] for i in bad])
    expected = {
        "text_in_numbers": [f"column {column!r} has {len(bad)} non-numeric values ({where}", "must hold numbers"],
        "missing": [f"column {column!r} has {len(bad)} missing or infinite values ({where})", "remove or fill"],
        "infinite": [f"column {column!r} has {len(bad)} missing or infinite values ({where})", "remove or fill"],
        "nonpositive": [f"column {column!r} has {len(bad)} non-positive values ({where})", "must be > 0"],
    }
    return kind, data, expected[kind]


def run(argv, capsys):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error(status, err, fragments):
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("scalejax: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("kind", CSV_KINDS)
@HYPOTHESIS
@given(data=st.data(), stale=st.booleans())
def test_hostile_csv_gives_one_error_and_no_output_file(kind, data, stale, tmp_path, capsys):
    kind, data, fragments = data.draw(hostile_csvs(kind))
    path = tmp_path / "runs.csv"
    path.write_bytes(data)
    out_path = tmp_path / "fit.json"
    out_path.unlink(missing_ok=True)
    if stale:  # an earlier result at the --json path must survive a failed run untouched
        out_path.write_text('{"earlier": true}\n')
    status, _, err = run(["fit", path, *ARGS, "--json", out_path], capsys)
    assert_one_error(status, err, fragments)
    if stale:
        assert out_path.read_text() == '{"earlier": true}\n'
    else:
        assert not out_path.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".fit.json")] == []
    handled(f"csv: {kind}")


def test_line_numbers_survive_quoted_newlines_and_blank_lines(tmp_path, capsys):
    """A quoted cell spanning lines and blank lines between rows do not shift the lines an error names."""
    text = 'params,loss,note\n1000,2,"two\nlines"\n\n2000,abc,x\n\n\n3000,1.9,y\n'
    path = tmp_path / "runs.csv"
    path.write_text(text)
    status, _, err = run(["fit", path, *ARGS], capsys)
    assert_one_error(status, err, ["column 'loss' has 1 non-numeric values (line 5: 'abc')"])
    handled("csv: quoted newline and blank lines")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        # pandas would take the first field of every row as an index and shift the columns silently.
        ("params,loss\n1,1000,2.0\n2,2000,1.9\n3,3000,1.8\n", "3 rows do not have the 2 fields"),
        # A trailing comma on every row: pandas would again shift the columns.
        ("params,loss\n1000,2.0,\n2000,1.9,\n3000,1.8,\n", "line 2 has 3, line 3 has 3"),
        ('params,loss\n"1000,2.0\n', "not a readable CSV"),
    ],
)
def test_rows_pandas_would_shift_silently_are_refused(text, fragment, tmp_path, capsys):
    path = tmp_path / "runs.csv"
    path.write_text(text)
    status, _, err = run(["fit", path, "--law", "power", "--x", "x=params", "--y", "loss"], capsys)
    assert_one_error(status, err, [fragment])
    handled("csv: silently-shifting rows")


def test_missing_file_and_directory_as_csv(tmp_path, capsys):
    status, _, err = run(["fit", tmp_path / "nope.csv", *ARGS], capsys)
    assert_one_error(status, err, ["nope.csv: no such file"])
    status, _, err = run(["fit", tmp_path, *ARGS], capsys)
    assert_one_error(status, err, ["is a directory", "give the path of a CSV file"])
    handled("csv: missing file or directory", 2)


def test_unicode_names_bom_and_crlf_fit_and_write_json_atomically(tmp_path, capsys):
    """A valid file with unicode column names, a byte-order mark and CRLF endings fits, and replaces an old result."""
    frame = pd.DataFrame({"paramètres": X, "損失": LOSS, "ラベル": [f"run {i}" for i in range(len(X))]})
    path = tmp_path / "runs.csv"
    path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False, lineterminator="\r\n").encode("utf-8"))
    out_path = tmp_path / "fit.json"
    out_path.write_text("stale")
    status, _, err = run(
        ["fit", path, "--law", "power", "--x", "x=paramètres", "--y", "損失", "--json", out_path], capsys
    )
    assert status == 0, err
    payload = json.loads(out_path.read_text(encoding="utf-8"))
    # Exact data from a known law: the fit recovers it.
    assert payload["params"] == pytest.approx({"E": 1.7, "A": 400.0, "alpha": 0.3}, rel=1e-6)
    assert payload["columns"] == {"x": "paramètres", "y": "損失"}
    assert payload["warnings"] == []
    assert {p.name for p in tmp_path.iterdir()} == {"runs.csv", "fit.json"}
    handled("csv: valid, unicode names, BOM, CRLF")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"params,loss\n1000,2\n\x00\x01\x02\xff\n", "binary file"),
        (b"params,loss\n1000,2\n2000\n3000,1.8\n4000,1.7\n", "1 row does not have the 2 fields"),
    ],
)
def test_console_command_refuses_without_traceback(data, needle, tmp_path):
    """The command as a separate process: exit status 2, one stderr line, nothing on stdout."""
    path = tmp_path / "runs.csv"
    path.write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-m", "scalejax.cli", "fit", str(path), *ARGS, "--json", str(tmp_path / "o.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "o.json").exists()
    handled("csv: separate process")


# DataFrames through the library -------------------------------------------------------------

LABELS = st.one_of(
    st.just(None),
    st.lists(st.integers(-(10**6), 10**6), min_size=8, max_size=8, unique=True),
    st.lists(st.text(min_size=1, max_size=6), min_size=8, max_size=8, unique=True),
)
NAMES = st.text(min_size=1, max_size=10).filter(lambda s: s != "note")
BAD_VALUES = {
    "nan": (st.just(float("nan")), "missing or infinite values"),
    "none": (st.just(None), "missing or infinite values"),
    "inf": (st.sampled_from([float("inf"), -float("inf"), 1e308 * 10]), "missing or infinite values"),
    "zero": (st.sampled_from([0.0, -0.0, 0]), "non-positive values"),
    "negative": (st.floats(max_value=-1e-300, allow_infinity=False), "non-positive values"),
    "text": (TEXT, "non-numeric values"),
}


@pytest.mark.parametrize("kind", sorted(BAD_VALUES))
@settings(max_examples=15, deadline=None)
@given(
    labels=LABELS,
    names=st.lists(NAMES, min_size=2, max_size=2, unique=True),
    role=st.sampled_from(["x", "y"]),
    bad=st.sets(st.integers(0, 7), min_size=1, max_size=8),
    data=st.data(),
)
def test_hostile_frame_gives_one_data_error_naming_column_and_rows(labels, names, kind, role, bad, data):
    x_name, y_name = names
    frame = pd.DataFrame({x_name: X.astype(object), y_name: LOSS.astype(object), "note": "n"}, index=labels)
    column = x_name if role == "x" else y_name
    strategy, phrase = BAD_VALUES[kind]
    for i in sorted(bad):
        frame.iloc[i, frame.columns.get_loc(column)] = data.draw(strategy)
    with pytest.raises(sj.DataError) as info:
        sj.Data.from_frame(frame, x={"x": x_name}, y=y_name, law=sj.laws.get("power"))
    message = str(info.value)
    rows = frame.index[sorted(bad)]
    assert f"column {column!r} has {len(bad)} {phrase} ({rows_text(rows)}" in message
    assert "\n" not in message
    handled(f"frame: {kind}")


@settings(max_examples=20, deadline=None)
@given(n=st.integers(0, 2), law=st.sampled_from(["power", "chinchilla"]))
def test_tables_too_small_for_the_law(n, law):
    law = sj.laws.get(law)
    frame = pd.DataFrame({name: np.geomspace(1e6, 1e9, 3)[:n] for name in law.inputs} | {"y": [2.0, 1.9, 1.8][:n]})
    with pytest.raises(sj.DataError, match="no rows" if n == 0 else f"only {n} weighted points"):
        sj.fit(law, frame, x={k: k for k in law.inputs}, y="y")
    handled("frame: too few rows")


def test_duplicate_unicode_and_mixed_columns(example_frame):
    """Duplicated used columns are refused; duplicated unused ones and unicode names are fine to read."""
    frame = example_frame[["N", "D", "loss", "C"]].copy()
    frame.columns = ["N", "D", "loss", "N"]
    with pytest.raises(sj.DataError, match="column name 'N' appears more than once"):
        sj.Data.from_frame(frame, x={"N": "N", "D": "D"}, y="loss", law=sj.laws.get("chinchilla"))
    frame.columns = ["ñ", "δ", "λ", "λ2"]
    data = sj.Data.from_frame(frame, x={"N": "ñ", "D": "δ"}, y="λ", law=sj.laws.get("chinchilla"))
    np.testing.assert_array_equal(data.x["N"], example_frame["N"].to_numpy())
    assert data.columns == {"N": "ñ", "D": "δ", "y": "λ"}
    frame.columns = ["ñ", "δ", "λ", "ñ"]
    sj.Data.from_frame(frame, x={"N": "δ", "D": "δ"}, y="λ", law=sj.laws.get("chinchilla"))
    bools = example_frame.assign(flag=True)
    with pytest.raises(sj.DataError, match="column 'flag' holds true/false values"):
        sj.Data.from_frame(bools, x={"N": "N", "D": "flag"}, y="loss", law=sj.laws.get("chinchilla"))
    handled("frame: duplicate/unicode/bool columns", 3)


@settings(max_examples=30, deadline=None)
@given(
    weights=st.lists(
        st.one_of(st.floats(-10, 10, allow_nan=False), st.just(0.0), st.just(float("nan"))), min_size=8, max_size=8
    )
)
def test_hostile_weights(weights):
    w = np.array(weights)
    frame = pd.DataFrame({"x": X, "y": LOSS, "w": w})
    nan, negative = np.isnan(w), w < 0
    try:
        data = sj.Data.from_frame(frame, x={"x": "x"}, y="y", weights="w", law=sj.laws.get("power"))
    except sj.DataError as err:
        message = str(err)
        if nan.any():
            assert (
                f"column 'w' has {nan.sum()} missing or infinite values ({rows_text(np.flatnonzero(nan))})" in message
            )
        elif negative.any():
            assert f"{negative.sum()} negative weights ({rows_text(np.flatnonzero(negative))})" in message
        elif (w > 0).sum() == 0:
            assert "no positive weight" in message
        else:
            assert f"only {(w > 0).sum()} weighted points" in message
    else:
        assert not nan.any() and not negative.any() and (w > 0).sum() >= 3
        np.testing.assert_array_equal(data.weights, w)
    handled("frame: weights")


ARRAY_CASES = {
    "y shorter than x": ({"x": {"x": X}, "y": LOSS[:5]}, "different lengths"),
    "y scalar": ({"x": {"x": X}, "y": 2.0}, "different lengths"),
    "weights too short": ({"x": {"x": X}, "y": LOSS, "weights": [1.0, 2.0]}, "'weights': 2"),
    "weights text": ({"x": {"x": X}, "y": LOSS, "weights": "w"}, "column 'weights' has 8 non-numeric values"),
    "groups too short": ({"x": {"x": X}, "y": LOSS, "group": [1, 2]}, "'group': 2"),
    "complex y": ({"x": {"x": X}, "y": LOSS + 1j}, "column 'y' holds complex numbers"),
    "nan y": ({"x": {"x": X}, "y": np.r_[LOSS[:7], np.nan]}, "column 'y' has 1 missing or infinite values (row 7)"),
    "x not a dict": ({"x": X, "y": LOSS}, "x as a dict of arrays"),
    "extra input": ({"x": {"x": X, "z": X}, "y": LOSS}, "not inputs of the law: z"),
    "text x": ({"x": {"x": ["a"] * 8}, "y": LOSS}, "column 'x' has 8 non-numeric values"),
    "empty arrays": ({"x": {"x": []}, "y": []}, "the table has no rows"),
}


@pytest.mark.parametrize("case", sorted(ARRAY_CASES))
def test_hostile_arrays_give_one_clear_error(case):
    """Arrays instead of a table: the same single error, never a NumPy or pandas exception."""
    kwargs, fragment = ARRAY_CASES[case]
    with pytest.raises(sj.ScalejaxError) as info:
        sj.fit("power", **kwargs)
    assert fragment in str(info.value) and "\n" not in str(info.value)
    handled("arrays: hostile")


@pytest.mark.parametrize("frame", [[1, 2, 3], {"x": [1, 2], "y": [1]}, pd.DataFrame(), "abc"], ids=repr)
def test_things_that_are_not_tables(frame):
    with pytest.raises(sj.DataError, match=r"cannot read the data as a table|not found|no rows"):
        sj.fit("power", frame, x={"x": "x"}, y="y")
    handled("frame: not a table")
