"""Matplotlib figures of any draws, each returned as a `Figure` (no pyplot state).

Every function works on a `Fit` (a batch of one: curves without bands), a
`Bootstrap`, plain `Draws` and posteriors; bands are equal-tailed intervals
over the draws.
"""

from __future__ import annotations

import contextlib

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator

from .._draws import Draws
from .._errors import LawError
from . import _tables as tables

__all__ = [
    "plot_backtest",
    "plot_compute_optimal",
    "plot_diagnostics",
    "plot_extrapolation",
    "plot_fit",
    "plot_pairs",
    "plot_residuals",
]

# Large enough to read on screen and in print at a page's width.
_RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "savefig.dpi": 130,
    "figure.dpi": 100,
}
_CMAP = "viridis"


@contextlib.contextmanager
def _style():
    with mpl.rc_context(_RC):
        yield


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _pct(level: float) -> str:
    return f"{100 * level:g}%"


def _plain(text) -> str:
    """`text` as a label matplotlib shows as written: each `$` escaped, so names never start mathtext.

    A column named `loss $\\undefinedcmd$` or `cost_$_per_$_token` would
    otherwise be parsed as TeX math and fail (or render as math) when drawn.
    """
    return str(text).replace("$", r"\$")


def _y_label(data) -> str:
    return _plain(data.columns.get("y", "y")) if data is not None else "y"


def _color_input(law) -> str | None:
    """The input that colours points: model size N when the law has it, else the second input."""
    if "N" in law.inputs:
        return "N"
    return law.inputs[1] if len(law.inputs) > 1 else None


def _norm(values):
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    if lo > 0 and hi > lo:
        return LogNorm(lo, hi)
    return Normalize(lo, hi if hi > lo else lo + 1.0)


def _representative(values, k: int = 6) -> np.ndarray:
    """Up to k of the distinct values, spread evenly on a log scale."""
    distinct = np.unique(values)
    if distinct.size <= k + 2:
        return distinct
    logs = np.log(distinct) if distinct.min() > 0 else distinct
    picks = np.quantile(logs, np.linspace(0, 1, k))
    return np.unique(distinct[[int(np.argmin(np.abs(logs - q))) for q in picks]])


def _set_log(ax, x=None, y=None):
    """Log axes for positive values spanning more than a factor of 10 (plain numbers read better otherwise)."""
    for values, set_scale in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size and values.min() > 0 and values.max() > 10 * values.min():
            set_scale("log")


def _limit_y(ax, y):
    """Keep the observed runs in view when fitted curves run far above them."""
    y = np.asarray(y, dtype=np.float64)
    lo, hi = float(y.min()), float(y.max())
    pad = 0.08 * (hi - lo) if hi > lo else 0.05 * abs(hi) + 1e-12
    ax.set_ylim(lo - pad, hi + 2.5 * pad)


def plot_fit(draws: Draws, data=None, *, level: float | None = None) -> Figure:
    """Observed y against compute (or the law's first input), coloured by model size, with fitted curves.

    For laws of N and D, one curve per representative model size runs over
    the observed compute range; bands are intervals over the draws (none for a
    single fit).

    Args:
        draws: a `Fit`, `Bootstrap` or other draws.
        data: the runs (a `Data` or DataFrame), when the draws do not carry them.
        level: band level (default: the draws' level, else 0.95).

    Returns:
        A matplotlib `Figure`.

    Example:
        >>> fig = sj.report.plot_fit(sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss"))
    """
    data = tables.data_of(draws, data, needed_by="plot_fit")
    level = tables.level_of(draws, level)
    with _style():
        return _draw_fit(draws, data, level)


