"""One line and exit status 2, never a traceback, and every check before any work.

Arguments that used to be checked only after the fitting (`--posterior`
with another loss, `--json` to a socket, `report`'s bounds), seeds beyond
JAX's range, a CSV from a pipe or process substitution, inputs whose
compute overflows float64, and numbers at extreme scales. Each case is
counted in the hostile-input tally (tests/hostile.py) under "tracebacks".

At a loss scale of 1e-300 the fit and the posterior give the answers of
the same data at scale 1, scaled (the fit's information is built in the
unconstrained parameters, and a parameter is "at a bound" only when its
step no longer moves the fitted values).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from hostile import handled

import scalejax as sj
from scalejax.cli import main

X = np.geomspace(1e3, 1e9, 8)
LOSS = 1.7 + 400.0 * X**-0.3
ARGS = ["--law", "power", "--x", "x=params", "--y", "loss"]
TRUTH = {"E": 1.7, "A": 400.0, "alpha": 0.3}


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tracebacks") / "runs.csv"
    pd.DataFrame({"params": X, "loss": LOSS}).to_csv(path, index=False)
    return path


def run(argv, capsys):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def no_fitting(monkeypatch):
    """Any fit, bootstrap or posterior started by the command fails the test: checks must come first."""
    import scalejax._bootstrap
    import scalejax._fit
    import scalejax.bayes

    def forbidden(*args, **kwargs):
        raise AssertionError("the command started fitting before checking its arguments")

    for module, name in ((scalejax._fit, "fit"), (scalejax._bootstrap, "bootstrap"), (scalejax.bayes, "posterior")):
        monkeypatch.setattr(module, name, forbidden)


def assert_refused_before_work(status, out, err, *fragments):
    assert status == 2, (out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalejax: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert out == ""  # nothing fitted, nothing printed


@pytest.mark.parametrize("command", ["fit", "report"])
@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--posterior", "--seed", str(2**64)], "--seed must be an integer between 0 and 2**63 - 1"),
        (["--posterior", "--seed", str(2**63)], "--seed must be"),
        (["--seed", "-1"], "--seed must be"),
        (["--posterior", "--loss", "squared"], "--posterior starts from the Huber fit"),
        (["--posterior", "--loss", "squared_log"], "--posterior starts from the Huber fit"),
        (["--max-steps", "1000001"], "--max-steps must be between 1 and 1000000"),
        (["--max-steps", "0"], "--max-steps must be between 1 and 1000000"),
        (["--bootstrap", "1"], "--bootstrap must be between 2"),
        (["--level", "0"], "--level must be between 0 and 1"),
        (["--level", "nan"], "--level must be between 0 and 1"),
        (["--delta", "-1"], "delta"),
    ],
)
def test_every_argument_is_checked_before_any_work(command, extra, fragment, csv_path, tmp_path, capsys, no_fitting):
    out = ["--out", tmp_path / "r.html"] if command == "report" else ["--json", tmp_path / "f.json"]
    status, stdout, err = run([command, csv_path, *ARGS, *extra, *out], capsys)
    assert_refused_before_work(status, stdout, err, fragment)
    assert list(tmp_path.iterdir()) == []
    handled(f"tracebacks: {command} {extra[0]}")


def test_report_takes_a_bootstrap_or_a_posterior_not_both(csv_path, tmp_path, capsys, no_fitting):
    argv = ["report", csv_path, *ARGS, "--posterior", "--bootstrap", "10", "--out", tmp_path / "r.html"]
    assert_refused_before_work(*run(argv, capsys), "not both")
    handled("tracebacks: report --posterior --bootstrap")


@pytest.mark.parametrize("option", ["--json", "--out", "--save"])
def test_an_output_that_is_a_socket_is_refused_before_any_work(option, csv_path, tmp_path, capsys, no_fitting):
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        command = "fit" if option == "--json" else "report"
        extra = [option, path] if option != "--save" else ["--out", tmp_path / "r.html", "--save", path]
        if option == "--out":
            extra = ["--out", path]
        status, out, err = run([command, csv_path, *ARGS, *extra], capsys)
    assert_refused_before_work(status, out, err, option, "is a socket")
    handled(f"tracebacks: {option} to a socket")


def test_a_csv_from_a_fifo_is_read_like_a_file(csv_path, tmp_path, capsys):
    fifo = tmp_path / "runs.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(csv_path.read_bytes()), daemon=True)
    writer.start()
    status, out, err = run(["fit", fifo, *ARGS, "--json", tmp_path / "f.json"], capsys)
    writer.join(10)
    assert status == 0, err
    assert "8 runs from" in out
    handled("tracebacks: CSV from a FIFO")


def test_a_csv_from_stdin_and_from_process_substitution(csv_path, tmp_path):
    """The shell's ways of passing a stream: `cat f | scalejax fit /dev/stdin` and `scalejax fit <(cat f)`."""
    command = [sys.executable, "-m", "scalejax.cli", "fit"]
    with open(csv_path, "rb") as fh:
        proc = subprocess.run([*command, "/dev/stdin", *ARGS], stdin=fh, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "8 runs from /dev/stdin" in proc.stdout
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not available for process substitution")
    line = " ".join([*map(str, command), f"<(cat {csv_path})", *ARGS])
    proc = subprocess.run([bash, "-c", line], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "8 runs from /dev/fd/" in proc.stdout
    handled("tracebacks: CSV from stdin or <(...)", 2)


def test_inputs_whose_compute_overflows_are_refused_before_the_report(tmp_path, capsys, no_fitting):
    """N and D near 1e200: 6 N D is beyond float64. One clear line with the fix, before any fit, no RuntimeWarning."""
    frame = sj.datasets.load_example("chinchilla")
    frame["N"] *= 1e190
    frame["D"] *= 1e188
    csv = tmp_path / "huge.csv"
    frame.to_csv(csv, index=False)
    argv = [
        "report",
        csv,
        "--law",
        "chinchilla",
        "--x",
        "N=N",
        "--x",
        "D=D",
        "--y",
        "loss",
        "--out",
        tmp_path / "r.html",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a raw RuntimeWarning would fail here
        status, out, err = run(argv, capsys)
    assert_refused_before_work(status, out, err, "compute C = 6 N D", "float64", "larger units")
    assert "missing or infinite" not in err
    assert not (tmp_path / "r.html").exists()
    handled("tracebacks: N and D near 1e200")


def test_the_library_report_refuses_overflowing_compute_too(tmp_path):
    law = sj.laws.get("chinchilla")
    n, d = np.meshgrid([1e200, 3e200, 9e200], [1e199, 1e200], indexing="ij")
    frame = pd.DataFrame({"N": n.ravel(), "D": d.ravel(), "loss": np.linspace(2.0, 1.8, 6)})
    draws = sj.Draws(law, law.pack([[1.7, 400.0, 410.0, 0.34, 0.28]] * 2), columns={"N": "N", "D": "D", "y": "loss"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(sj.ScalejaxError, match="beyond the range of float64"):
            sj.write_report(draws, data=frame, out=tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []
    handled("tracebacks: write_report with overflowing compute")


# ----------------------------------------------------------------------------- loss scale 1e-300 (the lead's code)

NOISE = np.array([0.01, -0.02, 0.015, -0.005, 0.02, -0.01, 0.005, -0.015])


def test_a_tiny_loss_scale_gives_the_same_fit_without_false_warnings():
    """Multiplying y by c multiplies E and A (and their standard errors) by c and leaves alpha alone."""
    y = LOSS * (1 + NOISE)
    reference = sj.fit("power", x={"x": X}, y=y).table()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny = sj.fit("power", x={"x": X}, y=y * 1e-300).table()
    assert [str(w.message) for w in caught] == []
    scale = pd.Series({"E": 1e-300, "A": 1e-300, "alpha": 1.0})
    np.testing.assert_allclose(tiny["value"] / scale, reference["value"], rtol=1e-6)
    np.testing.assert_allclose(tiny["stderr"] / scale, reference["stderr"], rtol=1e-4)


@pytest.mark.slow
def test_a_tiny_loss_scale_posterior_runs():
    post = sj.posterior("power", x={"x": X}, y=LOSS * (1 + NOISE) * 1e-300, chains=2, draws=100, warmup=100)
    interval = post.interval(0.95)
    assert np.isfinite(interval.to_numpy()).all()
    assert interval.loc["alpha", "lo"] < 0.3 < interval.loc["alpha", "hi"]
