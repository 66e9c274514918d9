"""The `scalejax` command: fit a law to a CSV of runs, write a report, list laws, run the demo.

Every argument is checked before any fitting, and outputs that name an
input or each other are refused then. Results are written (atomically, see
`scalejax._output`) before anything is printed, so a closed standard output
(`| head -1`) loses nothing. Bad input exits with status 2 and one line on
stderr; Ctrl-C exits 130 and SIGTERM 143, leaving no temporary file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import stat
import sys
import time
import warnings
from typing import TYPE_CHECKING

from . import __version__
from ._errors import ScalejaxError
from ._output import Terminated, check_target, display, output_set, refuse_overlaps, terminate_cleanly, write_atomic
from .schema import SCHEMA_VERSION

if TYPE_CHECKING:  # loaded by the commands that need it: --help and --version import neither JAX nor pandas
    import pandas as pd

__all__ = ["main"]


class UsageError(ScalejaxError):
    """A command-line argument is malformed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage dump
        raise UsageError(f"{message}; see '{self.prog} --help'")


_FIT_EXAMPLES = """examples:
  # the Chinchilla law from columns params, tokens and loss; the table on stdout
  scalejax fit runs.csv --law chinchilla --x N=params --x D=tokens --y loss

  # 90% intervals from 1000 bootstrap resamples, results as JSON
  scalejax fit runs.csv --law chinchilla --x N=params --x D=tokens --y loss \\
      --bootstrap 1000 --seed 0 --level 0.9 --json fit.json

  # JSON on standard output (the table goes to stderr), for another program
  scalejax fit runs.csv --law power --x x=compute --y loss --json - | python -m json.tool

  # a CSV from a pipe
  some-query | scalejax fit /dev/stdin --law power --x x=compute --y loss

The JSON's keys are documented by the JSON Schema in the package
(scalejax/schema/fit.schema.json; scalejax.schema.fit_schema() in Python).
Bad input exits with status 2 and one line on stderr."""

_REPORT_EXAMPLES = """examples:
  # a self-contained HTML report with 95% bands from 1000 bootstrap resamples
  scalejax report runs.csv --law chinchilla --x N=params --x D=tokens --y loss \\
      --bootstrap 1000 --target N=70e9,D=1.4e12 --out report.html

  # Markdown with figures in report_files/, and the bootstrap saved beside it
  scalejax report runs.csv --law chinchilla --x N=params --x D=tokens --y loss \\
      --bootstrap 200 --out report.md --save boot.npz

The report opens with its caveats (parameters at a bound with the share of draws
there, repeated runs, how far each forecast reaches beyond the largest run, ...);
the same list is printed as warning: lines on stderr.
The report and --save are written together: both or neither."""

_MAIN_EXAMPLES = """examples:
  scalejax demo
  scalejax laws
  scalejax fit runs.csv --law chinchilla --x N=params --x D=tokens --y loss --bootstrap 1000 --json fit.json
  scalejax report runs.csv --law chinchilla --x N=params --x D=tokens --y loss --out report.html

'scalejax COMMAND --help' shows each command's options and examples."""


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scalejax",
        description="Fit neural scaling laws with JAX.",
        epilog=_MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"scalejax {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    fit = sub.add_parser(
        "fit",
        help="fit a law to a CSV of runs",
        description="Fit a law to a CSV of runs: parameters, standard errors and, on request, intervals.",
        epilog=_FIT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_fit_options(fit)
    fit.add_argument(
        "--posterior",
        action="store_true",
        help="add posterior intervals and sampler diagnostics (NUTS, 4 chains x 1000 draws; seed --seed)",
    )
    fit.add_argument(
        "--likelihood",
        default="student_t",
        choices=["student_t", "gaussian"],
        help="likelihood of log y for --posterior (default student_t)",
    )
    fit.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH ('-': standard output)")

    _add_report_parser(sub)
    sub.add_parser("laws", help="list the built-in laws")
    cache = sub.add_parser(
        "cache",
        help="show or clear the cache of compiled code (set SCALEJAX_CACHE_DIR to move it, SCALEJAX_COMPILE_CACHE=0 to turn it off)",
    )
    cache.add_argument("action", choices=["info", "clear"], help="info: where it is and its size; clear: remove it")
    sub.add_parser("demo", help="fit the Chinchilla law to the embedded example and forecast a 70B / 1.4T run")
    return parser