def _draw_fit(draws, data, level) -> Figure:
    law = draws.law
    scale, scale_label = tables.scale_of(law, data.x)
    fig = _figure(7.0, 4.6)
    ax = fig.add_subplot()
    color_by = _color_input(law)
    cmap = mpl.colormaps[_CMAP]
    norm = _norm(data.x[color_by]) if color_by else None
    points = ax.scatter(
        scale,
        data.y,
        c=data.x[color_by] if color_by else "0.2",
        cmap=cmap if color_by else None,
        norm=norm,
        s=22,
        edgecolors="white",
        linewidths=0.4,
        zorder=3,
        label="observed runs",
    )
    banded = draws.n_draws >= 2
    lo_s, hi_s = float(scale.min()), float(scale.max())
    grid = np.geomspace(lo_s / 1.5, hi_s * 1.5, 80) if lo_s > 0 else np.linspace(lo_s, hi_s, 80)
    if tables.is_compute_law(law):
        sizes = _representative(data.x["N"])
        x = {
            "N": np.repeat(sizes, grid.size),
            "D": np.tile(grid, sizes.size) / (tables.FLOPS_PER_PARAM_TOKEN * np.repeat(sizes, grid.size)),
        }
        others = {k: np.full(x["N"].size, np.median(data.x[k])) for k in law.inputs if k not in x}
        pred = tables.band(draws, {**x, **others}, level)
        for i, size in enumerate(sizes):
            part = pred.iloc[i * grid.size : (i + 1) * grid.size]
            color = cmap(norm(size))
            ax.plot(grid, part["y"], color=color, lw=1.4, label="fitted law (central estimate)" if i == 0 else None)
            if banded:
                ax.fill_between(
                    grid,
                    part["lo"],
                    part["hi"],
                    color=color,
                    alpha=0.18,
                    lw=0,
                    label=f"{_pct(level)} band over {draws.n_draws} draws" if i == 0 else None,
                )
        ax.set_title(f"{_plain(law.name)}: observed runs and fitted curves at {sizes.size} model sizes")
    elif len(law.inputs) == 1:
        pred = tables.band(draws, {law.inputs[0]: grid}, level)
        ax.plot(grid, pred["y"], color="C3", lw=1.6, label="fitted law (central estimate)")
        if banded:
            ax.fill_between(
                grid,
                pred["lo"],
                pred["hi"],
                color="C3",
                alpha=0.2,
                lw=0,
                label=f"{_pct(level)} band over {draws.n_draws} draws",
            )
        ax.set_title(f"{_plain(law.name)}: observed runs and fitted law")
    else:
        pred = tables.band(draws, data.x, level)
        yerr = None if not banded else np.abs(np.stack([pred["y"] - pred["lo"], pred["hi"] - pred["y"]]))
        ax.errorbar(
            scale,
            pred["y"],
            yerr=yerr,
            fmt="x",
            color="C3",
            ms=5,
            lw=0.8,
            label="fitted value" + (f" with {_pct(level)} interval" if banded else ""),
        )
        ax.set_title(f"{_plain(law.name)}: observed runs and fitted values")
    _set_log(ax, scale, data.y)
    if ax.get_yscale() == "linear":
        _limit_y(ax, data.y)
    ax.set_xlabel(_plain(scale_label))
    ax.set_ylabel(_y_label(data))
    if color_by:
        fig.colorbar(points, ax=ax, label="model size N" if color_by == "N" else _plain(color_by))
    ax.legend(loc="best")
    return fig


def plot_residuals(draws: Draws, data=None) -> Figure:
    """Residuals `log(observed / fitted)` at the central estimate, against scale and as a histogram.

    Args:
        draws: a `Fit`, `Bootstrap` or other draws.
        data: the runs, when the draws do not carry them.

    Returns:
        A matplotlib `Figure` with two axes.

    Example:
        >>> fig = sj.report.plot_residuals(fit)
    """
    data = tables.data_of(draws, data, needed_by="plot_residuals")
    with _style():
        return _draw_residuals(draws, data)


