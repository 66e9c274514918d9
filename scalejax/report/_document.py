"""The report: one self-contained HTML file (figures embedded as PNG) or Markdown with figures beside it."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import io
import math
import os
import platform
import re
import urllib.parse
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._draws import Draws
from .._errors import ScalejaxError
from .._output import check_target, display, output_set, stage_folder, write_atomic
from . import _figures as figures
from . import _tables as tables

__all__ = ["write_report"]

_PACKAGES = ("scalejax", "jax", "jaxlib", "numpy", "pandas", "matplotlib", "scipy", "numpyro")


class Code(str):
    """Inline code in a paragraph: shown monospaced, escaped like any other text."""


# A paragraph is plain text or a sequence of plain text and `Code` pieces. Nothing in it is markup: every
# piece is escaped once, when rendered (`_html_inline` for HTML, `_md_inline` for Markdown), so a law or
# column name can never inject markup, whatever it holds.
Paragraph = str | tuple[str, ...]


@dataclasses.dataclass
class Section:
    """One part of the report: a heading, paragraphs, tables and at most one figure."""

    id: str
    title: str
    text: list[Paragraph] = dataclasses.field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = dataclasses.field(default_factory=list)
    figure: Figure | None = None
    alt: str = ""


def write_report(
    draws: Draws,
    *,
    data=None,
    targets=None,
    out: str | os.PathLike = "report.html",
    level: float | None = None,
    compute=None,
    command: str | None = None,
    title: str | None = None,
) -> Path:
    """Write a report of `draws`: data, parameters, fit, residuals, pair plot, extrapolation,
    compute-optimal frontier, backtest, diagnostics and how to reproduce it.

    `out` ending in `.md` writes Markdown with the figures as PNG files in a
    folder beside it (`<name>_files/`); anything else writes one
    self-contained HTML file (figures embedded as base64 PNG, no scripts, no
    external resources). Every name from the law or the data is escaped for
    the format written. Files are written atomically, and a Markdown report
    and its folder are swapped in together (see `scalejax._output`).

    Args:
        draws: a `Fit`, `Bootstrap`, posterior or other `Draws`.
        data: the runs, when the draws do not carry them (a `Data` or DataFrame).
        targets: runs to forecast (DataFrame, dict of arrays or list of dicts of
            the law's inputs); default 10x and 100x the largest run.
        out: the output path.
        level: interval level (default: the draws' level, else 0.95).
        compute: FLOP budgets of the compute-optimal table and figure.
        command: the command that produced the draws, shown under "Reproduce".
        title: the report's title.

    Returns:
        The path written.

    Example:
        >>> boot = sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=200)
        >>> sj.write_report(boot, targets={"N": [70e9], "D": [1.4e12]}, out="report.html")
    """
    if not isinstance(draws, Draws):
        raise ScalejaxError(f"write_report needs draws (a Fit, Bootstrap or Posterior), got {type(draws).__name__}")
    target, folder = check_out(out)
    data = tables.data_of(draws, data)
    level = tables.level_of(draws, level)
    check_scale(draws.law, data)
    if targets is not None:
        tables.targets_frame(draws, targets)  # fail on bad targets before any work
    title = title or f"Scaling-law report: {draws.law.name}"
    with figures._style():
        sections = build_sections(draws, data, targets, level, compute, command)
    try:
        if folder is not None:
            _write_markdown(target, folder, title, sections)
        else:
            write_atomic(target, _html(title, sections))
    finally:
        for section in sections:
            section.figure = None
    return Path(out)


def check_out(out, *, what: str | None = None, probe: bool = False) -> tuple:
    """Check the report's path before any work: returns its output target and, for Markdown, its figures folder.

    Args:
        out: the report's path.
        what: how messages name it (default: the path).
        probe: also try creating a temporary file beside it (see `check_target`).

    Returns:
        `(target, folder)`: the `Target` of the report, and the figures folder
        (`<stem>_files` beside it) for a `.md` report, else None.
    """
    label = what or display(out)
    target = check_target(out, what=label, probe=probe)
    folder = None
    if Path(out).suffix.lower() == ".md":
        if target.kind != "file":
            raise ScalejaxError(f"{label}: a Markdown report needs a folder of figures beside it; give a file path")
        folder = Path(out).with_name(f"{Path(out).stem}_files")
        if os.path.lexists(folder) and not folder.is_dir():
            raise ScalejaxError(
                f"{label}: the figures go in {display(folder)}, which exists and is not a folder; move it away"
            )
    return target, folder


# Default targets are up to 100x the largest run in each input and the frontier reaches 1000x its compute:
# the report needs that much headroom on its compute axis.
_HEADROOM = 1e5


def check_scale(law, data) -> None:
    """Refuse inputs whose compute axis would overflow float64 before any work, with the fix.

    The report draws runs against compute `C = 6 N D` (or the law's first
    input); for N and D near 1e200 that product is infinite and every figure
    would fail later with a misleading message.
    """
    if data is None:
        return
    with np.errstate(all="ignore"):
        scale, label = tables.scale_of(law, data.x)
        scale = np.asarray(scale, dtype=np.float64)
        finite = np.isfinite(scale * _HEADROOM)
    if finite.all():
        return
    if tables.is_compute_law(law):
        n, d = np.asarray(data.x["N"], dtype=np.float64), np.asarray(data.x["D"], dtype=np.float64)
        largest = float(np.max(np.log10(tables.FLOPS_PER_PARAM_TOKEN) + np.log10(n) + np.log10(d)))
    else:
        largest = float(np.max(np.log10(np.abs(scale))))
    raise ScalejaxError(
        f"the report's axis {label} reaches about 1e{math.floor(largest)} for the largest run, beyond the range of "
        f"float64 (1e308) once extrapolated; express the inputs in larger units (e.g. N in billions, D in "
        "billions of tokens) and fit again"
    )


def build_sections(draws, data, targets, level, compute, command) -> list[Section]:
    """Every section of the report, in order, with its tables and figure."""
    law = draws.law
    pct = f"{100 * level:g}%"
    kind = type(draws).__name__
    sections = []

    s = Section("data", "Data")
    if data is None:
        s.text.append("These draws carry no data; pass data= to add the fit, residual and backtest sections.")
    else:
        s.text.append(f"{data.n} runs ({int(np.sum(data.weights > 0))} with positive weight).")
        s.tables.append(("Range of each quantity", tables.data_summary(draws, data)))
    sections.append(s)

    s = Section("parameters", "Parameters")
    equation = f": {law.equation}" if law.equation else ""
    reference = f" ({law.reference})" if law.reference else ""
    s.text.append(("Law ", Code(law.name), equation + reference))
    table, how = tables.parameter_table(draws, level)
    s.text.append(f"{kind} with {draws.n_draws} draw{'s' if draws.n_draws != 1 else ''}; intervals: {how}.")
    s.tables.append(("Parameters", table))
    sections.append(s)

    if data is not None:
        s = Section("fit", "Fit", alt="observed loss against compute with fitted curves")
        s.figure = figures._draw_fit(draws, data, level)
        s.text.append(
            "Observed runs against compute, coloured by model size, with the law at the central estimate"
            + (f" and {pct} bands over the draws." if draws.n_draws > 1 else " (a single fit: no bands).")
        )
        sections.append(s)
        s = Section("residuals", "Residuals", alt="residuals against compute and their histogram")
        s.figure = figures._draw_residuals(draws, data)
        s.text.append(
            "log(observed / fitted) at the central estimate; a pattern against scale means the law misses the trend."
        )
        sections.append(s)
    else:
        sections.append(Section("fit", "Fit", ["Skipped: no data."]))
        sections.append(Section("residuals", "Residuals", ["Skipped: no data."]))

    s = Section("pairs", "Pair plot of the draws", alt="pair plot of the parameter draws")
    s.figure = figures._draw_pairs(draws, 2000)
    if draws.n_draws < 2:
        s.text.append("A single fit has no spread; run a bootstrap or a posterior for the joint uncertainty.")
    sections.append(s)

    s = Section("extrapolation", "Extrapolation to targets", alt="forecasts at the target runs with intervals")
    chosen = targets if targets is not None else tables.default_targets(draws, data)
    if chosen is None:
        s.text.append("Skipped: no targets given and no data to choose defaults from.")
    else:
        if targets is None:
            s.text.append("No targets given: forecasting runs 10x and 100x the largest run in every input.")
        extrapolation = tables.extrapolation_table(draws, chosen, level)
        s.tables.append(
            (f"Forecasts ({pct} interval over the draws)" if draws.n_draws > 1 else "Forecasts", extrapolation)
        )
        s.figure = figures._draw_extrapolation(draws, data, extrapolation, level)
    sections.append(s)

    s = Section("compute-optimal", "Compute-optimal frontier", alt="compute-optimal N, D and loss against compute")
    budgets = figures._default_budgets(draws, data) if compute is None else np.atleast_1d(np.asarray(compute, float))
    frontier = tables.compute_optimal_table(draws, budgets, level)
    if frontier is None:
        s.text.append(
            f"Skipped: the frontier is computed with the closed-form Chinchilla split so far, and law {law.name!r} "
            "is not of that form."
        )
    else:
        s.text.append(
            "Closed-form Chinchilla split under C = 6 N D (scalejax.analysis.chinchilla_compute_optimal), "
            "vmapped over the draws."
        )
        s.figure = figures._draw_compute_optimal(draws, data, frontier, level)
        rows = np.unique(np.linspace(0, len(frontier) - 1, 6).round().astype(int))
        shown = _with_intervals(frontier.iloc[rows].set_index("compute"), ("N", "D", "tokens_per_param", "loss"))
        s.tables.append((f"Compute-optimal allocation at a few budgets (value [{pct} interval])", shown))
    sections.append(s)

    s = Section("backtest", "Backtest", alt="forecasts of held-out largest runs against what was observed")
    result, reason = None, "no data."
    if data is not None:
        reason = "too few runs to hold any out."
        try:
            result = tables.backtest_table(draws, data, level)
        except ScalejaxError as err:  # a failed refit is a finding of the backtest, not a failed report
            reason = f"the refit on the smaller runs failed: {err}"
    if result is None:
        s.text.append("Skipped: " + reason)
    else:
        s.text.append(
            f"Refitted on the {result.n_train} runs up to scale {result.train_scale:.3g} ({result.method}) and "
            f"forecast the {result.n_holdout} largest runs."
        )
        summary = result.summary()
        if "share_inside_interval" in summary:
            s.text.append(
                "The intervals are of the law's prediction over the draws, not of one run's noise around it, "
                "so they need not cover every held-out run."
            )
        s.tables.append(("Summary", pd.DataFrame({"value": pd.Series(summary)}).rename_axis("metric")))
        s.tables.append(("Held-out runs", result.table))
        s.figure = figures._draw_backtest(draws, data, result, level)
    sections.append(s)

    s = Section("diagnostics", "Diagnostics", alt="lane outcomes and per-parameter diagnostics")
    outcome, per_param = tables.diagnostics_table(draws)
    s.tables.append(("Lanes", outcome.set_index("item")))
    if per_param is not None:
        s.tables.append(("Per-parameter diagnostics", per_param))
    s.figure = figures._draw_diagnostics(draws)
    sections.append(s)

    s = Section("reproduce", "Reproduce")
    s.text.append(("Command: ", Code(command or _python_call(draws))))
    s.tables.append(("Versions", pd.DataFrame({"version": pd.Series(_versions())}).rename_axis("package")))
    s.text.append(f"Written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}.")
    sections.append(s)
    return sections


def _python_call(draws) -> str:
    """The Python call that made the draws, as far as their statistics tell."""
    stats, law = draws.stats, draws.law.name
    if "scheme" in stats:
        made = (
            f"scalejax.bootstrap({law!r}, frame, x=..., y=..., n={stats['n_resamples']}, "
            f"scheme={stats['scheme']!r}, seed={stats['seed']})"
        )
    elif "likelihood" in stats:
        made = f"scalejax.posterior({law!r}, frame, x=..., y=..., likelihood={stats['likelihood']!r}, method={stats['method']!r})"
    elif "n_starts" in stats:
        made = f"scalejax.fit({law!r}, frame, x=..., y=...)"
    else:
        made = f"<{type(draws).__name__} of {law!r}>"
    return f"{made} then scalejax.write_report(...)"


def _with_intervals(frame: pd.DataFrame, names) -> pd.DataFrame:
    """One text column per quantity, `value [lo, hi]`, in place of the three numeric columns."""
    out = pd.DataFrame(index=frame.index)
    for name in names:
        values = zip(frame[name], frame[f"{name}_lo"], frame[f"{name}_hi"], strict=True)
        out[name] = [f"{v:.4g}" + ("" if np.isnan(lo) else f" [{lo:.4g}, {hi:.4g}]") for v, lo, hi in values]
    return out


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    if "scalejax" not in out:
        from .. import __version__

        out["scalejax"] = __version__
    out["platform"] = platform.platform()
    return out


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with figures._style():
        fig.savefig(buf, format="png", dpi=130)
    return buf.getvalue()


def _format(value) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.5g}"
    return str(value)


def _html_table(caption: str, frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [frame.index.name or "", *frame.columns])
    body = "".join(
        "<tr>"
        + f"<th>{html.escape(_format(i))}</th>"
        + "".join(f"<td>{html.escape(_format(v))}</td>" for v in row)
        + "</tr>"
        for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    )
    return (
        f'<div class="table"><table><caption>{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; max-width: 980px; margin: 2em auto;
       padding: 0 1em; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .88em; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: .3em; }
th, td { border: 1px solid #d0d0d0; padding: .25em .6em; text-align: right; white-space: nowrap; }
thead th { background: #f2f2f2; } tbody th { text-align: left; font-weight: 500; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; }
div.table { overflow-x: auto; max-width: 100%; }
code { background: #f4f4f4; padding: 0 .25em; }
nav a { margin-right: .8em; }
@media print { body { max-width: none; margin: 0; } h2 { break-after: avoid; } figure, img, table { break-inside: avoid; }
               nav { display: none; } }
"""


def _html_inline(paragraph: Paragraph) -> str:
    """A paragraph as HTML: the one place report text is escaped for HTML."""
    pieces = (paragraph,) if isinstance(paragraph, str) else paragraph
    return "".join(
        f"<code>{html.escape(piece)}</code>" if isinstance(piece, Code) else html.escape(piece) for piece in pieces
    )


def _html(title: str, sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><nav>{nav}</nav>",
    ]
    for s in sections:
        parts.append(f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>')
        parts += [f"<p>{_html_inline(t)}</p>" for t in s.text]
        if s.figure is not None:
            data = base64.b64encode(_png(s.figure)).decode("ascii")
            parts.append(f'<img class="figure" alt="{html.escape(s.alt)}" src="data:image/png;base64,{data}">')
        parts += [_html_table(caption, frame) for caption, frame in s.tables]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# Characters with a meaning anywhere in a line of Markdown (CommonMark, GitHub's tables and $math$), and
# those that start a block at the beginning of a line: each is written backslash-escaped.
_MD_INLINE = re.compile(r"([\\`*_\[\]<>&|~$])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+=-]|\d+[.)])")


def _md_escape(text: str, *, block: bool = True) -> str:
    """Plain text as Markdown that shows exactly that text: no markup, no raw HTML, no math, one line.

    `block=False` for a table cell, where a leading `-` or `1.` starts no list.
    """
    text = " ".join(str(text).splitlines())
    text = _MD_INLINE.sub(r"\\\1", text)
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text) if block else text


def _md_code(text: str) -> str:
    """Inline code in Markdown: fenced with more backticks than the text holds in a row (CommonMark)."""
    text = " ".join(str(text).splitlines())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_inline(paragraph: Paragraph) -> str:
    """A paragraph as Markdown: the one place report text is escaped for Markdown."""
    pieces = (paragraph,) if isinstance(paragraph, str) else paragraph
    return "".join(_md_code(piece) if isinstance(piece, Code) else _md_escape(piece) for piece in pieces)


def _md_table(caption: str, frame: pd.DataFrame) -> str:
    header = [str(frame.index.name or ""), *(str(c) for c in frame.columns)]
    lines = [
        f"**{_md_escape(caption)}**",
        "",
        "| " + " | ".join(_md_escape(h, block=False) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for i, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        cells = [_format(i), *(_format(v) for v in row)]
        lines.append("| " + " | ".join(_md_escape(c, block=False) for c in cells) + " |")
    return "\n".join(lines)


def _write_markdown(target, folder: Path, title: str, sections: list[Section]) -> None:
    """The Markdown file and its figures folder, staged and swapped in together."""
    link = urllib.parse.quote(os.fsencode(folder.name))
    with output_set():
        staged = stage_folder(folder, what=f"{display(target.given)} (figures folder {display(folder)})")
        lines = [f"# {_md_escape(title)}", ""]
        for s in sections:
            lines += [f"## {_md_escape(s.title)}", ""]
            lines += [_md_inline(t) + "\n" for t in s.text]
            if s.figure is not None:
                name = f"{s.id}.png"
                (staged / name).write_bytes(_png(s.figure))
                lines += [f"![{_md_escape(s.alt)}]({link}/{name})", ""]
            for caption, frame in s.tables:
                lines += [_md_table(caption, frame), ""]
        write_atomic(target, "\n".join(lines))