def _add_fit_options(parser) -> None:
    """The options `fit` and `report` share."""
    parser.add_argument("csv", help="CSV file, one run per row, with a header line (a pipe or /dev/stdin works)")
    parser.add_argument("--law", required=True, help="law name (see 'scalejax laws')")
    parser.add_argument(
        "--x", action="append", required=True, metavar="NAME=COLUMN", help="map a law input to a column; repeat"
    )
    parser.add_argument("--y", required=True, metavar="COLUMN", help="the column to fit (e.g. loss)")
    parser.add_argument("--weights", metavar="COLUMN", help="optional column of per-run weights")
    parser.add_argument("--loss", default="huber", choices=["huber", "squared_log", "squared"])
    parser.add_argument("--delta", type=float, default=1e-3, help="Huber delta on log y (default 1e-3)")
    parser.add_argument(
        "--max-steps", type=int, default=500, help=f"most solver steps per start, 1..{MAX_STEPS_LIMIT} (default 500)"
    )
    parser.add_argument("--bootstrap", type=int, metavar="N", help="intervals from N bootstrap resamples of the runs")
    parser.add_argument("--seed", type=int, default=0, help=f"seed of the resampling or sampler, 0..{MAX_SEED}")
    parser.add_argument("--level", type=float, default=0.95, help="level of every interval (default 0.95)")


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