def _draw_residuals(draws, data) -> Figure:
    law = draws.law
    fitted = tables.center_draws(draws).predict_draws(data.x)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = np.log(data.y / fitted)
    scale, scale_label = tables.scale_of(law, data.x)
    fig = _figure(8.0, 3.6)
    ax, hist = fig.subplots(1, 2, width_ratios=(2.2, 1))
    color_by = _color_input(law)
    points = ax.scatter(
        scale,
        resid,
        c=data.x[color_by] if color_by else "0.2",
        cmap=_CMAP if color_by else None,
        norm=_norm(data.x[color_by]) if color_by else None,
        s=18,
        zorder=3,
    )
    ax.axhline(0.0, color="0.3", lw=0.8)
    _set_log(ax, scale)
    ax.set_xlabel(_plain(scale_label))
    ax.set_ylabel(f"log(observed / fitted {_y_label(data)})")
    ax.set_title("residuals at the central estimate")
    if color_by:
        fig.colorbar(points, ax=ax, label="model size N" if color_by == "N" else _plain(color_by))
    finite = resid[np.isfinite(resid)]
    hist.hist(finite, bins=max(5, min(30, finite.size // 3)), color="C0", alpha=0.8)
    hist.axvline(0.0, color="0.3", lw=0.8)
    hist.set_xlabel("log(observed / fitted)")
    hist.set_ylabel("runs")
    rms = float(np.sqrt(np.mean(finite**2))) if finite.size else float("nan")
    hist.set_title(f"RMS {rms:.3g}")
    return fig


def plot_pairs(draws: Draws, *, max_points: int = 2000) -> Figure:
    """Pair plot of the parameter draws: histograms on the diagonal, scatter below, the central estimate marked.

    Parameters whose draws are positive and span more than a factor of 50 use log axes.

    Args:
        draws: any draws (a single fit shows one point).
        max_points: the most draws scattered (an even thinning beyond).

    Returns:
        A matplotlib `Figure` with one axis per parameter pair.

    Example:
        >>> fig = sj.report.plot_pairs(sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=200))
    """
    with _style():
        return _draw_pairs(draws, max_points)


def _draw_pairs(draws, max_points) -> Figure:
    samples = draws.samples
    names = list(samples.columns)
    values = samples.to_numpy()
    values = values[np.all(np.isfinite(values), axis=1)]
    if values.shape[0] > max_points:
        values = values[np.linspace(0, values.shape[0] - 1, max_points).astype(int)]
    center = draws.center
    k = len(names)
    size = min(9.0, 1.7 * k + 1.0)
    fig = _figure(size, size)
    axes = np.asarray(fig.subplots(k, k, squeeze=False))
    log_axis = [
        bool(values.shape[0] > 1 and np.all(values[:, j] > 0) and values[:, j].max() > 50 * values[:, j].min())
        for j in range(k)
    ]
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                col = values[:, j]
                bins = np.geomspace(col.min(), col.max(), 25) if log_axis[j] else 25
                ax.hist(col, bins=bins, color="C0", alpha=0.8)
                ax.axvline(center[names[j]], color="C3", lw=1.2)
                ax.set_yticks([])
            else:
                ax.scatter(
                    values[:, j], values[:, i], s=4, alpha=0.4 if values.shape[0] > 100 else 0.8, color="C0", lw=0
                )
                ax.plot(center[names[j]], center[names[i]], "x", color="C3", ms=7, mew=1.5)
                if log_axis[i]:
                    ax.set_yscale("log")
            if log_axis[j]:
                ax.set_xscale("log")
            ax.tick_params(labelsize=7)
            if i == k - 1:
                ax.set_xlabel(_plain(names[j]))
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(_plain(names[i]))
            elif j > 0:
                ax.tick_params(labelleft=False)
    note = "" if draws.n_draws > 1 else " (a single fit: no spread)"
    fig.suptitle(f"{draws.n_draws} draws of {_plain(draws.law.name)}{note}; red: central estimate")
    return fig


def plot_extrapolation(draws: Draws, targets=None, data=None, *, level: float | None = None) -> Figure:
    """Predicted y at the targets with intervals, beside the observed runs.

    Args:
        draws: any draws.
        targets: the runs to forecast (a DataFrame, dict of arrays or list of
            dicts of the law's inputs); default 10x and 100x the largest run.
        data: the runs, when the draws do not carry them (optional here).
        level: interval level.

    Returns:
        A matplotlib `Figure`.

    Example:
        >>> fig = sj.report.plot_extrapolation(boot, targets={"N": [70e9], "D": [1.4e12]})
    """
    data = tables.data_of(draws, data)
    level = tables.level_of(draws, level)
    if targets is None:
        targets = tables.default_targets(draws, data)
        if targets is None:
            raise LawError("plot_extrapolation needs targets= when the draws carry no data to choose defaults from")
    table = tables.extrapolation_table(draws, targets, level)
    with _style():
        return _draw_extrapolation(draws, data, table, level)


def _draw_extrapolation(draws, data, table, level) -> Figure:
    law = draws.law
    fig = _figure(7.0, 4.4)
    ax = fig.add_subplot()
    x_targets = tables.scale_of(law, {k: table[k].to_numpy() for k in law.inputs})[0]
    xs = [x_targets]
    ys = [table["y"].to_numpy()]
    if data is not None:
        scale, label = tables.scale_of(law, data.x)
        ax.scatter(scale, data.y, s=14, color="0.55", label="observed runs", zorder=2)
        xs.append(scale)
        ys.append(data.y)
    else:
        label = tables.scale_of(law, {k: table[k].to_numpy() for k in law.inputs})[1]
    banded = table["lo"].notna().all()
    yerr = np.abs(np.stack([table["y"] - table["lo"], table["hi"] - table["y"]])) if banded else None
    ax.errorbar(
        x_targets,
        table["y"],
        yerr=yerr,
        fmt="o",
        color="C3",
        ms=6,
        capsize=4,
        lw=1.4,
        zorder=4,
        label="forecast" + (f" with {_pct(level)} interval" if banded else " (central estimate)"),
    )
    for xi, yi, name in zip(x_targets, table["y"], table.index, strict=True):
        ax.annotate(_plain(name), (xi, yi), xytext=(0, 9), textcoords="offset points", fontsize=9, ha="center")
    _set_log(ax, np.concatenate(xs), np.concatenate(ys))
    ax.set_xlabel(_plain(label))
    ax.set_ylabel(_y_label(data))
    ax.set_title(f"extrapolation to {len(table)} target run{'s' if len(table) != 1 else ''} (numbered as in the table)")
    ax.legend(loc="best")
    return fig


def plot_compute_optimal(draws: Draws, compute=None, data=None, *, level: float | None = None) -> Figure:
    """Compute-optimal model size, tokens and loss against the compute budget, with bands.

    Uses the closed-form Chinchilla split (`scalejax.analysis.chinchilla_compute_optimal`)
    for now, so it needs a law with inputs N, D and parameters E, A, B, alpha, beta.

    Args:
        draws: draws of a Chinchilla-form law.
        compute: FLOP budgets; default from the smallest observed compute to 1000x the largest.
        data: the runs, when the draws do not carry them (optional; shown for context).
        level: band level.

    Returns:
        A matplotlib `Figure` with three axes.

    Example:
        >>> fig = sj.report.plot_compute_optimal(boot)
    """
    data = tables.data_of(draws, data)
    level = tables.level_of(draws, level)
    compute = _default_budgets(draws, data) if compute is None else np.atleast_1d(np.asarray(compute, dtype=float))
    table = tables.compute_optimal_table(draws, compute, level)
    if table is None:
        raise LawError(
            f"the compute-optimal frontier is available for the Chinchilla form only so far; law {draws.law.name!r} is not"
        )
    with _style():
        return _draw_compute_optimal(draws, data, table, level)


def _default_budgets(draws, data) -> np.ndarray:
    if data is None or not tables.is_compute_law(draws.law):
        return np.geomspace(1e18, 1e25, 50)
    scale = tables.scale_of(draws.law, data.x)[0]
    return np.geomspace(scale.min(), scale.max() * 1e3, 50)


def _draw_compute_optimal(draws, data, table, level) -> Figure:
    fig = _figure(9.5, 3.5)
    axes = fig.subplots(1, 3)
    banded = table["N_lo"].notna().all()
    quantities = (
        ("N", "optimal model size N* (parameters)"),
        ("D", "optimal tokens D*"),
        ("loss", "loss at the optimum"),
    )
    for ax, (name, label) in zip(axes, quantities, strict=True):
        ax.plot(table["compute"], table[name], color="C0", lw=1.6, label="central estimate")
        if banded:
            ax.fill_between(
                table["compute"],
                table[f"{name}_lo"],
                table[f"{name}_hi"],
                color="C0",
                alpha=0.2,
                lw=0,
                label=f"{_pct(level)} band over {draws.n_draws} draws",
            )
        if data is not None and name in ("N", "D") and tables.is_compute_law(draws.law):
            ax.scatter(tables.scale_of(draws.law, data.x)[0], data.x[name], s=8, color="0.6", label="observed runs")
        _set_log(ax, table["compute"], table[name])
        if ax.get_xscale() == "log":
            ax.xaxis.set_major_locator(LogLocator(numticks=5))
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel(label)
    axes[0].legend(loc="best")
    fig.suptitle(f"compute-optimal allocation under C = {tables.FLOPS_PER_PARAM_TOKEN:g} N D")
    return fig


def plot_backtest(draws: Draws, data=None, *, level: float | None = None, holdout: float = 0.2) -> Figure:
    """Refit on the smaller runs, forecast the largest `holdout` share, and compare with what was observed.

    Args:
        draws: a `Fit` (refitted as a point fit) or a `Bootstrap` (refitted
            as a bootstrap with the same scheme); other draws refit as a point fit.
        data: the runs, when the draws do not carry them.
        level: interval level.
        holdout: the share of runs (largest scale first) held out.

    Returns:
        A matplotlib `Figure` with two axes.

    Example:
        >>> fig = sj.report.plot_backtest(fit)
    """
    data = tables.data_of(draws, data, needed_by="plot_backtest")
    level = tables.level_of(draws, level)
    result = tables.backtest_table(draws, data, level, holdout=holdout)
    if result is None:
        raise LawError(f"too few runs to hold out {holdout:.0%} and still fit the {draws.law.n_params} parameters")
    with _style():
        return _draw_backtest(draws, data, result, level)


def _draw_backtest(draws, data, result, level) -> Figure:
    law = draws.law
    scale, scale_label = tables.scale_of(law, data.x)
    t = result.table
    fig = _figure(9.0, 3.8)
    ax, err = fig.subplots(1, 2, width_ratios=(1.5, 1))
    train = scale <= result.train_scale
    ax.scatter(scale[train], data.y[train], s=14, color="0.55", label=f"fitted ({result.n_train} runs)")
    ax.scatter(
        t["scale"], t["observed"], s=22, color="k", marker="s", label=f"held out ({result.n_holdout} runs)", zorder=3
    )
    banded = t["lo"].notna().all()
    yerr = np.abs(np.stack([t["y"] - t["lo"], t["hi"] - t["y"]])) if banded else None
    ax.errorbar(
        t["scale"],
        t["y"],
        yerr=yerr,
        fmt="o",
        ms=4,
        color="C3",
        capsize=2,
        lw=1,
        zorder=4,
        label="forecast" + (f" ({_pct(level)} interval)" if banded else ""),
    )
    ax.axvline(result.train_scale, color="0.4", ls="--", lw=0.8)
    _set_log(ax, scale, data.y)
    ax.set_xlabel(_plain(scale_label))
    ax.set_ylabel(_y_label(data))
    ax.set_title(f"backtest: {_plain(tables.refit_kind(result.method))} on the smaller runs")
    ax.legend(loc="best")
    rel = 100 * t["rel_error"]
    rerr = None
    if banded:
        rerr = np.abs(np.stack([100 * (t["y"] - t["lo"]) / t["observed"], 100 * (t["hi"] - t["y"]) / t["observed"]]))
    err.errorbar(t["scale"], rel, yerr=rerr, fmt="o", ms=4, color="C3", capsize=2, lw=1)
    err.axhline(0.0, color="0.3", lw=0.8)
    _set_log(err, t["scale"])
    err.set_xlabel(_plain(scale_label))
    err.set_ylabel("forecast error (% of observed)")
    summary = result.summary()
    err.set_title(f"mean |error| {100 * summary['mean_abs_rel_error']:.2f}%")
    return fig


def plot_diagnostics(draws: Draws) -> Figure:
    """How the lanes ended (starts of a fit, resamples of a bootstrap) and, for draws with
    `.diagnostics` (a posterior), each per-parameter diagnostic such as R-hat and ESS.

    Args:
        draws: any draws.

    Returns:
        A matplotlib `Figure`.

    Example:
        >>> fig = sj.report.plot_diagnostics(boot)
    """
    with _style():
        return _draw_diagnostics(draws)


def _draw_diagnostics(draws) -> Figure:
    outcomes = tables.lane_outcomes(draws)
    _, per_param = tables.diagnostics_table(draws)
    numeric = []
    if per_param is not None:
        numeric = [c for c in per_param.columns if np.issubdtype(per_param[c].dtype, np.number)][:3]
    fig = _figure(3.6 * (1 + len(numeric)), 3.4)
    axes = np.atleast_1d(fig.subplots(1, 1 + len(numeric)))
    ax = axes[0]
    names = list(outcomes)
    counts = [outcomes[k] for k in names]
    colors = ["C2" if i == 0 else "C3" for i in range(len(names))]
    bars = ax.bar([_plain(name) for name in names], counts, color=colors)
    ax.bar_label(bars, fontsize=8)
    ax.set_ylabel("lanes")
    ax.set_title("lane outcomes")
    ax.tick_params(axis="x", labelrotation=20)
    for ax, column in zip(axes[1:], numeric, strict=True):
        ax.bar([_plain(name) for name in per_param.index], per_param[column], color="C0")
        if "hat" in column.lower():
            ax.axhline(1.01, color="C3", ls="--", lw=1, label="1.01")
            ax.legend(loc="best")
        ax.set_title(_plain(column))
        ax.tick_params(axis="x", labelrotation=30)
    return fig
