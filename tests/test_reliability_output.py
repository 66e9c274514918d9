"""Nothing lost: every output path kind is written the way a careful tool writes it, and no failure loses data.

Regular files are replaced atomically (and keep their mode), symlinks are
written through, devices and FIFOs are streamed to and never replaced,
outputs that name an input or each other are refused before any work, a
Markdown report and `--save` are swapped in as one set, a closed standard
output loses no file, SIGTERM leaves no temporary file, and non-finite
numbers reach the JSON as null with a warning. Each case is counted in the
hostile-input tally (tests/hostile.py) under "output".

Writer mechanics through `scalejax report` use a stub of the report's
sections (one small figure), so they cost a fit, not a full report; the
real report is exercised once end to end.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hostile import handled

import scalejax as sj
import scalejax._output
import scalejax.report._document as document
from scalejax.cli import main

# The same 8 runs as tests/test_reliability_cli.py, so the fits share one compiled shape.
X = np.geomspace(1e3, 1e9, 8)
LOSS = 1.7 + 400.0 * X**-0.3
ARGS = ["--law", "power", "--x", "x=params", "--y", "loss"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("output") / "runs.csv"
    pd.DataFrame({"params": X, "loss": LOSS}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def point(csv_path):
    return sj.fit("power", pd.read_csv(csv_path), x={"x": "params"}, y="loss")


def run(argv, capsys):
    status = main([os.fsdecode(a) if isinstance(a, bytes | os.PathLike) else str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error(status, err, *fragments):
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalejax: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def leftovers(*folders) -> list[str]:
    """Temporary files or folders of the writer left in `folders`."""
    return sorted(p.name for folder in folders for p in Path(folder).iterdir() if p.name.endswith(".tmp"))


def tiny_sections(draws, data, targets, level, compute, command):
    """A stand-in for the report's sections: one paragraph and one small figure."""
    from scalejax.report import _figures

    fig = _figures._figure(1.0, 1.0)
    fig.add_subplot().plot([0, 1])
    return [document.Section("fit", "Fit", ["tiny"], figure=fig, alt="a line")]


@pytest.fixture
def cheap_report(monkeypatch):
    monkeypatch.setattr(document, "build_sections", tiny_sections)


def a_device_like(tmp_path, source: str) -> Path:
    """A character device node in tmp_path with the same device number as `source` (`/dev/null`, `/dev/full`)."""
    node = tmp_path / Path(source).name
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.stat(source).st_rdev)
    except (PermissionError, OSError) as err:
        pytest.skip(f"cannot create a device node here ({err})")
    return node


# ----------------------------------------------------------------------------- links, devices, FIFOs, stdout


def test_a_symlink_is_written_through_and_stays_a_link(csv_path, tmp_path, capsys):
    real = tmp_path / "results" / "fit.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "fit.json"
    link.symlink_to(real)
    status, _, err = run(["fit", csv_path, *ARGS, "--json", link], capsys)
    assert status == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text())["law"] == "power"
    assert leftovers(tmp_path, real.parent) == []
    handled("output: symlink written through")


def test_a_symlink_to_another_filesystem_is_written_through(csv_path, tmp_path, capsys):
    other = Path("/dev/shm")
    if not other.is_dir() or not os.access(other, os.W_OK) or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no writable directory on another filesystem (/dev/shm)")
    folder = Path(tempfile.mkdtemp(dir=other))
    try:
        link = tmp_path / "fit.json"
        link.symlink_to(folder / "fit.json")  # dangling until written
        status, _, err = run(["fit", csv_path, *ARGS, "--json", link], capsys)
        assert status == 0, err
        assert link.is_symlink() and json.loads((folder / "fit.json").read_text())["law"] == "power"
        assert leftovers(tmp_path, folder) == []
    finally:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    handled("output: symlink to another filesystem")


def test_a_device_is_written_to_and_never_replaced(csv_path, tmp_path, capsys):
    null = a_device_like(tmp_path, "/dev/null")
    status, _, err = run(["fit", csv_path, *ARGS, "--json", null], capsys)
    assert status == 0, err
    assert stat.S_ISCHR(null.stat().st_mode) and null.stat().st_rdev == os.stat("/dev/null").st_rdev
    assert leftovers(tmp_path) == []
    handled("output: device node")


def test_a_full_device_is_one_error_and_stays_a_device(csv_path, tmp_path, capsys):
    """Writing to a full disk (a node like /dev/full: every write fails with ENOSPC) is one line, exit 2."""
    full = a_device_like(tmp_path, "/dev/full")
    status, _, err = run(["fit", csv_path, *ARGS, "--json", full], capsys)
    assert_one_error(status, err, "No space left on device")
    assert stat.S_ISCHR(full.stat().st_mode)
    handled("output: disk full (device)")


