"""How a result shows itself: `summary()` as data, a readable `repr`, and rich HTML in notebooks.

One summary (law, data size, degrees of freedom, residual scale, objective,
convergence counts, the parameter table with intervals, correlations,
warnings) read from the fields every `Draws` has, rendered as text and as
HTML; names from the law or the data are escaped once, here.
"""

from __future__ import annotations

import html
import math
import warnings

import numpy as np
import pandas as pd

__all__ = ["summarize", "to_html", "to_text"]

# Statistics shown in the header, in order, with their labels.
_HEADER = (
    ("n_points", "points"),
    ("dof", "residual dof"),
    ("residual_sd", "residual sd"),
    ("objective", "objective"),
    ("aic", "AIC"),
    ("bic", "BIC"),
    ("n_starts", "starts"),
    ("n_converged", "converged"),
    ("n_at_best", "at best"),
    ("n_resamples", "resamples"),
    ("n_failed", "failed"),
    ("n_rescued", "rescued"),
    ("chains", "chains"),
    ("draws_per_chain", "draws per chain"),
    ("rhat_max", "R-hat max"),
    ("ess_min", "ESS min"),
    ("ess_tail_min", "tail ESS min"),
    ("divergences", "divergences"),
)


def _number(value):
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    return value


def _information(draws) -> dict:
    """AIC and BIC of the central estimate (Gaussian log residuals), when the draws carry their data."""
    if draws.data is None or draws.loss is None:  # posteriors compare by LOO, not AIC
        return {}
    from .analysis._backtest import information_criteria

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ic = information_criteria(draws)
    except Exception:  # an exact fit (zero residuals) has no Gaussian likelihood: leave the criteria out
        return {}
    return {"aic": float(ic["aic"]), "bic": float(ic["bic"])}


def _correlations(draws) -> pd.DataFrame:
    names = list(draws.law.param_names)
    if draws.is_point:
        cov = draws.covariance().to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = np.sqrt(np.diag(cov))
            corr = cov / np.outer(sd, sd)
        return pd.DataFrame(corr, index=names, columns=names)
    if draws.n_draws < 3:
        return pd.DataFrame(np.full((len(names),) * 2, np.nan), index=names, columns=names)
    return draws.samples.corr()


def summarize(draws, level: float | None = None) -> dict:
    """The summary of any draws as data (see `Draws.summary`)."""
    level = draws.level if level is None else float(level)
    stats = dict(draws.stats)
    full = stats.pop("full_fit", None)
    out = {
        "kind": type(draws).__name__,
        "law": draws.law.name,
        "inputs": list(draws.law.inputs),
        "y": draws.columns.get("y"),
        "method": draws.describe(),
        "n_draws": int(draws.n_draws),
        "level": level,
    }
    if draws.loss is not None:
        out["loss"] = draws.loss.kind
    if isinstance(full, dict):  # a bootstrap: the full-data fit's size, residuals and objective
        for key in ("n_points", "dof", "residual_sd", "objective"):
            if key in full:
                out[key] = _number(full[key])
    for key, value in stats.items():
        if key in ("rhat", "ess", "ess_tail", "status_counts") or isinstance(value, dict | np.ndarray):
            continue
        out.setdefault(key, _number(value))
    if "status_counts" in stats:
        out["status_counts"] = dict(stats["status_counts"])
    if draws.data is not None and "n_points" not in out:
        out["n_points"] = int(np.sum(draws.data.weights > 0))
    out.update(_information(draws))
    out["params"] = draws.table(level)
    out["correlations"] = _correlations(draws)
    out["warnings"] = list(draws.warnings)
    return out


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}" if abs(int(value)) >= 10_000 else str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4g}"
        return f"{value:.3e}"
    return str(value)


def _header_items(s: dict) -> list[tuple[str, str]]:
    order = list(_HEADER)
    if "n_resamples" in s:  # a bootstrap's counts are of resamples, the resamples drawn first
        order.remove(("n_converged", "converged"))
        order.insert(order.index(("n_resamples", "resamples")) + 1, ("n_converged", "converged"))
    items = [(label, _format(s[key])) for key, label in order if key in s]
    if "loss" in s:
        items.insert(0, ("loss", s["loss"]))
    return items


def _title(s: dict) -> str:
    inputs = ", ".join(s["inputs"])
    target = f" -> {s['y']}" if s.get("y") else ""
    return f"{s['kind']} of {s['law']}({inputs}){target}: {s['method']}"


def _table_text(frame: pd.DataFrame) -> str:
    return frame.map(_format).to_string()


def to_text(s: dict) -> str:
    """The summary as plain text (the results' `repr`)."""
    lines = [_title(s)]
    items = _header_items(s)
    line = ""
    for label, value in items:  # wrapped at about 100 characters
        piece = f"{label} {value}"
        if line and len(line) + len(piece) > 96:
            lines.append("  " + line)
            line = ""
        line = f"{line}   {piece}" if line else piece
    if line:
        lines.append("  " + line)
    lines.append(f"parameters ({s['level']:.0%} intervals):")
    lines += ["  " + line for line in _table_text(s["params"]).splitlines()]
    if s["warnings"]:
        lines.append("warnings:")
        lines += [f"  - {w}" for w in s["warnings"]]
    return "\n".join(lines)


_STYLE = (
    "<style>"
    ".scalejax-summary{font-family:system-ui,sans-serif;font-size:13px;line-height:1.4}"
    ".scalejax-summary table{border-collapse:collapse;margin:4px 0}"
    ".scalejax-summary th,.scalejax-summary td{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}"
    ".scalejax-summary th:first-child{text-align:left}"
    ".scalejax-summary .warn{color:#a33}"
    "</style>"
)


def _table_html(frame: pd.DataFrame, caption: str) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [frame.index.name or "", *frame.columns])
    body = "".join(
        f"<tr><th>{html.escape(str(i))}</th>" + "".join(f"<td>{html.escape(_format(v))}</td>" for v in row) + "</tr>"
        for i, row in zip(frame.index, frame.itertuples(index=False), strict=True)
    )
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def to_html(s: dict) -> str:
    """The summary as an HTML fragment (the results' notebook display)."""
    parts = [_STYLE, '<div class="scalejax-summary">', f"<p><strong>{html.escape(_title(s))}</strong></p>"]
    items = _header_items(s)
    if items:
        cells = [f"<th>{html.escape(label)}</th><td>{html.escape(value)}</td>" for label, value in items]
        rows = "".join(f"<tr>{''.join(cells[i : i + 4])}</tr>" for i in range(0, len(cells), 4))
        parts.append(f"<table><tbody>{rows}</tbody></table>")
    parts.append(_table_html(s["params"], f"parameters ({s['level']:.0%} intervals)"))
    if s["warnings"]:
        parts.append('<p class="warn"><strong>Warnings</strong></p><ul class="warn">')
        parts += [f"<li>{html.escape(w)}</li>" for w in s["warnings"]]
        parts.append("</ul>")
    parts.append("</div>")
    return "".join(parts)
