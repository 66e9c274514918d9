"""The fit and residual figures: runs against compute (or the first input) with the fitted law, per model size,
per isoFLOP budget or per group of a joint law."""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .._draws import Draws
from . import _tables as tables
from ._plotting import (
    _SIZE_MAP,
    WIDTH,
    _banded,
    _Colors,
    _figure,
    _group_color,
    _limit_y,
    _parameter_label,
    _plain,
    _set_log,
    _style,
    _style_handles,
)

__all__ = ["plot_fit", "plot_residuals"]

_FORECAST_TOKENS = 10.0  # each size's dashed curve runs to this many times its longest run's tokens


# ---------------------------------------------------------------------------------------------- fit


def plot_fit(draws: Draws, data=None, *, level: float | None = None) -> Figure:
    """Observed y against compute (or the law's first input) with the fitted law.

    For laws of N and D, each model size's runs are coloured by size, with
    the law drawn solid over that size's observed range and dashed for 10x
    more tokens; bands are the parameter interval. A joint law gets one panel
    per group (laws of N and D) or one colour per group.

    Args:
        draws: a `Fit`, `Bootstrap`, posterior or other draws.
        data: the runs (a `Data` or DataFrame), when the draws do not carry them.
        level: band level (default: the draws' level, else 0.95).

    Returns:
        A matplotlib `Figure`.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fig = sj.report.plot_fit(sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss"))
    """
    data = tables.data_of(draws, data, needed_by="plot_fit")
    level = tables.level_of(draws, level)
    with _style():
        return _draw_fit(draws, data, level)


def _round_budget(c) -> np.ndarray:
    logs = np.log10(np.asarray(c, dtype=np.float64))
    return 10 ** (np.round(logs * 100) / 100)


def _isoflop(data) -> bool:
    """Whether the runs form isoFLOP profiles (few runs per model size, several per compute budget)."""
    n = np.asarray(data.x["N"])
    budgets = _round_budget(tables.FLOPS_PER_PARAM_TOKEN * n * np.asarray(data.x["D"]))
    return n.size / np.unique(n).size < 2 and n.size / np.unique(budgets).size >= 3


def _draw_fit(draws, data, level) -> Figure:
    law = tables.base_law(draws.law)
    parts = tables.parts(draws, data)
    y_name = _plain(tables.y_name(draws, data))
    if tables.is_compute_law(law):
        isoflop = _isoflop(data)
        cols = min(2, len(parts))
        rows = math.ceil(len(parts) / cols)
        fig = _figure(WIDTH, 4.2 if rows == 1 and cols == 1 else 3.1 * rows + 0.6)
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharey=True)).ravel()
        if isoflop:
            c_all = tables.FLOPS_PER_PARAM_TOKEN * np.concatenate([p.data.x["N"] * p.data.x["D"] for p in parts])
            colors = _Colors(_round_budget(c_all))
        else:
            colors = _Colors(np.concatenate([p.data.x["N"] for p in parts]))
        for ax, part in zip(axes, parts, strict=False):
            (_fit_panel_isoflop if isoflop else _fit_panel_nd)(ax, part, level, colors)
            if part.label is not None:
                ax.set_title(_plain(part.label))
        for ax in axes[len(parts) :]:
            ax.set_axis_off()
        for ax in axes[: len(parts)]:
            ax.set_xlabel("model size N (parameters)" if isoflop else _plain(tables.axis_label(draws, data)))
        for ax in axes[:: max(1, cols)]:
            ax.set_ylabel(y_name)
        _size_legend(fig, parts[0].draws, colors, level, many=len(parts) > 1, isoflop=isoflop)
        if isoflop:
            title = f"isoFLOP profiles: {y_name} of {data.n} runs and the fitted law at each budget"
        else:
            title = f"{y_name} of {data.n} runs and the fitted {_plain(draws.law.name)} law, by model size"
        fig.suptitle(title, fontsize=10)
        return fig
    fig = _figure(WIDTH, 4.2)
    ax = fig.add_subplot()
    if len(law.inputs) == 1:
        for i, part in enumerate(parts):
            color = _group_color(i) if part.label is not None else "C0"
            _fit_panel_one(ax, part, level, color, part.label)
        handles = _style_handles(parts[0].draws, level, forecast="forecast to 10x the largest run (dashed)")
        if len(parts) > 1:
            handles = [
                Line2D([], [], color=_group_color(i), marker="o", lw=1.5, label=_plain(p.label))
                for i, p in enumerate(parts)
            ] + handles
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        ax.set_title(f"{y_name} of {data.n} runs and the fitted {_plain(draws.law.name)} law")
    else:
        _fit_values(ax, draws, data, level)
    ax.set_xlabel(_plain(tables.axis_label(draws, data)))
    ax.set_ylabel(y_name)
    return fig


