"""The `scalejax` command: fit a law to a CSV of runs, write a report, list laws, run the demo.

Bad input exits with status 2 and one line on stderr; output files are
written atomically, so a failure leaves none behind.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import jax
import pandas as pd

from . import __version__
from ._data import DataWarning
from ._errors import ScalejaxError
from ._fit import FitWarning
from ._output import write_atomic

__all__ = ["main"]


class UsageError(ScalejaxError):
    """A command-line argument is malformed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage dump
        raise UsageError(f"{message}; see '{self.prog} --help'")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scalejax", description="Fit neural scaling laws with JAX.")
    parser.add_argument("--version", action="version", version=f"scalejax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fit = sub.add_parser("fit", help="fit a law to a CSV of runs")
    fit.add_argument("csv", help="CSV file, one run per row, with a header line")
    fit.add_argument("--law", required=True, help="law name (see 'scalejax laws')")
    fit.add_argument(
        "--x",
        action="append",
        required=True,
        metavar="NAME=COLUMN",
        help="map a law input to a column; repeat per input",
    )
    fit.add_argument("--y", required=True, metavar="COLUMN", help="the column to fit (e.g. loss)")
    fit.add_argument("--weights", metavar="COLUMN", help="optional column of per-run weights")
    fit.add_argument("--loss", default="huber", choices=["huber", "squared_log", "squared"])
    fit.add_argument("--delta", type=float, default=1e-3, help="Huber delta on log y (default 1e-3)")
    fit.add_argument("--max-steps", type=int, default=500, help="most solver steps per start (default 500)")
    fit.add_argument(
        "--bootstrap", type=int, metavar="N", help="add 95%% intervals from N bootstrap resamples of the runs"
    )
    fit.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)")
    fit.add_argument(
        "--posterior",
        action="store_true",
        help="add 95%% posterior intervals and sampler diagnostics (NUTS, 4 chains x 1000 draws; seed --seed)",
    )
    fit.add_argument(
        "--likelihood",
        default="student_t",
        choices=["student_t", "gaussian"],
        help="likelihood of log y for --posterior (default student_t)",
    )
    fit.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")

    _add_report_parser(sub)
    sub.add_parser("laws", help="list the built-in laws")
    sub.add_parser("demo", help="fit the Chinchilla law to the embedded example and forecast a 70B / 1.4T run")
    return parser


def _parse_x(items: list[str]) -> dict[str, str]:
    mapping = {}
    for item in items:
        name, sep, column = item.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise UsageError(f"--x {item!r} is not NAME=COLUMN (e.g. --x N=params)")
        if name.strip() in mapping:
            raise UsageError(f"--x maps input {name.strip()!r} twice")
        mapping[name.strip()] = column.strip()
    return mapping


# Cells read as missing values (compared case-insensitively, after stripping spaces).
_MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "<na>", "#n/a"})