def test_a_fifo_is_streamed_to_and_stays_a_fifo(csv_path, tmp_path, capsys):
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    # Hold the FIFO open for reading and writing, so the command's open never blocks and the bytes wait in it.
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        status, _, err = run(["fit", csv_path, *ARGS, "--json", fifo], capsys)
        assert status == 0, err
        chunks = []
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
    finally:
        os.close(fd)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert json.loads(b"".join(chunks))["law"] == "power"
    assert leftovers(tmp_path) == []
    handled("output: FIFO")


def test_json_dash_is_standard_output_and_the_table_goes_to_stderr(csv_path, tmp_path, capsys):
    status, out, err = run(["fit", csv_path, *ARGS, "--json", "-"], capsys)
    assert status == 0, err
    payload = json.loads(out)  # nothing else on stdout
    assert payload["law"] == "power" and "alpha" in err
    assert not Path("-").exists()
    handled("output: --json - (stdout)")


def test_library_save_follows_the_same_rules(point, tmp_path):
    real = tmp_path / "real.npz"
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    sj.save(point, link)
    assert link.is_symlink() and sj.load(real).params == point.params
    null = a_device_like(tmp_path, "/dev/null")
    sj.save(point, null)
    assert stat.S_ISCHR(null.stat().st_mode)
    assert leftovers(tmp_path) == []
    handled("output: sj.save to a symlink, a device", 2)


# ----------------------------------------------------------------------------- outputs that name inputs