def _fit_panel_isoflop(ax, part, level, colors) -> None:
    """Loss against model size at each compute budget, the law solid over each budget's sizes, its optimum marked."""
    draws, data = part.draws, part.data
    law = draws.law
    n, d = data.x["N"], data.x["D"]
    budgets = _round_budget(tables.FLOPS_PER_PARAM_TOKEN * n * d)
    others = {k: np.median(data.x[k]) for k in law.inputs if k not in ("N", "D")}
    ys = [data.y]
    for budget in np.unique(budgets):
        mine = budgets == budget
        color = colors(budget)
        ax.scatter(n[mine], data.y[mine], color=color, s=20, edgecolors="white", linewidths=0.4, zorder=3)
        c = float(np.median(tables.FLOPS_PER_PARAM_TOKEN * n[mine] * d[mine]))
        grid = np.geomspace(float(n[mine].min()), float(n[mine].max()), 40) if mine.sum() > 1 else n[mine]
        x = {
            "N": grid,
            "D": c / (tables.FLOPS_PER_PARAM_TOKEN * grid),
            **{k: np.full(grid.size, v) for k, v in others.items()},
        }
        pred = tables.band(draws, x, level)
        ax.plot(grid, pred["y"], color=color, lw=1.5, zorder=2)
        if _banded(draws):
            ax.fill_between(grid, pred["lo"], pred["hi"], color=color, alpha=0.18, lw=0, zorder=1)
        ys.append(pred["y"])
        best = int(np.argmin(pred["y"].to_numpy()))
        if 0 < best < grid.size - 1:
            ax.plot(
                grid[best], pred["y"].iloc[best], marker="D", ls="", ms=5, color=color, mec="black", mew=0.6, zorder=4
            )
    ax.set_xscale("log")
    _set_log(ax, None, data.y)
    _limit_y(ax, *ys, log=ax.get_yscale() == "log")