def _read_input(path: str) -> bytes:
    """The bytes of the CSV: a regular file, or a pipe, process substitution or device read once to its end."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ScalejaxError(f"{display(path)}: no such file") from None
    except OSError as err:
        raise ScalejaxError(f"{display(path)}: cannot be read ({err.strerror or err})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ScalejaxError(f"{display(path)}: is a directory; give the path of a CSV file")
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode) or stat.S_ISCHR(info.st_mode)):
        raise ScalejaxError(f"{display(path)}: is not a file, a pipe or a device that can be read")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as err:
        raise ScalejaxError(f"{display(path)}: cannot be read ({err.strerror or err})") from None


def _read_csv(path: str) -> pd.DataFrame:
    """Read a CSV of runs into a frame whose index is each row's line number in the file.

    Parsed with the `csv` module rather than pandas so that line numbers stay
    right across blank lines and quoted newlines, and so that rows with too
    many or too few fields are errors (pandas would silently shift columns or
    fill gaps). Columns whose every present cell is a number become numeric.
    """
    import pandas as pd

    raw = _read_input(path)
    path = display(path)
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
# JAX's PRNGKey takes a signed 64-bit seed; the bootstrap's NumPy generator takes any, but one range serves both.
MAX_SEED = 2**63 - 1
MAX_RESAMPLES = 1_000_000


def _check_options(args) -> None:
    """The numeric options `fit` and `report` share, checked before any work."""
    if not 1 <= args.max_steps <= MAX_STEPS_LIMIT:
        raise UsageError(f"--max-steps must be between 1 and {MAX_STEPS_LIMIT}, got {args.max_steps}")
    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed must be an integer between 0 and 2**63 - 1 = {MAX_SEED}, got {args.seed}")
    if args.bootstrap is not None and not 2 <= args.bootstrap <= MAX_RESAMPLES:
        raise UsageError(f"--bootstrap must be between 2 and {MAX_RESAMPLES} resamples, got {args.bootstrap}")
    if not 0 < args.level < 1:
        raise UsageError(f"--level must be between 0 and 1 (e.g. 0.95), got {args.level}")
    if args.posterior and args.loss != "huber":
        raise UsageError("--posterior starts from the Huber fit; drop --loss")


def _check_output(option: str, path: str, *, allow_stdout: bool = False):
    """An output path checked before any work (see `check_target`)."""
    if not path.strip() or "\x00" in path:
        raise UsageError(f"{option} needs a file path, got {path!r}")
    return check_target(path, what=f"{option} {display(path)}", allow_stdout=allow_stdout, probe=True)


def _json_safe(payload, path: str = "") -> tuple[object, list[str]]:
    """`payload` with every non-finite float replaced by None, and the keys where that happened."""
    if isinstance(payload, dict):
        out, where = {}, []
        for key, value in payload.items():
            out[key], found = _json_safe(value, f"{path}.{key}" if path else str(key))
            where += found
        return out, where
    if isinstance(payload, list | tuple):
        out, where = [], []
        for i, value in enumerate(payload):
            item, found = _json_safe(value, f"{path}[{i}]")
            out.append(item)
            where += found
        return out, where
    if isinstance(payload, float) and not math.isfinite(payload):
        return None, [path]
    return payload, []


def _interval_notes(table: pd.DataFrame, pct: str, what: str) -> list[str]:
    """A warning for each interval with an end that is not finite (its draws overflowed or failed)."""
    bad = [name for name, row in table.iterrows() if not (math.isfinite(row["lo"]) and math.isfinite(row["hi"]))]
    if not bad:
        return []
    names = ", ".join(map(str, bad))
    return [
        f"the {pct} {what} interval of {names} has an end that is not finite (some draws overflowed or failed); "
        "it is not usable: it is flagged in the table and null in the JSON"
    ]


def _flag(table: pd.DataFrame, lo: str = "lo", hi: str = "hi") -> pd.DataFrame:
    """The table with a `flag` column marking intervals whose ends are not finite (only when there is one)."""
    bad = ~(table[lo].map(math.isfinite) & table[hi].map(math.isfinite))
    if not bad.any():
        return table
    return table.assign(flag=["NON-FINITE INTERVAL" if b else "" for b in bad])


def _format_table(table: pd.DataFrame) -> str:
    return table.to_string(float_format=lambda v: f"{v:.6g}")


def _cmd_fit(args) -> int:
    from ._bootstrap import bootstrap
    from ._fit import fit, make_data
    from ._objectives import make_loss
    from .laws import get

    law = get(args.law)
    x = _parse_x(args.x)
    _check_options(args)
    loss = make_loss(args.loss, args.delta)
    target = None
    if args.json is not None:
        target = _check_output("--json", args.json, allow_stdout=True)
        refuse_overlaps({"the CSV": args.csv}, {"--json": args.json})
    frame = _read_csv(args.csv)
    pct = f"{100 * args.level:g}%"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = make_data(law, frame, x, args.y, args.weights, None, loss, row_name="line")
        start = time.perf_counter()
        boot = post = None
        if args.bootstrap:
            boot = bootstrap(
                law, data, n=args.bootstrap, seed=args.seed, loss=loss, max_steps=args.max_steps, level=args.level
            )
            result = boot.fit
        else:
            result = fit(law, data, loss=loss, max_steps=args.max_steps)
        if args.posterior:
            from .bayes import posterior

            post = posterior(law, data, likelihood=args.likelihood, seed=args.seed, init=result, level=args.level)
        seconds = time.perf_counter() - start
    notes = list(dict.fromkeys(_note(w) for w in caught))  # a warning raised in a loop is reported once

    table = result.table()
    intervals = post_table = None
    if boot is not None:
        intervals = boot.interval(args.level)
        notes += _interval_notes(intervals, pct, "bootstrap")
        lo, hi = f"lo{pct[:-1]}", f"hi{pct[:-1]}"
        table = _flag(table.join(intervals.rename(columns={"lo": lo, "hi": hi})), lo, hi)
    if post is not None:
        post_table = post.table(args.level)
        notes += _interval_notes(post_table, pct, "posterior")
    notes += _draws_caveats(result, boot, post, args.level)

    lines = [
        f"law {law.name}: {law.equation}",
        f"{data.n} runs from {display(args.csv)}; loss {loss.kind} (delta {loss.delta:g}); {seconds:.2f} s",
        f"starts: {result.stats['n_screened']} screened, {result.n_starts} polished, converged: "
        f"{result.n_converged}, at the best optimum: {result.n_at_best}",
        f"objective: {result.objective:.10g}",
    ]
    if boot is not None:
        lines.append(
            f"bootstrap ({boot.scheme}, seed {args.seed}): {boot.n_converged}/{boot.n_resamples} resamples converged"
        )
    lines.append(_format_table(table))
    if post is not None:
        d = post.diagnostics
        lines.append(
            f"posterior ({post.likelihood}, {post.chains} chains x {post.draws} draws, seed {args.seed}): "
            f"R-hat max {d['rhat_max']:.4f}, ESS min {d['ess_min']:.0f}, divergences {d['divergences']}"
        )
        lines.append(_format_table(_flag(post_table)))

    if target is not None:
        payload = {
            "schema_version": SCHEMA_VERSION,
            "law": law.name,
            "params": {k: float(v) for k, v in result.params.items()},
            "objective": float(result.objective),
            "stderr": {k: float(v) for k, v in result.table()["stderr"].items()},
            "n_points": int(data.n),
            "n_starts": int(result.stats["n_screened"]),
            "n_starts_polished": int(result.n_starts),
            "n_starts_converged": int(result.n_converged),
            "n_at_best": int(result.n_at_best),
            "loss": loss.kind,
            "delta": float(loss.delta),
            "level": float(args.level),
            "columns": {str(k): str(v) for k, v in data.columns.items()},
            "csv": display(args.csv),
            "scalejax_version": __version__,
        }
        if boot is not None:
            payload["intervals"] = {str(k): [float(r.lo), float(r.hi)] for k, r in intervals.iterrows()}
            payload["n_converged"] = int(boot.n_converged)
            payload["n_resamples"] = int(boot.n_resamples)
            payload["seed"] = int(args.seed)
        if post is not None:
            d = post.diagnostics
            payload["posterior"] = {
                "likelihood": post.likelihood,
                "chains": int(post.chains),
                "draws": int(post.draws),
                "seed": int(args.seed),
                "median": {str(k): float(v) for k, v in post_table["median"].items()},
                "intervals": {str(k): [float(r.lo), float(r.hi)] for k, r in post_table.iterrows()},
                "diagnostics": {
                    "rhat_max": float(d["rhat_max"]),
                    "ess_min": float(d["ess_min"]),
                    "divergences": int(d["divergences"]),
                },
            }
        payload, nulls = _json_safe(payload)
        # Standard errors that cannot be computed are null by design (the fit warns why); intervals have their
        # own warning above; anything else that is not finite is news.
        others = [k for k in nulls if not k.startswith(("stderr.", "intervals.", "posterior.intervals."))]
        if others:
            notes.append(f"values that are not finite are written as null in the JSON: {', '.join(others)}")
        payload["warnings"] = [one_line(n) for n in notes]
        write_atomic(target, json.dumps(payload, indent=2, allow_nan=False) + "\n")
        if target.kind != "stdout":
            lines.append(f"wrote {display(args.json)}")

    # Everything is written: now the messages, so a closed stdout or stderr loses nothing.
    for note in notes:
        print(f"warning: {one_line(note)}", file=sys.stderr)
    out = sys.stderr if target is not None and _is_stdout(target) else sys.stdout
    print("\n".join(lines), file=out, flush=True)
    return 0


def _draws_caveats(result, boot, post, level: float) -> list[str]:
    """What the report's caveats add to the warnings already caught: a bootstrap's excluded resamples, the share
    of draws at a bound, per-parameter R-hat and effective sample sizes (the fit's own warnings are caught)."""
    from .report._caveats import of_draws

    notes = []
    for draws in (boot, post):
        if draws is None:
            continue
        if draws is boot:
            notes += [w for w in draws.warnings if w not in result.warnings]
        notes += [c.text for c in of_draws(draws, level=level, with_warnings=False, with_duplicates=False)]
    return notes


def _is_stdout(target) -> bool:
    """Whether the JSON goes to this process's standard output (`-`, or `/dev/stdout` and the like)."""
    if target.kind == "stdout":
        return True
    if target.kind != "stream":
        return False
    try:
        mine, theirs = os.fstat(sys.stdout.fileno()), os.stat(target.real)
    except (OSError, ValueError, AttributeError):
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _reported(w: warnings.WarningMessage) -> bool:
    """Whether this warning is left out of the command's warning lines: the report's caveats already say it
    (the fit's, the data's, the sampler's), or it is another package's deprecation notice (an installed
    matplotlib's about its pyparsing, say), which says nothing about the user's runs."""
    if issubclass(w.category, DeprecationWarning | PendingDeprecationWarning) and "scalejax" not in str(w.filename):
        return True
    return _about_the_runs(w) or w.category.__name__ == "PosteriorWarning"


def _about_the_runs(w: warnings.WarningMessage) -> bool:
    """A warning of the data's or the fit's own (imported here: the command loads the fit only when it fits)."""
    from ._data import DataWarning
    from ._fit import FitWarning

    return issubclass(w.category, DataWarning | FitWarning)


def _note(w: warnings.WarningMessage) -> str:
    if _about_the_runs(w):
        return str(w.message)
    return f"{w.category.__name__}: {w.message}"


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
        f"done in {seconds:.1f} s: {result.stats['n_screened']:,} starts screened, the best {result.n_starts} polished: "
        f"{result.n_converged} converged, {result.n_at_best} at the best optimum"
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
    report = sub.add_parser(
        "report",
        help="fit a law to a CSV of runs and write an HTML (or Markdown) report",
        description="Fit a law to a CSV of runs and write a self-contained HTML report (or Markdown with figures).",
        epilog=_REPORT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_fit_options(report)
    report.add_argument(
        "--posterior", action="store_true", help="intervals from the Bayesian posterior (NUTS) instead of a bootstrap"
    )
    report.add_argument(
        "--target",
        action="append",
        metavar="N=...,D=...",
        help="a run to forecast, e.g. --target N=70e9,D=1.4e12; repeat per run (default: 10x and 100x the largest run)",
    )
    report.add_argument("--save", metavar="PATH", help="also save the fit or bootstrap to PATH (.npz, no pickle)")
    report.add_argument("--out", required=True, metavar="PATH", help="the report: .html (self-contained) or .md")


def _parse_targets(items: list[str] | None, inputs: tuple[str, ...]) -> pd.DataFrame | None:
    import pandas as pd

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
    from .report._document import check_out, check_scale, write_with_caveats

    if args.posterior and args.bootstrap:
        raise UsageError("choose --bootstrap N or --posterior, not both")
    law = get(args.law)
    x = _parse_x(args.x)
    targets = _parse_targets(args.target, law.inputs)
    _check_options(args)
    loss = make_loss(args.loss, args.delta)
    _check_output("--out", args.out)
    _, folder = check_out(args.out, what=f"--out {display(args.out)}", probe=True)
    if args.save is not None:
        _check_output("--save", args.save)
    refuse_overlaps(
        {"the CSV": args.csv},
        {"--out": args.out, "--save": args.save},
        {f"the figures folder of --out {display(args.out)}": folder} if folder is not None else None,
    )
    frame = _read_csv(args.csv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = make_data(law, frame, x, args.y, args.weights, None, loss, row_name="line")
        data = data.replace(index=data.index.rename("line"))  # the report names runs by their line in the CSV
        check_scale(law, data)
        start = time.perf_counter()
        if args.bootstrap:
            result = bootstrap(
                law, data, n=args.bootstrap, seed=args.seed, loss=loss, level=args.level, max_steps=args.max_steps
            )
            summary = f"bootstrap: {result.n_converged}/{result.n_resamples} resamples converged"
        elif args.posterior:
            from .bayes import posterior

            point = fit(law, data, loss=loss, max_steps=args.max_steps)
            result = posterior(law, data, seed=args.seed, level=args.level, init=point)
            d = result.diagnostics
            summary = (
                f"posterior: R-hat max {d['rhat_max']:.4f}, ESS min {d['ess_min']:.0f}, divergences {d['divergences']}"
            )
        else:
            result = fit(law, data, loss=loss, max_steps=args.max_steps)
            summary = (
                f"fit: {result.stats['n_screened']:,} starts screened, {result.n_starts} polished, "
                f"{result.n_converged} converged, {result.n_at_best} at the best optimum"
            )
        command = "scalejax " + shlex.join(display(a) for a in argv)
        # The report (with its figures folder) and --save appear together, or neither does.
        with output_set():
            _, found = write_with_caveats(
                result, targets=targets, out=args.out, level=args.level, command=command, source=display(args.csv)
            )
            if args.save:
                save(result, args.save)
        seconds = time.perf_counter() - start
    # The report's caveats hold what the fit, the data and the posterior warned about, in the report's words;
    # any other warning is passed on as it came.
    notes = [c.text for c in found]
    notes += [_note(w) for w in caught if not _reported(w)]
    for note in dict.fromkeys(notes):
        print(f"warning: {one_line(note)}", file=sys.stderr)
    lines = [summary, f"wrote {display(args.out)} in {seconds:.1f} s"]
    if args.save:
        lines.append(f"saved {display(args.save)}")
    print("\n".join(lines), flush=True)
    return 0


def main(argv: list[str] | None = None, *, console: bool = False) -> int:
    """Entry point of the `scalejax` command; returns the exit status.

    `console=True` (the installed command) first sets JAX up for a command
    that computes: one device per core and the persistent compilation cache.
    `--help`, `--version` and argument errors import neither JAX nor pandas.
    """
    try:
        with terminate_cleanly(redeliver=False):
            argv = sys.argv[1:] if argv is None else list(argv)
            args = _parser().parse_args(argv)
            if console and args.command in ("fit", "report", "demo"):
                from ._compile_cache import enable_compile_cache

                _use_all_cores()
                enable_compile_cache()
            if args.command == "report":
                return _cmd_report(args, argv)
            return {"fit": _cmd_fit, "laws": _cmd_laws, "demo": _cmd_demo, "cache": _cmd_cache}[args.command](args)
    except ScalejaxError as err:
        print(f"scalejax: error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalejax: interrupted", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"scalejax: terminated (signal {stop.signum}); nothing was left half-written", file=sys.stderr)
        return 128 + stop.signum
    except BrokenPipeError:
        # The reader of standard output went away (`| head -1`): every file is already written, so end quietly.
        _silence_stdout()
        return 0


def _cmd_cache(args) -> int:
    from ._compile_cache import cache_info, clear_compile_cache

    info = clear_compile_cache() if args.action == "clear" else cache_info()
    verb = "removed" if args.action == "clear" else "holds"
    print(
        f"{info['path']}: {verb} {info['entries']} compiled functions and {info['programs']} stored solvers "
        f"({info['bytes'] / 2**20:.1f} MiB)"
    )
    return 0


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's final flush raises nothing."""
    if sys.stdout is not sys.__stdout__:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


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
    import jax

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        jax.config.update("jax_num_cpu_devices", max(1, cores))
    except Exception:  # backends already started (an embedding process): keep its devices
        pass


def run() -> None:
    """The console script: `main`, using every core and the persistent compilation cache."""
    sys.exit(main(console=True))


if __name__ == "__main__":
    run()
