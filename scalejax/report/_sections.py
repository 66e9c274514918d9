"""The report's content: its sections in order, each with paragraphs, tables and at most one figure.

The first section, "Caveats", gathers every warning found while building
the others (see `_caveats`); `_document` renders the sections as HTML or Markdown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import platform
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .._draws import Draws
from .._errors import ScalejaxError
from .._joint import GROUP_INPUT, JointLaw
from . import _caveats as caveats
from . import _figures as figures
from . import _tables as tables

__all__ = ["Cell", "Code", "Section", "build_sections", "title_of"]

_PACKAGES = ("scalejax", "jax", "jaxlib", "numpy", "pandas", "matplotlib", "scipy", "numpyro")


class Code(str):
    """Inline code in a paragraph: shown monospaced, escaped like any other text."""


# A paragraph is plain text or a sequence of plain text and `Code` pieces. Nothing in it is markup: every
# piece is escaped once, when rendered, so a law or column name can never inject markup, whatever it holds.
Paragraph = str | tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Cell:
    """A table cell holding a value and its interval, shown stacked: the value, then `[lo, hi]` beneath it."""

    value: float
    lo: float = float("nan")
    hi: float = float("nan")


@dataclasses.dataclass
class Section:
    """One part of the report: a heading, paragraphs, tables and at most one figure.

    `caveats` (the "Caveats" section only) holds the `Caveat`s its paragraphs show.
    """

    id: str
    title: str
    text: list[Paragraph] = dataclasses.field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = dataclasses.field(default_factory=list)
    figure: Figure | None = None
    alt: str = ""
    caveats: list = dataclasses.field(default_factory=list)


TOPICS = {
    "data": "Data",
    "fit": "Fit",
    "bootstrap": "Bootstrap",
    "posterior": "Posterior",
    "draws": "Draws",
    "forecast": "Forecast",
    "frontier": "Frontier",
    "backtest": "Backtest",
    "report": "Computation",
}


def build_sections(draws, data, targets, level, compute, command) -> list[Section]:
    """Every section of the report, in order ("Caveats" first), with its tables and figure."""
    found: list[caveats.Caveat] = []
    sections = []
    shares = None
    with _collecting(found, "the parameters"):
        shares = caveats.bound_shares(draws, data)
    found += caveats.of_draws(draws, data, level=level, shares=shares)
    y = tables.y_name(draws, data)
    pct = f"{100 * level:g}%"

    s = Section("data", "Data")
    if data is None:
        s.text.append("These draws carry no data; pass data= to add the fit, residual and backtest sections.")
    else:
        s.text.append(f"{data.n} runs ({int(np.sum(data.weights > 0))} with positive weight).")
        s.tables.append(("Range of each quantity", tables.data_summary(draws, data)))
    sections.append(s)

    sections.append(_parameters(draws, level, shares))

    if data is not None:
        s = Section("fit", "Fit", alt=f"observed {y} against compute with the fitted law")
        with _collecting(found, "the fit figure"):
            s.figure = figures._draw_fit(draws, data, level)
        s.text.append(_fit_text(draws, level))
        sections.append(s)
        s = Section("residuals", "Residuals", alt="residuals against compute and their histogram")
        with _collecting(found, "the residuals"):
            s.figure = figures._draw_residuals(draws, data)
        s.text.append(
            f"log(observed / fitted {y}) at the central estimate; a pattern against scale means the law misses "
            "the trend."
        )
        sections.append(s)
    else:
        sections.append(Section("fit", "Fit", ["Skipped: no data."]))
        sections.append(Section("residuals", "Residuals", ["Skipped: no data."]))

    s = Section("pairs", "Pair plot of the draws", alt="pair plot of the parameter draws")
    with _collecting(found, "the pair plot"):
        s.figure = figures._draw_pairs(draws, 2000, level=level, shares=shares)
    if draws.n_draws >= 2:
        s.text.append(
            "Each pair of parameters over the draws; red: the central estimate; orange: draws with a parameter at "
            "a bound of its range. Scale parameters (estimated on a log scale) have log axes."
        )
    elif draws.is_point:
        s.text.append(
            f"A point fit has no draws: each panel shows the {pct} region of a pair under the Gauss-Newton "
            "covariance (a local approximation); run a bootstrap or a posterior for the joint uncertainty."
        )
    else:
        s.text.append("A single draw has no spread; run a bootstrap or a posterior for the joint uncertainty.")
    sections.append(s)

    s, table = _extrapolation(draws, data, targets, level, found)
    sections.append(s)
    if table is not None:
        what = "compute" if tables.is_compute_law(draws.law) else draws.law.inputs[0]
        found += caveats.of_forecasts(table, what)

    s, frontier = _frontier(draws, data, level, compute, found)
    sections.append(s)
    found += caveats.of_frontier(frontier, level)

    s, result = _backtest(draws, data, level, found)
    sections.append(s)
    found += caveats.of_backtest(result, level)

    s = Section("diagnostics", "Diagnostics", alt="how the starts or resamples ended, and per-parameter diagnostics")
    s.text.append(
        "How the estimate's starts or resamples ended, the share of draws at a bound of each bounded parameter, and "
        "for a posterior each parameter's R-hat (should be below 1.01) and effective sample size (above 100 per "
        "chain)."
    )
    outcome, per_param = tables.diagnostics_table(draws)
    s.tables.append(("The estimate", outcome.set_index("item")))
    if per_param is not None:
        s.tables.append(("Per-parameter diagnostics", per_param))
    with _collecting(found, "the diagnostics"):
        s.figure = figures._draw_diagnostics(draws, shares)
    sections.append(s)

    s = Section("reproduce", "Reproduce")
    s.text.append(("Command: ", Code(command or _python_call(draws))))
    s.tables.append(("Versions", pd.DataFrame({"version": pd.Series(_versions())}).rename_axis("package")))
    s.text.append(f"Written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}.")
    sections.append(s)

    sections.insert(0, _caveats_section(found))
    return sections


# NumPy's floating-point warnings (raised from the library's own lines): not findings to report.
_NUMPY_NOISE = ("encountered in", "divide by zero", "empty slice", "Degrees of freedom", "All-NaN")


@contextlib.contextmanager
def _collecting(found: list, where: str):
    """Turn the library's warnings raised inside the block (the fit's, the data's, an analysis' note that some
    draws gave no value) into caveats; any other warning passes on unchanged."""
    package = str(Path(__file__).resolve().parents[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        ours = w.category.__module__.startswith("scalejax") or (
            issubclass(w.category, RuntimeWarning)
            and str(Path(w.filename).resolve()).startswith(package)
            and not any(noise in str(w.message) for noise in _NUMPY_NOISE)
        )
        if ours:
            text = f"while computing {where}: {w.message}"
            if all(c.text != text for c in found):
                found.append(caveats.Caveat("report", text))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _caveats_section(found: list) -> Section:
    s = Section("caveats", "Caveats")
    unique = list({c.text: c for c in found}.values())
    s.caveats = unique
    if not unique:
        s.text.append("None found: no parameter at a bound, no repeated runs, every start or resample converged.")
    else:
        s.text.append(
            f"{len(unique)} reason{'s' if len(unique) != 1 else ''} for caution, from the estimate, the data, the "
            "forecasts and the backtest (the command line prints the same list as warning: lines)."
        )
    return s


def _fit_text(draws, level) -> str:
    pct = f"{100 * level:g}%"
    band = (
        f" and the {pct} parameter interval as a band"
        if draws.n_draws >= 2 or draws.is_point
        else " (a single draw: no band)"
    )
    if tables.is_compute_law(tables.base_law(draws.law)):
        return (
            "Runs against compute, one colour per model size, with the law at the central estimate drawn solid over "
            "each size's runs and dashed for 10x more tokens" + band + "."
            + (" One panel per group." if isinstance(draws.law, JointLaw) else "")
        )  # fmt: skip
    return "Runs with the law at the central estimate (solid over the runs, dashed beyond)" + band + "."


def _parameters(draws, level, shares) -> Section:
    law = draws.law
    s = Section("parameters", "Parameters")
    equation = f": {law.equation}" if law.equation else ""
    reference = f" ({law.reference})" if law.reference else ""
    s.text.append(("Law ", Code(law.name), equation + reference))
    table, how = tables.parameter_table(draws, level, shares)
    pct = f"{100 * level:g}%"
    n = draws.n_draws
    s.text.append(f"{type(draws).__name__} with {n:,} draw{'s' if n != 1 else ''}; intervals: {how}.")
    shown = pd.DataFrame(index=table.index)
    shown["value"] = table["value"]
    if "stderr" in table:
        shown["standard error"] = table["stderr"]
    shown[f"{pct} interval"] = [Cell(float("nan"), lo, hi) for lo, hi in zip(table["lo"], table["hi"], strict=True)]
    shown["range"] = table["range"]
    if "at_bound" in table:
        shown["draws at a bound"] = [f"{100 * v:.1f}%" if v > 0 else "none" for v in table["at_bound"]]
    s.tables.append(("Parameters", shown))
    bad = [k for k in table.index if not (np.isfinite(table.loc[k, "lo"]) and np.isfinite(table.loc[k, "hi"]))]
    if bad and (n >= 2 or draws.is_point):
        s.text.append(
            f"No usable interval for {', '.join(map(str, bad))}: the data do not determine "
            + ("it" if len(bad) == 1 else "them")
            + " (see the caveats)."
        )
    return s


def _distance_text(d: float) -> str:
    if not np.isfinite(d):
        return "unknown (no runs)"
    if d <= 0:
        return "within the runs"
    return f"{d:.2f} decades ({10**d:,.0f}x)" if d >= 1 else f"{d:.2f} decades ({10**d:.2g}x)"


def _extrapolation(draws, data, targets, level, found):
    s = Section("extrapolation", "Forecasts", alt="forecasts at the target runs with their intervals")
    chosen = targets if targets is not None else tables.default_targets(draws, data)
    if chosen is None:
        s.text.append("Skipped: no targets given and no data to choose defaults from.")
        return s, None
    if targets is None:
        s.text.append(
            "No targets given: forecasting runs at 10x and 100x the largest run's "
            + ("compute (N and D each grown alike)" if tables.is_compute_law(draws.law) else draws.law.inputs[0])
            + (", in each group." if isinstance(draws.law, JointLaw) else ".")
        )
    with _collecting(found, "the forecasts"):
        table = tables.extrapolation_table(draws, chosen, level, data)
    y = tables.y_name(draws, data)
    pct = f"{100 * level:g}%"
    how = table.attrs["predictive"]
    law = draws.law
    shown = pd.DataFrame(index=table.index)
    for name in law.inputs:
        column = "group" if isinstance(law, JointLaw) and name == GROUP_INPUT else name
        shown[column] = [v if isinstance(v, str) else tables.short(name, v) for v in table[name]]
    if "C" in table:
        shown["compute C"] = table["C"]
    shown["beyond the largest run"] = [_distance_text(d) for d in table["distance"]]
    for column in (c for c in table.columns if c.startswith("distance_")):
        name = column.removeprefix("distance_")
        shown[f"{name} outside the runs' range"] = ["within it" if d <= 0 else _distance_text(d) for d in table[column]]
    shown[y] = table["y"]
    shown[f"{pct} parameter interval"] = [Cell(np.nan, a, b) for a, b in zip(table["lo"], table["hi"], strict=True)]
    if table["pred_lo"].notna().any():
        shown[f"{pct} {how}"] = [Cell(np.nan, a, b) for a, b in zip(table["pred_lo"], table["pred_hi"], strict=True)]
    s.tables.append((f"Forecast {y} at each target", shown))
    if how.startswith("no predictive"):
        s.text.append(
            f"The parameter interval says where the law's {y} could be. There is {how}. Each forecast is labelled "
            "with its distance beyond the largest run: errors grow with it."
        )
    else:
        s.text.append(
            f"The parameter interval says where the law's {y} could be; the {how} adds one run's noise and says "
            "where a measured value could fall. Each forecast is labelled with its distance beyond the largest run: "
            "errors grow with it."
        )
        found_text = tables.calibration_text(table, y)
        if found_text:
            s.text.append(found_text)
    with _collecting(found, "the forecast figure"):
        s.figure = figures._draw_extrapolation(draws, data, table, level)
    return s, table


def _frontier(draws, data, level, compute, found):
    law = draws.law
    s = Section("compute-optimal", "Compute-optimal frontier", alt="compute-optimal N, D and loss against compute")
    if set(tables.base_law(law).inputs) != {"N", "D"}:
        s.text.append(
            "Skipped: the compute-optimal frontier needs a law of model size N and tokens D, and law "
            f"{law.name!r} is not of that form."
        )
        return s, None
    budgets = figures._default_budgets(draws, data) if compute is None else np.atleast_1d(np.asarray(compute, float))
    try:
        with _collecting(found, "the compute-optimal frontier"):
            frontier = tables.compute_optimal_table(draws, budgets, level, data)
    except ScalejaxError as err:
        s.text.append(f"Skipped: {err}")
        return s, None
    reach = 10**tables.FRONTIER_REACH
    s.text.append(
        "The model size N* and tokens D* that minimise the law's loss at each compute budget C = 6 N D "
        "(scalejax.compute_optimal), with the parameter interval over the draws; the loss also with the "
        f"{frontier.attrs['predictive']} of one run. Drawn solid within the runs' compute range, dashed beyond it "
        f"up to {reach:g}x the largest run, and grey past that (not a forecast)."
    )
    with _collecting(found, "the frontier figure"):
        s.figure = figures._draw_compute_optimal(draws, data, frontier, level)
    pct = f"{100 * level:g}%"
    y = tables.y_name(draws, data)
    blocks = []
    groups = frontier["group"] if "group" in frontier else pd.Series([None] * len(frontier))
    for label in dict.fromkeys(groups):
        rows = frontier[(groups == label).to_numpy()] if label is not None else frontier
        pick = np.unique(np.linspace(0, len(rows) - 1, 6).round().astype(int))
        blocks.append(rows.iloc[pick])
    chosen = pd.concat(blocks)
    shown = pd.DataFrame(index=pd.RangeIndex(len(chosen)))
    if "group" in chosen:
        shown["group"] = chosen["group"].to_numpy()
    shown["compute C"] = chosen["compute"].to_numpy()
    shown["beyond the largest run"] = [_distance_text(d) for d in chosen["distance"]]
    for name, label in (("N", "N*"), ("D", "D*"), ("tokens_per_param", "tokens per parameter"), ("loss", y)):
        shown[label] = [
            Cell(v, a, b) for v, a, b in zip(chosen[name], chosen[f"{name}_lo"], chosen[f"{name}_hi"], strict=True)
        ]
    if chosen["loss_pred_lo"].notna().any():
        shown[f"{y} ({pct} predictive)"] = [
            Cell(np.nan, a, b) for a, b in zip(chosen["loss_pred_lo"], chosen["loss_pred_hi"], strict=True)
        ]
    s.tables.append((f"Compute-optimal allocation at a few budgets (value, and {pct} parameter interval beneath)", shown.set_index("compute C")))  # fmt: skip
    return s, frontier


def _backtest(draws, data, level, found):
    s = Section("backtest", "Backtest", alt="forecasts of held-out largest runs against what was observed")
    result, reason = None, "no data."
    if data is not None:
        reason = "too few runs to hold any out."
        try:
            with _collecting(found, "the backtest"):
                result = tables.backtest_table(draws, data, level)
        except ScalejaxError as err:  # a failed refit is a finding of the backtest, not a failed report
            reason = f"the refit on the smaller runs failed: {err}"
    if result is None:
        s.text.append("Skipped: " + reason)
        return s, None
    pct = f"{100 * level:g}%"
    y = tables.y_name(draws, data)
    s.text.append(
        f"Refitted on the {result.n_train} runs up to scale {result.train_scale:.3g} ({result.method}) and "
        f"forecast the {result.n_holdout} largest runs."
    )
    summary = result.summary()
    labels = {
        "mean_abs_rel_error": "mean |error| (% of observed)",
        "max_abs_rel_error": "largest |error| (% of observed)",
        "share_inside_interval": f"held-out runs inside the {pct} parameter interval",
        "share_inside_predictive": f"held-out runs inside the {pct} predictive interval",
    }
    rows = {labels[k]: (f"{100 * v:.2f}%" if "error" in k else f"{100 * v:.0f}%") for k, v in summary.items()}
    s.tables.append(("Summary", pd.DataFrame({"value": pd.Series(rows)}).rename_axis("metric")))
    t = result.table
    law = draws.law
    shown = pd.DataFrame(index=pd.RangeIndex(1, len(t) + 1, name="held-out run"))
    for name in law.inputs:
        column = "group" if isinstance(law, JointLaw) and name == GROUP_INPUT else name
        shown[column] = [v if isinstance(v, str) else tables.short(name, v) for v in t[name]]
    shown["compute C" if tables.is_compute_law(law) else "scale"] = t["scale"].to_numpy()
    shown[f"observed {y}"] = t["observed"].to_numpy()
    shown[f"forecast {y}"] = t["y"].to_numpy()
    if t["lo"].notna().all():
        shown[f"{pct} parameter interval"] = [Cell(np.nan, a, b) for a, b in zip(t["lo"], t["hi"], strict=True)]
    if t["pred_lo"].notna().all():
        shown[f"{pct} predictive interval"] = [
            Cell(np.nan, a, b) for a, b in zip(t["pred_lo"], t["pred_hi"], strict=True)
        ]
    shown["error"] = [f"{100 * v:+.2f}%" for v in t["rel_error"]]
    s.tables.append(("Held-out runs", shown))
    with _collecting(found, "the backtest figure"):
        s.figure = figures._draw_backtest(draws, data, result, level)
    return s, result


def title_of(draws: Draws, data, targets, source: str | None) -> str:
    """The report's title: the law, the data (file and y column) and the targets."""
    law = draws.law.name
    y = tables.y_name(draws, data)
    on = f" fitted to {source} ({y})" if source else (f" fitted to {data.n} runs of {y}" if data is not None else "")
    title = f"Scaling-law report: {law}{on}"
    if targets is not None:
        try:
            frame = tables.targets_frame(draws, targets)
        except ScalejaxError:
            return title
        names = tables.target_names(draws, frame)
        title += ", forecasts at " + ("; ".join(names) if len(names) <= 3 else f"{len(names)} targets")
    return title


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