def _segments(lo: float, hi: float, reach: float, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A grid over [lo, hi] (observed) and one over [hi, hi * reach] (forecast), geometric for positive ends."""
    if lo > 0:
        inside = np.geomspace(lo, hi, n) if hi > lo else np.array([lo])
        beyond = np.geomspace(hi, hi * reach, n // 2)
    else:
        inside = np.linspace(lo, hi, n)
        beyond = np.linspace(hi, hi + (hi - lo) * (reach - 1) / 10, n // 2)
    return inside, beyond


def _fit_panel_nd(ax, part, level, colors) -> None:
    draws, data = part.draws, part.data
    law = draws.law
    n, d = data.x["N"], data.x["D"]
    others = {k: np.median(data.x[k]) for k in law.inputs if k not in ("N", "D")}
    sizes = colors.distinct if colors.discrete else _representative(n)
    scale = tables.scale_of(law, data.x)[0]
    ys = [data.y]
    for size in np.unique(n):
        mine = n == size
        ax.scatter(scale[mine], data.y[mine], color=colors(size), s=20, edgecolors="white", linewidths=0.4, zorder=3)
    for size in sizes:
        mine = n == size
        if not mine.any():
            continue
        inside, beyond = _segments(float(d[mine].min()), float(d[mine].max()), _FORECAST_TOKENS)
        grid = np.concatenate([inside, beyond])
        x = {"N": np.full(grid.size, size), "D": grid, **{k: np.full(grid.size, v) for k, v in others.items()}}
        pred = tables.band(draws, x, level)
        c = tables.FLOPS_PER_PARAM_TOKEN * size * grid
        color = colors(size)
        k = inside.size
        ax.plot(c[:k], pred["y"][:k], color=color, lw=1.5, zorder=2)
        ax.plot(c[k - 1 :], pred["y"][k - 1 :], color=color, lw=1.3, ls="--", zorder=2)
        if _banded(draws):
            ax.fill_between(c, pred["lo"], pred["hi"], color=color, alpha=0.18, lw=0, zorder=1)
        ys.append(pred["y"][:k])
    ax.set_xscale("log")
    _set_log(ax, None, data.y)
    _limit_y(ax, *ys, log=ax.get_yscale() == "log")


def _representative(values, k: int = 8) -> np.ndarray:
    """Up to k of the distinct values, spread evenly on a log scale."""
    distinct = np.unique(values)
    if distinct.size <= k:
        return distinct
    logs = np.log(distinct) if distinct.min() > 0 else distinct
    picks = np.quantile(logs, np.linspace(0, 1, k))
    return np.unique(distinct[[int(np.argmin(np.abs(logs - q))) for q in picks]])


def _size_legend(fig, draws, colors, level, *, many: bool, isoflop: bool = False) -> None:
    if isoflop:
        style = [
            Line2D([], [], color="0.3", lw=1.5, label="fitted law (central estimate) over each budget's sizes"),
            Line2D(
                [], [], color="0.3", marker="D", ls="", ms=5, mec="black", label="the law's best size at that budget"
            ),
        ]
        if _banded(draws):
            style.append(Patch(facecolor="0.3", alpha=0.25, lw=0, label=_parameter_label(draws, level)))
    else:
        style = _style_handles(draws, level, forecast=f"forecast to {_FORECAST_TOKENS:g}x the tokens (dashed)")
    title = "compute budget C" if isoflop else "model size"
    if colors.discrete:
        name = (lambda v: f"C = {v:.2g}") if isoflop else (lambda v: f"N = {tables.si(v)}")
        entries = [Line2D([], [], color=colors(s), marker="o", ms=5, lw=1.5, label=name(s)) for s in colors.distinct]
        fig.add_artist(fig.legend(handles=entries, title=title, loc="outside right upper"))
    else:
        mappable = mpl.cm.ScalarMappable(norm=colors.norm, cmap=_SIZE_MAP)
        fig.colorbar(
            mappable, ax=fig.axes, label="compute budget C (FLOPs)" if isoflop else "model size N", location="right"
        )
    fig.legend(handles=style, loc="outside lower center", ncols=2)


def _fit_panel_one(ax, part, level, color, label) -> None:
    draws, data = part.draws, part.data
    law = draws.law
    name = law.inputs[0]
    x = data.x[name]
    ax.scatter(x, data.y, s=20, color=color, edgecolors="white", linewidths=0.4, zorder=3)
    inside, beyond = _segments(float(x.min()), float(x.max()), 10.0)
    grid = np.concatenate([inside, beyond])
    pred = tables.band(draws, {name: grid}, level)
    k = inside.size
    ax.plot(grid[:k], pred["y"][:k], color=color, lw=1.6, zorder=2)
    ax.plot(grid[k - 1 :], pred["y"][k - 1 :], color=color, lw=1.3, ls="--", zorder=2)
    if _banded(draws):
        ax.fill_between(grid, pred["lo"], pred["hi"], color=color, alpha=0.2, lw=0, zorder=1)
    _set_log(ax, x, data.y)


def _fit_values(ax, draws, data, level) -> None:
    """Laws of several inputs other than N and D: fitted values at the runs beside the observed ones."""
    scale, _ = tables.scale_of(draws.law, data.x)
    ax.scatter(scale, data.y, s=20, color="0.35", zorder=3, label="observed runs")
    pred = tables.band(draws, data.x, level)
    yerr = None
    if _banded(draws) and pred["lo"].notna().all():
        yerr = np.abs(np.stack([pred["y"] - pred["lo"], pred["hi"] - pred["y"]]))
    ax.errorbar(
        scale,
        pred["y"],
        yerr=yerr,
        fmt="x",
        color="C3",
        ms=5,
        lw=0.8,
        label="fitted value" + (f" with {_parameter_label(draws, level)}" if yerr is not None else ""),
    )
    _set_log(ax, scale, data.y)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_title(f"observed runs and fitted values of {_plain(draws.law.name)}")


# ---------------------------------------------------------------------------------------------- residuals


def plot_residuals(draws: Draws, data=None) -> Figure:
    """Residuals `log(observed / fitted)` at the central estimate, against scale and as a histogram.

    Args:
        draws: a `Fit`, `Bootstrap` or other draws.
        data: the runs, when the draws do not carry them.

    Returns:
        A matplotlib `Figure` with two axes.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> fig = sj.report.plot_residuals(fit)
    """
    data = tables.data_of(draws, data, needed_by="plot_residuals")
    with _style():
        return _draw_residuals(draws, data)


def _draw_residuals(draws, data) -> Figure:
    fig = _figure(WIDTH, 3.2)
    ax, hist = fig.subplots(1, 2, width_ratios=(2.3, 1))
    parts = tables.parts(draws, data)
    base = tables.base_law(draws.law)
    all_resid = []
    colors = _Colors(data.x["N"]) if tables.is_compute_law(base) and len(parts) == 1 else None
    for i, part in enumerate(parts):
        fitted = tables.band(tables.center_draws(part.draws), part.data.x, 0.95)["y"].to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            resid = np.log(part.data.y / fitted)
        all_resid.append(resid)
        scale = tables.scale_of(part.draws.law, part.data.x)[0]
        if colors is not None:
            c = [colors(v) for v in part.data.x["N"]]
        else:
            c = _group_color(i) if part.label is not None else "C0"
        ax.scatter(scale, resid, c=c, s=16, zorder=3, label=_plain(part.label) if part.label is not None else None)
    ax.axhline(0.0, color="0.3", lw=0.8)
    scale_all = tables.scale_of(draws.law, data.x)[0] if tables.is_compute_law(base) else None
    _set_log(ax, scale_all if scale_all is not None else np.concatenate([p.data.x[base.inputs[0]] for p in parts]))
    ax.set_xlabel(_plain(tables.axis_label(draws, data)))
    ax.set_ylabel(f"log(observed / fitted {_plain(tables.y_name(draws, data))})")
    ax.set_title("residuals at the central estimate" + (", coloured by model size" if colors is not None else ""))
    if len(parts) > 1:
        ax.legend(loc="best")
    resid = np.concatenate(all_resid)
    finite = resid[np.isfinite(resid)]
    hist.hist(finite, bins=max(5, min(30, finite.size // 3)), color="C0", alpha=0.8)
    hist.axvline(0.0, color="0.3", lw=0.8)
    hist.set_xlabel("log(observed / fitted)")
    hist.set_ylabel("runs")
    rms = float(np.sqrt(np.mean(finite**2))) if finite.size else float("nan")
    hist.set_title(f"root mean square {rms:.3g}")
    return fig