def _overlap_cases(tmp_path: Path, csv: Path) -> dict:
    hard = tmp_path / "hard.csv"
    os.link(csv, hard)
    soft = tmp_path / "soft.json"
    soft.symlink_to(csv)
    (tmp_path / "r_files").mkdir()
    inside = tmp_path / "r_files" / "runs.csv"
    inside.write_bytes(csv.read_bytes())
    report = ["report", csv, *ARGS]
    return {
        "--json is the CSV": (["fit", csv, *ARGS, "--json", csv], "would destroy the input"),
        "--json is a hard link to the CSV": (["fit", csv, *ARGS, "--json", hard], "would destroy the input"),
        "--json is a symlink to the CSV": (["fit", csv, *ARGS, "--json", soft], "would destroy the input"),
        "--out is the CSV": ([*report, "--out", csv], "would destroy the input"),
        "--save is the CSV": ([*report, "--out", tmp_path / "r.html", "--save", csv], "would destroy the input"),
        "--out is --save": ([*report, "--out", tmp_path / "x.html", "--save", tmp_path / "x.html"], "same file"),
        "--save in the figures folder": (
            [*report, "--out", tmp_path / "r.md", "--save", tmp_path / "r_files" / "s.npz"],
            "lies inside the figures folder",
        ),
        "the CSV in the figures folder": (
            ["report", inside, *ARGS, "--out", tmp_path / "r.md"],
            "lies inside the figures folder",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "--json is the CSV",
        "--json is a hard link to the CSV",
        "--json is a symlink to the CSV",
        "--out is the CSV",
        "--save is the CSV",
        "--out is --save",
        "--save in the figures folder",
        "the CSV in the figures folder",
    ],
)
def test_outputs_naming_an_input_or_each_other_are_refused_before_any_work(case, tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"params": X, "loss": LOSS}).to_csv(csv, index=False)
    argv, fragment = _overlap_cases(tmp_path, csv)[case]
    before = {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")}
    status, out, err = run(argv, capsys)
    assert_one_error(status, err, fragment)
    assert out == ""  # refused before any fit
    assert {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")} == before
    handled(f"output: {case}")


# ----------------------------------------------------------------------------- ordering and closed stdout


def _closed_stdout_run(argv: list, **env) -> subprocess.CompletedProcess:
    """Run the command with a standard output whose reader has already gone (as `| head -1` ends up)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(
            [sys.executable, "-m", "scalejax.cli", *map(str, argv)],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            env={**os.environ, **env},
        )
    finally:
        os.close(w)


def test_a_closed_stdout_ends_quietly_with_the_json_written(csv_path, tmp_path):
    out = tmp_path / "fit.json"
    proc = _closed_stdout_run(["fit", csv_path, *ARGS, "--json", out])
    assert proc.returncode == 0, proc.stderr
    assert "Error" not in proc.stderr and "Exception ignored" not in proc.stderr  # no BrokenPipeError
    assert json.loads(out.read_text())["law"] == "power"
    handled("output: closed stdout (fit --json)")


def test_report_with_save_writes_both_before_printing(csv_path, tmp_path):
    """End to end with the real report: Markdown, its figures and --save all appear; a closed stdout loses none."""
    out, saved = tmp_path / "r.md", tmp_path / "r.npz"
    proc = _closed_stdout_run(["report", csv_path, *ARGS, "--out", out, "--save", saved])
    assert proc.returncode == 0, proc.stderr
    assert "Error" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert "## Parameters" in out.read_text()
    assert sorted(p.name for p in (tmp_path / "r_files").iterdir()) == [
        "backtest.png",
        "diagnostics.png",
        "extrapolation.png",
        "fit.png",
        "pairs.png",
        "residuals.png",
    ]
    assert sj.load(saved).stats["n_screened"] == 144
    assert leftovers(tmp_path) == []
    handled("output: closed stdout (report --save)")


# ----------------------------------------------------------------------------- non-finite values


def test_non_finite_intervals_are_null_in_the_json_flagged_and_warned(csv_path, tmp_path, capsys, monkeypatch):
    """A bootstrap whose draws overflow (simulated: an interval end is NaN, another inf) still writes its JSON."""
    real = sj.Bootstrap.interval

    def overflowing(self, level=None, *args, **kwargs):
        table = real(self, level, *args, **kwargs).copy()
        table.loc["A", "lo"] = np.nan
        table.loc["alpha", "hi"] = np.inf
        return table

    monkeypatch.setattr(sj.Bootstrap, "interval", overflowing)
    out = tmp_path / "boot.json"
    status, stdout, err = run(["fit", csv_path, *ARGS, "--bootstrap", "20", "--json", out], capsys)
    assert status == 0, err
    payload = json.loads(out.read_text())
    assert payload["intervals"]["A"][0] is None and payload["intervals"]["alpha"][1] is None
    assert payload["intervals"]["E"][0] is not None
    warning = [w for w in payload["warnings"] if "not finite" in w]
    assert len(warning) == 1 and "A, alpha" in warning[0]
    assert "warning: the 95% bootstrap interval of A, alpha has an end that is not finite" in err
    flagged = [line for line in stdout.splitlines() if "NON-FINITE INTERVAL" in line]
    assert [line.split()[0] for line in flagged] == ["A", "alpha"]
    handled("output: non-finite interval")


def test_json_safe_replaces_every_non_finite_number():
    from scalejax.cli import _json_safe

    payload = {"a": 1.0, "b": [np.nan, 2.0, {"c": -np.inf}], "d": {"e": np.inf, "f": "nan"}, "g": 3}
    clean, where = _json_safe(payload)
    assert clean == {"a": 1.0, "b": [None, 2.0, {"c": None}], "d": {"e": None, "f": "nan"}, "g": 3}
    assert where == ["b[0]", "b[2].c", "d.e"]
    json.dumps(clean, allow_nan=False)


# ----------------------------------------------------------------------------- Markdown and --save as a set


@pytest.fixture(scope="module")
def draws():
    law = sj.laws.get("power")
    return sj.Draws(law, law.pack([[1.7, 400.0, 0.3], [1.8, 420.0, 0.31], [1.6, 380.0, 0.29]]), columns={"x": "C"})


@pytest.fixture(scope="module")
def other_draws(draws):
    """Different draws of the same law: every figure of their report differs from `draws`'."""
    return sj.Draws(draws.law, draws.u * 1.01, columns=draws.columns)


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_markdown_rerun_replaces_the_figures_folder_whole(draws, tmp_path):
    out = tmp_path / "r.md"
    sj.write_report(draws, targets={"x": [1e10]}, out=out)
    assert (tmp_path / "r_files" / "extrapolation.png").exists()
    (tmp_path / "r_files" / "stale.png").write_bytes(b"from another run")
    sj.write_report(draws, out=out)  # no targets and no data: no extrapolation figure this time
    assert sorted(p.name for p in (tmp_path / "r_files").iterdir()) == ["diagnostics.png", "pairs.png"]
    assert "extrapolation.png" not in out.read_text()
    assert leftovers(tmp_path) == []
    handled("output: markdown folder swapped whole")


def test_a_failed_markdown_rerun_leaves_the_old_report_and_figures(draws, other_draws, tmp_path, monkeypatch):
    out = tmp_path / "r.md"
    sj.write_report(draws, targets={"x": [1e10]}, out=out)
    before = snapshot(tmp_path)
    calls = []
    real_png = document._png

    def fail_on_second(fig):
        calls.append(fig)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real_png(fig)

    monkeypatch.setattr(document, "_png", fail_on_second)
    with pytest.raises(OSError):
        sj.write_report(other_draws, targets={"x": [1e11]}, out=out)
    assert snapshot(tmp_path) == before
    assert leftovers(tmp_path) == []
    handled("output: markdown staging failure")


def test_a_failed_swap_puts_the_old_folder_back(draws, other_draws, tmp_path, monkeypatch):
    """The folder was already swapped when the Markdown file's rename fails: the old folder comes back."""
    out = tmp_path / "r.md"
    sj.write_report(draws, targets={"x": [1e10]}, out=out)
    before = snapshot(tmp_path)
    real_replace = os.replace

    def replace(src, dst):
        if os.fspath(dst).endswith("r.md"):
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(scalejax._output.os, "replace", replace)
    with pytest.raises(sj.ScalejaxError, match="writing failed"):
        sj.write_report(other_draws, out=out)
    assert snapshot(tmp_path) == before
    assert leftovers(tmp_path) == []
    handled("output: markdown swap rolled back")


def test_report_and_save_appear_together_or_not_at_all(csv_path, tmp_path, capsys, monkeypatch, cheap_report):
    out, saved = tmp_path / "r.md", tmp_path / "r.npz"
    out.write_text("old report")
    saved.write_bytes(b"old save")
    real_fsync = os.fsync

    def disk_full_on_the_save(fd):
        if ".r.npz." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(scalejax._output.os, "fsync", disk_full_on_the_save)
    status, _, err = run(["report", csv_path, *ARGS, "--out", out, "--save", saved], capsys)
    assert_one_error(status, err, f"{saved}: writing failed (No space left on device)")
    assert out.read_text() == "old report" and saved.read_bytes() == b"old save"
    assert not (tmp_path / "r_files").exists()
    assert leftovers(tmp_path) == []
    handled("output: report and --save as a set")


@pytest.mark.parametrize("kind", ["report_files is a file", "immutable --out", "immutable --save"])
def test_unwritable_report_outputs_are_refused_before_any_work(kind, csv_path, tmp_path, capsys):
    out, saved = tmp_path / "r.md", tmp_path / "r.npz"
    if kind == "report_files is a file":
        (tmp_path / "r_files").write_text("not a folder")
        fragment = "r_files, which exists and is not a folder"
    else:
        target = out if kind == "immutable --out" else saved
        target.write_text("keep me")
        if subprocess.run(["chattr", "+i", str(target)], capture_output=True, check=False).returncode != 0:
            pytest.skip("chattr +i is not available here")
        fragment = "immutable"
    try:
        status, stdout, err = run(["report", csv_path, *ARGS, "--out", out, "--save", saved], capsys)
    finally:
        for p in (out, saved):
            if p.exists():
                subprocess.run(["chattr", "-i", str(p)], capture_output=True, check=False)
    assert_one_error(status, err, fragment)
    assert stdout == ""
    assert leftovers(tmp_path) == []
    handled(f"output: {kind}")


# ----------------------------------------------------------------------------- names, modes, limits


def test_a_legal_250_byte_name_is_written_and_a_256_byte_name_refused_first(csv_path, tmp_path, capsys):
    name = "é" * 122 + "x.json"  # 250 bytes of UTF-8: the temporary name must be cut to fit, not fail
    assert len(name.encode()) == 250
    status, _, err = run(["fit", csv_path, *ARGS, "--json", tmp_path / name], capsys)
    assert status == 0, err
    assert json.loads((tmp_path / name).read_text())["law"] == "power"
    assert leftovers(tmp_path) == []
    status, out, err = run(["fit", csv_path, *ARGS, "--json", tmp_path / ("y" * 251 + ".json")], capsys)
    assert_one_error(status, err, "too long")
    assert out == ""
    handled("output: 250-byte name", 2)


def test_new_files_honour_the_umask_and_replaced_files_keep_their_mode(point, draws, tmp_path):
    old = os.umask(0o027)
    try:
        sj.save(point, tmp_path / "new.npz")
        sj.write_report(draws, out=tmp_path / "r.md")
        private = tmp_path / "private.npz"
        private.write_bytes(b"")
        private.chmod(0o600)
        sj.save(point, private)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.npz").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "r.md").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "r_files").stat().st_mode) == 0o750
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "r_files").iterdir()} == {0o640}
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    handled("output: umask and kept mode")