def _read_csv(path: str) -> pd.DataFrame:
    """Read a CSV of runs into a frame whose index is each row's line number in the file.

    Parsed with the `csv` module rather than pandas so that line numbers stay
    right across blank lines and quoted newlines, and so that rows with too
    many or too few fields are errors (pandas would silently shift columns or
    fill gaps). Columns whose every present cell is a number become numeric.
    """
    p = Path(path)
    if p.is_dir():
        raise ScalejaxError(f"{path}: is a directory; give the path of a CSV file")
    if not p.is_file():
        raise ScalejaxError(f"{path}: no such file")
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise ScalejaxError(f"{path}: cannot be read ({err.strerror or err})") from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ScalejaxError(f"{path}: is UTF-16 text; save it as a UTF-8 CSV")
    if b"\x00" in raw:
        raise ScalejaxError(f"{path}: is a binary file, not a CSV text file (it holds NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ScalejaxError(
            f"{path}: is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); save it as a UTF-8 CSV"
        ) from None
    records, lines = [], []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        previous = 0
        for record in reader:
            first_line, previous = previous + 1, reader.line_num
            if all(not cell.strip() for cell in record) and len(record) <= 1:
                continue  # a blank line
            records.append(record)
            lines.append(first_line)
    except csv.Error as err:
        raise ScalejaxError(f"{path}: not a readable CSV (line {reader.line_num}: {err})") from None
    if not records:
        raise ScalejaxError(f"{path}: the file is empty; it needs a header line and one row per run")
    header, header_line = records[0], lines[0]
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        sep = next(sep for sep in ";\t|" if sep in header[0])
        raise ScalejaxError(
            f"{path}: the header on line {header_line} is one column {header[0]!r}; the file looks separated by "
            f"{sep!r}, but scalejax reads comma-separated values: save it with commas"
        )
    if len(records) == 1:
        raise ScalejaxError(f"{path}: the file has a header but no rows")
    ragged = [(line, len(r)) for line, r in zip(lines[1:], records[1:], strict=True) if len(r) != len(header)]
    if ragged:
        detail = ", ".join(f"line {line} has {n}" for line, n in ragged[:4])
        more = f" and {len(ragged) - 4} more" if len(ragged) > 4 else ""
        rows = "1 row does not" if len(ragged) == 1 else f"{len(ragged)} rows do not"
        raise ScalejaxError(
            f"{path}: {rows} have the {len(header)} fields of the header on line {header_line} "
            f"({detail}{more}); every row needs one value per column (check for stray or missing commas)"
        )
    columns = {}
    for j in range(len(header)):
        cells = [r[j].strip() for r in records[1:]]
        values = pd.Series([None if c.lower() in _MISSING else c for c in cells], dtype=object)
        numbers = pd.to_numeric(values, errors="coerce")
        columns[j] = numbers if numbers.isna().sum() == values.isna().sum() else values
    frame = pd.DataFrame(columns)
    # Duplicate header names stay duplicated: Data.from_frame refuses a duplicated column it is asked to use.
    frame.columns = pd.Index([name.strip() for name in header], dtype=object)
    frame.index = pd.Index(lines[1:])
    return frame


# More steps than this per start is a typo, not a setting.
MAX_STEPS_LIMIT = 1_000_000


