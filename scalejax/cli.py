"""The `scalejax` command: fit a law to a CSV of runs, list laws, run the demo.

Bad input exits with status 2 and one line on stderr; output files are
written atomically, so a failure leaves none behind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from . import __version__
from ._errors import ScalejaxError
from .data import DataWarning

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


def _read_csv(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise ScalejaxError(f"{path}: no such file")
    try:
        frame = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise ScalejaxError(f"{path}: the file is empty; it needs a header line and one row per run") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ScalejaxError(f"{path}: not a readable CSV ({first})") from None
    if frame.empty:
        raise ScalejaxError(f"{path}: the file has a header but no rows")
    # Name rows by their line in the file (the header is line 1).
    frame.index = pd.RangeIndex(2, 2 + len(frame))
    return frame


def _check_writable(path: str | None) -> None:
    if path is None:
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise ScalejaxError(f"--json {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ScalejaxError(f"--json {path}: directory {parent} is not writable")
    if Path(path).is_dir():
        raise ScalejaxError(f"--json {path}: is a directory")


def write_json_atomic(path: str, payload: dict) -> None:
    """Write JSON to a temporary file beside `path`, then rename it into place."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.resolve().parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, allow_nan=False)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _cmd_fit(args) -> int:
    from .bootstrap import bootstrap
    from .fit import fit, make_data
    from .laws import get
    from .objectives import make_loss

    law = get(args.law)
    x = _parse_x(args.x)
    if args.max_steps <= 0:
        raise UsageError(f"--max-steps must be a positive integer, got {args.max_steps}")
    if args.bootstrap is not None and not 2 <= args.bootstrap <= 1_000_000:
        raise UsageError(f"--bootstrap must be between 2 and 1000000 resamples, got {args.bootstrap}")
    _check_writable(args.json)
    frame = _read_csv(args.csv)
    loss = make_loss(args.loss, args.delta)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        data = make_data(law, frame, x, args.y, args.weights, None, loss, row_name="line")
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)

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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            post = posterior(law, data, likelihood=args.likelihood, seed=args.seed, init=result)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    seconds = time.perf_counter() - start
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
    from .datasets import CHINCHILLA_TRUTH, available_examples, load_example
    from .fit import fit

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
    predicted = float(result.predict(target)[0])
    p = CHINCHILLA_TRUTH
    truth = p["E"] + p["A"] / 70e9 ** p["alpha"] + p["B"] / 1.4e12 ** p["beta"]
    print(
        f"predicted loss of a 70B-parameter, 1.4T-token run: {predicted:.4f} (the law the data came from: {truth:.4f})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `scalejax` command; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        return {"fit": _cmd_fit, "laws": _cmd_laws, "demo": _cmd_demo}[args.command](args)
    except ScalejaxError as err:
        print(f"scalejax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalejax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