_DRIVER = """
import os, resource, sys
import numpy as np, pandas as pd
import scalejax as sj
X = np.geomspace(1e3, 1e9, 8)
fit = sj.fit("power", x={"x": X}, y=1.7 + 400.0 * X**-0.3)
target = sys.argv[1]
resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))
try:
    sj.save(fit, target)
except sj.ScalejaxError as err:
    print(err)
"""


def test_a_file_size_limit_while_saving_leaves_the_old_file(tmp_path):
    """A real write failure (RLIMIT_FSIZE: writes past 2 KiB fail with EFBIG) is a ScalejaxError, nothing half-written."""
    target = tmp_path / "fit.npz"
    target.write_bytes(b"earlier")
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(target)], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "writing failed (File too large); nothing was written" in proc.stdout
    assert target.read_bytes() == b"earlier"
    assert leftovers(tmp_path) == []
    handled("output: file size limit (EFBIG)")


# ----------------------------------------------------------------------------- signals

_SIGTERM_LIBRARY = """
import os, signal, sys
import numpy as np
import scalejax as sj
import scalejax.report._document as document
law = sj.laws.get("power")
draws = sj.Draws(law, law.pack([[1.7, 400.0, 0.3], [1.8, 420.0, 0.31]]), columns={"x": "C"})
out = sys.argv[1]
sj.write_report(draws, out=out)
print("first report written", flush=True)
def fsync(fd):  # the first bytes of the rerun reach the disk: a temporary file exists now
    os.kill(os.getpid(), signal.SIGTERM)
os.fsync = fsync
other = sj.Draws(law, draws.u * 1.01, columns=draws.columns)
sj.write_report(other, targets={"x": [1e10]}, out=out)
print("not reached")
"""


