"""The report: one self-contained HTML file (figures embedded as PNG) or Markdown with figures beside it.

`write_report` builds the sections (`_sections`), opening with every caveat,
and renders them; every name from the law or the data is escaped once, here.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._draws import Draws
from .._errors import ScalejaxError
from .._output import check_target, display, output_set, stage_folder, write_atomic
from . import _figures as figures
from . import _tables as tables
from ._sections import Cell, Code, Paragraph, Section, build_sections, title_of

__all__ = ["Code", "Section", "build_sections", "write_report"]


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
    source: str | None = None,
) -> Path:
    """Write a report of `draws`: caveats first, then data, parameters, fit, residuals, pair plot, forecasts,
    compute-optimal frontier, backtest, diagnostics and how to reproduce it.

    The "Caveats" section lists every reason for caution found: the
    estimate's warnings, parameters at a bound with the share of draws there,
    repeated runs, excluded resamples, poor R-hat or effective sample sizes,
    how far each forecast and the frontier reach beyond the largest run, and
    what the backtest's refit warned about. `out` ending in `.md` writes
    Markdown with the figures as PNG files in a folder beside it
    (`<name>_files/`); anything else writes one self-contained HTML file
    (figures embedded as base64 PNG, no scripts, no external resources) laid
    out for a 1,200-pixel screen and for A4 paper. Every name from the law or
    the data is escaped for the format written. Files are written
    atomically, and a Markdown report and its folder are swapped in together
    (see `scalejax._output`).

    Args:
        draws: a `Fit`, `Bootstrap`, posterior or other `Draws`, of any law (joint laws too).
        data: the runs, when the draws do not carry them (a `Data` or DataFrame).
        targets: runs to forecast (DataFrame, dict of arrays or list of dicts of
            the law's inputs; a joint law's `group` as labels); default 10x and
            100x the largest run (of each group).
        out: the output path.
        level: interval level (default: the draws' level, else 0.95).
        compute: FLOP budgets of the compute-optimal table and figure (default:
            from the smallest run's compute to 100x the largest's).
        command: the command that produced the draws, shown under "Reproduce".
        title: the report's title (default: the law, the data and the targets).
        source: the data's file name, for the title.

    Returns:
        The path written.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> boot = sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=200)
        >>> sj.write_report(boot, targets={"N": [70e9], "D": [1.4e12]}, out="report.html")
        PosixPath('report.html')
    """
    path, _ = write_with_caveats(
        draws,
        data=data,
        targets=targets,
        out=out,
        level=level,
        compute=compute,
        command=command,
        title=title,
        source=source,
    )
    return path


def write_with_caveats(
    draws: Draws,
    *,
    data=None,
    targets=None,
    out: str | os.PathLike = "report.html",
    level: float | None = None,
    compute=None,
    command: str | None = None,
    title: str | None = None,
    source: str | None = None,
) -> tuple[Path, list]:
    """`write_report`, also returning the caveats the report lists (for the command line's warning lines)."""
    if not isinstance(draws, Draws):
        raise ScalejaxError(f"write_report needs draws (a Fit, Bootstrap or Posterior), got {type(draws).__name__}")
    target, folder = check_out(out)
    data = tables.data_of(draws, data)
    level = tables.level_of(draws, level)
    check_scale(draws.law, data)
    if targets is not None:
        tables.targets_frame(draws, targets)  # fail on bad targets before any work
    chosen = targets if targets is not None else tables.default_targets(draws, data)
    title = title or title_of(draws, data, chosen, source)
    with figures._style():
        sections = build_sections(draws, data, targets, level, compute, command)
    found = [c for s in sections for c in s.caveats]
    try:
        if folder is not None:
            _write_markdown(target, folder, title, sections)
        else:
            write_atomic(target, _html(title, sections))
    finally:
        for section in sections:
            section.figure = None
    return Path(out), found


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


# Default targets are up to 100x the largest run in each input and the frontier reaches 100x its compute:
# the report needs that much headroom on its compute axis (and more for targets given further out).
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


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with figures._style():
        fig.savefig(buf, format="png", dpi=150)
    return buf.getvalue()


def _number(value: float) -> str:
    """A number in 4 significant digits, exponents written short (`1.234e10`, `5e-3`); empty for NaN."""
    if not np.isfinite(value):
        return "" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    text = f"{value:.4g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), text)


def _interval(cell: Cell) -> str:
    if np.isnan(cell.lo) and np.isnan(cell.hi):
        return "not determined"
    return f"[{_number(cell.lo)}, {_number(cell.hi)}]"


def _format(value) -> str:
    if isinstance(value, Cell):
        return _interval(cell=value) if np.isnan(value.value) else f"{_number(value.value)} {_interval(value)}"
    if isinstance(value, float | np.floating):
        return _number(float(value))
    return str(value)


def _html_cell(value) -> str:
    """A table cell's content: numbers kept on one line, an interval stacked under its value."""
    if isinstance(value, Cell):
        interval = f'<div class="ci">{html.escape(_interval(value))}</div>'
        if np.isnan(value.value):
            return interval
        return f'<div class="v">{html.escape(_number(value.value))}</div>{interval}'
    return html.escape(_format(value))


# Text up to this many characters stays on one line; longer text wraps (anywhere, if it has no spaces).
_SHORT = 20


def _cell_class(value) -> str:
    """`n` (a number) and `s` (short text) stay on one line, `t` (long text) wraps; an interval wraps at its comma."""
    if isinstance(value, Cell):
        return ""
    if isinstance(value, float | int | np.floating | np.integer):
        return ' class="n"'
    return ' class="s"' if len(_format(value)) <= _SHORT else ' class="t"'


def _html_table(caption: str, frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [frame.index.name or "", *frame.columns])
    body = "".join(
        "<tr>"
        + f"<th{_cell_class(i)}>{html.escape(_format(i))}</th>"
        + "".join(f"<td{_cell_class(v)}>{_html_cell(v)}</td>" for v in row)
        + "</tr>"
        for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    )
    return (
        f'<div class="table"><table><caption>{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


# Laid out for a 1,200-pixel screen and for A4 portrait: tables wrap their text and stack each interval under
# its value instead of widening the page; figures scale to the column; nothing needs a scroll bar.
_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; max-width: 960px; margin: 1.5em auto;
       padding: 0 1em; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.45em; line-height: 1.25; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc;
       padding-bottom: .2em; margin-top: 1.6em; }
p { max-width: 52em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: .84em; font-variant-numeric: tabular-nums;
        max-width: 100%; }
caption { text-align: left; font-weight: 600; padding-bottom: .3em; }
th, td { border: 1px solid #d0d0d0; padding: .2em .45em; text-align: right; vertical-align: top; }
.n, .s { white-space: nowrap; } .t { overflow-wrap: anywhere; min-width: 8em; }
td div.v { white-space: nowrap; } td div.ci { color: #555; font-size: .92em; }
thead th { background: #f2f2f2; vertical-align: bottom; } tbody th { text-align: left; font-weight: 500; }
img { max-width: 100%; height: auto; display: block; margin: .6em 0; }
div.table { max-width: 100%; overflow-x: auto; }
code { background: #f4f4f4; overflow-wrap: anywhere; }  /* no side padding: it would stick out at a line's end */
nav { line-height: 1.8; } nav a { margin-right: .8em; white-space: nowrap; }
section#caveats p.caveat { border-left: 4px solid #d55e00; background: #fdf3ec; padding: .35em .7em;
                           margin: .45em 0; max-width: none; }
section#caveats p.caveat code { background: none; padding: 0; font-family: inherit; font-weight: 600; }
@page { size: A4 portrait; margin: 14mm; }
@media print { body { max-width: none; margin: 0; padding: 0; font-size: 10pt; } nav { display: none; }
               h2 { break-after: avoid; } img, table, p.caveat { break-inside: avoid; }
               section#caveats p.caveat { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
"""


def _html_inline(paragraph: Paragraph) -> str:
    """A paragraph as HTML: the one place report text is escaped for HTML."""
    pieces = (paragraph,) if isinstance(paragraph, str) else paragraph
    return "".join(
        f"<code>{html.escape(piece)}</code>" if isinstance(piece, Code) else html.escape(piece) for piece in pieces
    )


def _topic(caveat) -> str:
    from ._sections import TOPICS

    return TOPICS.get(caveat.topic, caveat.topic.capitalize())


def _html(title: str, sections: list[Section]) -> str:
    nav = " ".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)  # spaces: the line may wrap
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
        parts += [
            f'<p class="caveat"><code>{html.escape(_topic(c))}:</code> {html.escape(c.text)}</p>' for c in s.caveats
        ]
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
            lines += [f"**{_md_escape(_topic(c))}:** {_md_escape(c.text)}\n" for c in s.caveats]
            if s.figure is not None:
                name = f"{s.id}.png"
                (staged / name).write_bytes(_png(s.figure))
                lines += [f"![{_md_escape(s.alt)}]({link}/{name})", ""]
            for caption, frame in s.tables:
                lines += [_md_table(caption, frame), ""]
        write_atomic(target, "\n".join(lines))