def _check_writable(path: str | None) -> None:
    if path is None:
        return
    if not path.strip() or "\x00" in path:
        raise UsageError(f"--json needs a file path, got {path!r}")
    parent = Path(path).resolve().parent
    if parent.exists() and not parent.is_dir():
        raise ScalejaxError(f"--json {path}: {parent} is a file, not a directory")
    if not parent.is_dir():
        raise ScalejaxError(f"--json {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ScalejaxError(f"--json {path}: directory {parent} is not writable")
    if Path(path).is_dir():
        raise ScalejaxError(f"--json {path}: is a directory")


def write_json_atomic(path: str, payload: dict) -> None:
    """Write the JSON atomically (see `write_atomic`): a failure leaves `path` as it was."""
    write_atomic(path, json.dumps(payload, indent=2, allow_nan=False) + "\n", what=f"--json {path}")


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _cmd_fit(args) -> int:
    from ._bootstrap import bootstrap
    from ._fit import fit, make_data
    from ._objectives import make_loss
    from .laws import get

    law = get(args.law)
    x = _parse_x(args.x)
    if not 1 <= args.max_steps <= MAX_STEPS_LIMIT:
        raise UsageError(f"--max-steps must be between 1 and {MAX_STEPS_LIMIT}, got {args.max_steps}")
    if args.seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.bootstrap is not None and not 2 <= args.bootstrap <= 1_000_000:
        raise UsageError(f"--bootstrap must be between 2 and 1000000 resamples, got {args.bootstrap}")
    _check_writable(args.json)
    frame = _read_csv(args.csv)
    loss = make_loss(args.loss, args.delta)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        warnings.simplefilter("always", FitWarning)
        data = make_data(law, frame, x, args.y, args.weights, None, loss, row_name="line")
        start = time.perf_counter()
        boot = None
        if args.bootstrap:
            boot = bootstrap(law, data, n=args.bootstrap, seed=args.seed, loss=loss, max_steps=args.max_steps)
            result = boot.fit
        else:
            result = fit(law, data, loss=loss, max_steps=args.max_steps)
        post = None
        if args.posterior:
            from .bayes import posterior

            if args.loss != "huber":
                raise UsageError("--posterior starts from the Huber fit; drop --loss")
            warnings.simplefilter("always")
            post = posterior(law, data, likelihood=args.likelihood, seed=args.seed, init=result)
        seconds = time.perf_counter() - start
    notes = [
        str(w.message) if issubclass(w.category, DataWarning | FitWarning) else f"{w.category.__name__}: {w.message}"
        for w in caught
    ]
    for note in notes:
        print(f"warning: {one_line(note)}", file=sys.stderr)
    table = result.table()
    if boot is not None:
        table = table.join(boot.interval(0.95).rename(columns={"lo": "lo95", "hi": "hi95"}))
    print(f"law {law.name}: {law.equation}")
    print(f"{data.n} runs from {args.csv}; loss {loss.kind} (delta {loss.delta:g}); {seconds:.2f} s")
    print(f"starts: {result.n_starts}, converged: {result.n_converged}, at the best optimum: {result.n_at_best}")
    print(f"objective: {result.objective:.10g}")
    if boot is not None:
        print(f"bootstrap ({boot.scheme}, seed {args.seed}): {boot.n_converged}/{boot.n_resamples} resamples converged")
    print(table.to_string(float_format=lambda v: f"{v:.6g}"))
    if post is not None:
        d = post.diagnostics
        print(
            f"posterior ({post.likelihood}, {post.chains} chains x {post.draws} draws, seed {args.seed}): "
            f"R-hat max {d['rhat_max']:.4f}, ESS min {d['ess_min']:.0f}, divergences {d['divergences']}"
        )
        print(post.table(0.95).to_string(float_format=lambda v: f"{v:.6g}"))
    if args.json:
        payload = {
            "law": law.name,
            "params": result.params,
            "objective": result.objective,
            "stderr": {k: _finite(v) for k, v in table["stderr"].items()},
            "n_points": data.n,
            "n_starts": result.n_starts,
            "n_starts_converged": result.n_converged,
            "n_at_best": result.n_at_best,
            "loss": loss.kind,
            "delta": loss.delta,
            "columns": {k: str(v) for k, v in data.columns.items()},
            "csv": str(args.csv),
            "scalejax_version": __version__,
            "warnings": notes,
        }
        if boot is not None:
            intervals = boot.interval(0.95)
            payload["intervals"] = {k: [float(r.lo), float(r.hi)] for k, r in intervals.iterrows()}
            payload["n_converged"] = boot.n_converged
            payload["n_resamples"] = boot.n_resamples
            payload["seed"] = args.seed
        if post is not None:
            table95 = post.table(0.95)
            d = post.diagnostics
            payload["posterior"] = {
                "likelihood": post.likelihood,
                "chains": post.chains,
                "draws": post.draws,
                "seed": args.seed,
                "median": {k: float(v) for k, v in table95["median"].items()},
                "intervals": {k: [float(r.lo), float(r.hi)] for k, r in table95.iterrows()},
                "diagnostics": {
                    "rhat_max": _finite(d["rhat_max"]),
                    "ess_min": _finite(d["ess_min"]),
                    "divergences": d["divergences"],
                },
            }
        write_json_atomic(args.json, payload)
        print(f"wrote {args.json}")
    return 0


def _cmd_laws(args) -> int:
    from .laws import available, get

    for name in available():
        law = get(name)
        print(f"{name:12s} {law.equation}  [inputs: {', '.join(law.inputs)}]")
    return 0


def _cmd_demo(args) -> int:
    from ._fit import fit
    from .datasets import CHINCHILLA_TRUTH, available_examples, load_example

    frame = load_example("chinchilla")
    print(f"example data: {available_examples()['chinchilla']}")
    print(f"{len(frame)} runs; fitting L(N, D) = E + A/N^alpha + B/D^beta from Hoffmann et al.'s 4,500 starts ...")
    start = time.perf_counter()
    result = fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
    seconds = time.perf_counter() - start
    table = result.table()
    table["truth"] = [CHINCHILLA_TRUTH[k] for k in table.index]
    print(
        f"done in {seconds:.1f} s: {result.n_converged}/{result.n_starts} starts converged, {result.n_at_best} at the best optimum"
    )
    print(table.to_string(float_format=lambda v: f"{v:.5g}"))
    target = {"N": [70e9], "D": [1.4e12]}
    predicted = float(result.predict(target)["y"].iloc[0])
    p = CHINCHILLA_TRUTH
    truth = p["E"] + p["A"] / 70e9 ** p["alpha"] + p["B"] / 1.4e12 ** p["beta"]
    print(
        f"predicted loss of a 70B-parameter, 1.4T-token run: {predicted:.4f} (the law the data came from: {truth:.4f})"
    )
    return 0


def one_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped, so that a message is one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _add_report_parser(sub) -> None:
    report = sub.add_parser("report", help="fit a law to a CSV of runs and write an HTML (or Markdown) report")
    report.add_argument("csv", help="CSV file, one run per row, with a header line")
    report.add_argument("--law", required=True, help="law name (see 'scalejax laws')")
    report.add_argument(
        "--x", action="append", required=True, metavar="NAME=COLUMN", help="map a law input to a column; repeat"
    )
    report.add_argument("--y", required=True, metavar="COLUMN", help="the column to fit (e.g. loss)")
    report.add_argument("--weights", metavar="COLUMN", help="optional column of per-run weights")
    report.add_argument("--loss", default="huber", choices=["huber", "squared_log", "squared"])
    report.add_argument("--delta", type=float, default=1e-3, help="Huber delta on log y (default 1e-3)")
    report.add_argument("--max-steps", type=int, default=500, help="most solver steps per start (default 500)")
    report.add_argument("--bootstrap", type=int, metavar="N", help="intervals and bands from N bootstrap resamples")
    report.add_argument(
        "--posterior", action="store_true", help="intervals from the Bayesian posterior (NUTS) instead of a bootstrap"
    )
    report.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resampling (default 0)")
    report.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    report.add_argument(
        "--target",
        action="append",
        metavar="N=...,D=...",
        help="a run to forecast, e.g. --target N=70e9,D=1.4e12; repeat per run (default: 10x and 100x the largest run)",
    )
    report.add_argument("--save", metavar="PATH", help="also save the fit or bootstrap to PATH (.npz, no pickle)")
    report.add_argument("--out", required=True, metavar="PATH", help="the report: .html (self-contained) or .md")


def _parse_targets(items: list[str] | None, inputs: tuple[str, ...]) -> pd.DataFrame | None:
    if not items:
        return None
    rows = []
    for item in items:
        row = {}
        for part in item.split(","):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or not name:
                raise UsageError(f"--target {item!r} is not NAME=VALUE,... (e.g. --target N=70e9,D=1.4e12)")
            if name not in inputs:
                raise UsageError(f"--target {item!r}: {name!r} is not an input of the law ({', '.join(inputs)})")
            try:
                number = float(value)
            except ValueError:
                raise UsageError(f"--target {item!r}: {value.strip()!r} is not a number") from None
            if not math.isfinite(number) or number <= 0:
                raise UsageError(f"--target {item!r}: {name} must be a positive finite number")
            row[name] = number
        missing = [k for k in inputs if k not in row]
        if missing:
            raise UsageError(f"--target {item!r} lacks {', '.join(missing)}; give every input of the law")
        rows.append(row)
    return pd.DataFrame(rows)


def _cmd_report(args, argv: list[str]) -> int:
    import shlex

    from ._bootstrap import bootstrap
    from ._fit import fit, make_data
    from ._io import save
    from ._objectives import make_loss
    from .laws import get
    from .report import write_report

    if args.posterior and args.bootstrap:
        raise UsageError("choose --bootstrap N or --posterior, not both")
    if args.posterior and args.save:
        raise UsageError("--save keeps fits and bootstraps; a posterior cannot be saved yet")
    law = get(args.law)
    x = _parse_x(args.x)
    targets = _parse_targets(args.target, law.inputs)
    if args.max_steps <= 0:
        raise UsageError(f"--max-steps must be a positive integer, got {args.max_steps}")
    if args.bootstrap is not None and not 2 <= args.bootstrap <= 1_000_000:
        raise UsageError(f"--bootstrap must be between 2 and 1000000 resamples, got {args.bootstrap}")
    if not 0 < args.level < 1:
        raise UsageError(f"--level must be between 0 and 1, got {args.level}")
    for option, path in (("--out", args.out), ("--save", args.save)):
        if path is not None:
            try:
                _check_writable(path)
            except ScalejaxError as err:
                raise UsageError(str(err).replace("--json", option, 1)) from None
    frame = _read_csv(args.csv)
    loss = make_loss(args.loss, args.delta)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        data = make_data(law, frame, x, args.y, args.weights, None, loss, row_name="line")
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    start = time.perf_counter()
    if args.bootstrap:
        result = bootstrap(
            law, data, n=args.bootstrap, seed=args.seed, loss=loss, level=args.level, max_steps=args.max_steps
        )
        print(f"bootstrap: {result.n_converged}/{result.n_resamples} resamples converged")
    elif args.posterior:
        from .bayes import posterior

        if args.loss != "huber":
            raise UsageError("--posterior starts from the Huber fit; drop --loss")
        point = fit(law, data, loss=loss, max_steps=args.max_steps)
        result = posterior(law, data, seed=args.seed, level=args.level, init=point)
        d = result.diagnostics
        print(f"posterior: R-hat max {d['rhat_max']:.4f}, ESS min {d['ess_min']:.0f}, divergences {d['divergences']}")
    else:
        result = fit(law, data, loss=loss, max_steps=args.max_steps)
        print(f"fit: {result.n_converged}/{result.n_starts} starts converged, {result.n_at_best} at the best optimum")
    command = "scalejax " + shlex.join(argv)
    write_report(result, targets=targets, out=args.out, level=args.level, command=command)
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s")
    if args.save:
        save(result, args.save)
        print(f"saved {args.save}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `scalejax` command; returns the exit status."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = _parser().parse_args(argv)
        if args.command == "report":
            return _cmd_report(args, argv)
        return {"fit": _cmd_fit, "laws": _cmd_laws, "demo": _cmd_demo}[args.command](args)
    except ScalejaxError as err:
        print(f"scalejax: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalejax: interrupted", file=sys.stderr)
        return 130


def _use_all_cores() -> None:
    """Expose each CPU core as a JAX device, so lanes shard over all of them.

    XLA runs one CPU device's computation on one core; starts and resamples
    are independent lanes, so K devices run them about K times faster. Only
    the command does this (a library must not change JAX's set-up on import);
    an explicit `XLA_FLAGS=--xla_force_host_platform_device_count=K` or
    `JAX_NUM_CPU_DEVICES` wins.
    """
    if "device_count" in os.environ.get("XLA_FLAGS", "") or "JAX_NUM_CPU_DEVICES" in os.environ:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        jax.config.update("jax_num_cpu_devices", max(1, cores))
    except Exception:  # backends already started (an embedding process): keep its devices
        pass


def run() -> None:
    """The console script: use every core, then run `main`."""
    _use_all_cores()
    sys.exit(main())


if __name__ == "__main__":
    run()