def test_sigterm_during_a_library_report_removes_the_staging_and_still_kills(tmp_path):
    out = tmp_path / "r.md"
    proc = subprocess.run(
        [sys.executable, "-c", _SIGTERM_LIBRARY, str(out)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, proc.stderr)
    assert proc.stdout == "first report written\n" and "Traceback" not in proc.stderr
    assert leftovers(tmp_path) == []
    # What is there is the first report, whole: the rerun (with a forecast figure) left no trace.
    assert sorted(p.name for p in (tmp_path / "r_files").iterdir()) == ["diagnostics.png", "pairs.png"]
    assert "## Reproduce" in out.read_text() and "extrapolation.png" not in out.read_text()
    handled("output: SIGTERM in write_report")


_SIGTERM_SAVE = """
import os, signal, sys
import scalejax._output, scalejax.report._document as document
from scalejax.cli import main
sys.path.insert(0, sys.argv[1])
from test_reliability_output import tiny_sections
document.build_sections = tiny_sections
real_fsync = os.fsync
def fsync(fd):
    if ".r.npz." in os.readlink(f"/proc/self/fd/{fd}"):
        os.kill(os.getpid(), signal.SIGTERM)
    return real_fsync(fd)
scalejax._output.os.fsync = fsync
sys.exit(main(sys.argv[2:]))
"""


def test_sigterm_during_save_exits_143_and_leaves_nothing(csv_path, tmp_path):
    out, saved = tmp_path / "r.md", tmp_path / "r.npz"
    argv = ["report", str(csv_path), *ARGS, "--out", str(out), "--save", str(saved)]
    proc = subprocess.run(
        [sys.executable, "-c", _SIGTERM_SAVE, str(Path(__file__).parent), *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert proc.stderr.splitlines() == [
        f"scalejax: terminated (signal {int(signal.SIGTERM)}); nothing was left half-written"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    handled("output: SIGTERM during --save")


# ----------------------------------------------------------------------------- file names that are not UTF-8


def test_file_names_that_are_not_utf8_under_a_strict_locale(csv_path, tmp_path):
    csv = os.path.join(os.fsencode(tmp_path), b"runs\xff.csv")
    out = os.path.join(os.fsencode(tmp_path), b"fit\xfe.json")
    with open(csv, "wb") as fh:
        fh.write(csv_path.read_bytes())
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict", "PYTHONUTF8": "0"}
    proc = subprocess.run(
        [sys.executable.encode(), b"-m", b"scalejax.cli", b"fit", csv, *map(str.encode, ARGS), b"--json", out],
        capture_output=True,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    stdout = proc.stdout.decode("utf-8")  # valid UTF-8: the odd bytes are shown as \xff
    assert "runs\\xff.csv" in stdout and "fit\\xfe.json" in stdout
    with open(out, "rb") as fh:
        payload = json.loads(fh.read())
    assert payload["csv"].endswith("runs\\xff.csv")
    handled("output: non-UTF-8 file names")
