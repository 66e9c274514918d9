"""Matplotlib figures of any draws, each returned as a `Figure` (no pyplot state) that shows itself in a notebook.

Every function works on a `Fit` (a batch of one: delta-method intervals), a
`Bootstrap`, a posterior and plain `Draws`, joint laws included (one panel
or one colour per group). Every band says what it is: a parameter interval
(where the law's mean could be) or a predictive interval (where one run's
measured value could fall). Curves are drawn solid where there are runs and
dashed where they forecast.
"""

from __future__ import annotations

import contextlib
import io
import math

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .._draws import Draws
from .._errors import LawError
from . import _caveats as caveats
from . import _tables as tables

__all__ = [
    "ReportFigure",
    "plot_backtest",
    "plot_compute_optimal",
    "plot_diagnostics",
    "plot_extrapolation",
    "plot_fit",
    "plot_pairs",
    "plot_residuals",
]

# Large enough to read on screen and in print at a page's width (figures are 7 inches wide: an A4 text column).
_RC = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "legend.title_fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "savefig.dpi": 150,
    "figure.dpi": 100,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
WIDTH = 7.0
# Model sizes: viridis without its pale yellow end, which vanishes on white paper.
_SIZE_MAP = mpl.colors.ListedColormap(mpl.colormaps["viridis"](np.linspace(0.0, 0.82, 256)), name="viridis_print")
# Groups: the Okabe-Ito palette (readable by colour-blind readers), without its yellow.
GROUP_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
# Distinct sizes up to this get one colour and one legend entry each; beyond, a colour bar.
_MAX_DISCRETE = 12
_FORECAST_TOKENS = 10.0  # each size's dashed curve runs to this many times its longest run's tokens
_MAX_PAIRS = 8  # parameters in a pair plot


class ReportFigure(Figure):
    """A matplotlib `Figure` that displays itself inline in Jupyter without pyplot (as a PNG).

    The report builds figures without pyplot, so nothing leaks into global
    state; IPython shows a figure through its `_repr_png_`, which a plain
    `Figure` lacks outside pyplot's inline backend.
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        with _style():
            self.savefig(buf, format="png", dpi=110)
        return buf.getvalue()


@contextlib.contextmanager
def _style():
    with mpl.rc_context(_RC):
        yield


def _figure(width: float, height: float) -> ReportFigure:
    fig = ReportFigure(figsize=(width, height), layout="constrained")
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


def _how(draws) -> str:
    """Where a parameter interval comes from, in a few words."""
    kind = caveats.kind_of(draws)
    if draws.is_point:
        return "delta method of the point fit"
    if draws.n_draws < 2:
        return "none: a single draw"
    what = {"bootstrap": "bootstrap draws", "posterior": "posterior draws"}.get(kind, "draws")
    return f"over {draws.n_draws:,} {what}"


def _parameter_label(draws, level) -> str:
    return f"{_pct(level)} parameter interval ({_how(draws)})"


def _predictive_label(level, how: str = "predictive interval") -> str:
    return f"{_pct(level)} {how} of one run"


def _banded(draws) -> bool:
    return draws.n_draws >= 2 or draws.is_point


def _set_log(ax, x=None, y=None):
    """Log axes for positive values spanning more than a factor of 10 (plain numbers read better otherwise)."""
    for values, set_scale in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size and values.min() > 0 and values.max() > 10 * values.min():
            set_scale("log")


def _limit_y(ax, *arrays, log: bool = False):
    """Keep the observed runs and forecasts in view when curves or bands run far beyond them."""
    y = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    y = y[np.isfinite(y) & ((y > 0) if log else True)]
    if y.size == 0:
        return
    lo, hi = float(y.min()), float(y.max())
    if log:
        ax.set_ylim(lo / 1.15, hi * 1.15)
        return
    pad = 0.08 * (hi - lo) if hi > lo else 0.05 * abs(hi) + 1e-12
    ax.set_ylim(lo - pad, hi + pad)


class _Colors:
    """Colours of model sizes (discrete up to 12 sizes, else continuous) on a map readable on white."""

    def __init__(self, values):
        values = np.asarray(values, dtype=np.float64)
        self.distinct = np.unique(values)
        self.discrete = self.distinct.size <= _MAX_DISCRETE
        lo, hi = float(values.min()), float(values.max())
        self.norm = LogNorm(lo, hi) if lo > 0 and hi > lo else Normalize(lo, hi if hi > lo else lo + 1.0)

    def __call__(self, value):
        if self.discrete and self.distinct.size > 1:
            i = int(np.searchsorted(self.distinct, value))
            return _SIZE_MAP(i / (self.distinct.size - 1))
        if self.distinct.size == 1:
            return _SIZE_MAP(0.0)
        return _SIZE_MAP(float(self.norm(value)))


def _group_color(i: int):
    return GROUP_COLORS[i % len(GROUP_COLORS)]


def _style_handles(draws, level, *, forecast: str, predictive: str | None = None, color="0.3") -> list:
    """Legend entries explaining line styles and bands (not tied to one series' colour)."""
    handles = [
        Line2D([], [], color=color, lw=1.5, label="fitted law (central estimate) where there are runs"),
        Line2D([], [], color=color, lw=1.5, ls="--", label=forecast),
    ]
    if _banded(draws):
        handles.append(Patch(facecolor=color, alpha=0.25, lw=0, label=_parameter_label(draws, level)))
    if predictive:
        handles.append(Patch(facecolor=color, alpha=0.1, lw=0, label=predictive))
    return handles


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
            ax.plot(grid[best], pred["y"].iloc[best], marker="D", ms=5, color=color, mec="black", mew=0.6, zorder=4)
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
    sizes = colors.distinct if colors.discrete else tables_representative(n)
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


def tables_representative(values, k: int = 8) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------- pairs


def plot_pairs(draws: Draws, *, max_points: int = 2000) -> Figure:
    """Pair plot of the parameter draws: histograms on the diagonal, scatter below, the central estimate marked.

    Scale parameters (those estimated on a log scale, `lower=0`) use log axes
    when their draws span more than a factor of 3. Draws at a bound of their
    range are drawn in orange. A point fit shows the 95% region of each pair
    under its Gauss-Newton covariance instead (the delta method, mapped from
    the solver's space, so it respects the bounds). Joint laws with many
    parameters show the first group's.

    Args:
        draws: any draws.
        max_points: the most draws scattered (an even thinning beyond).

    Returns:
        A matplotlib `Figure` with one axis per parameter pair.

    Example:
        >>> fig = sj.report.plot_pairs(sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=200))
    """
    with _style():
        return _draw_pairs(draws, max_points, level=tables.level_of(draws, None))


def _pair_names(draws) -> tuple[list[int], str]:
    law = draws.law
    k = law.n_params
    if k <= _MAX_PAIRS:
        return list(range(k)), ""
    from .._joint import JointLaw

    if isinstance(law, JointLaw):
        idx = law.group_indices(law.groups[0])
        return idx, f"; group {law.groups[0]}'s parameters ({len(idx)} of {k})"
    return list(range(_MAX_PAIRS)), f"; the first {_MAX_PAIRS} of {k} parameters"


def _log_ticks(axis) -> None:
    """Readable ticks on a log axis spanning little: 1-2-5 steps written plainly (`200`, `5e-3`), no minor labels."""
    lo, hi = sorted(axis.get_view_interval())
    decades = np.log10(hi / lo) if lo > 0 else np.inf
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades < 1.5 else (1.0,), numticks=3))
    axis.set_major_formatter(FuncFormatter(lambda v, _: _short_number(v)))
    axis.set_minor_formatter(NullFormatter())


def _short_number(v: float) -> str:
    """`200`, `0.005`, `1e6`, `1e-11`: a tick label in few characters."""
    text = f"{v:.3g}"
    mantissa, _, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else text


def _log_axis(param, values) -> bool:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return bool(
        param.transform == "lower"
        and param.lower == 0
        and values.size > 1
        and values.min() > 0
        and values.max() > 3 * values.min()
    )


def _draw_pairs(draws, max_points, level=0.95, shares=None) -> Figure:
    idx, note = _pair_names(draws)
    law = draws.law
    params = [law.params[i] for i in idx]
    names = [p.name for p in params]
    k = len(idx)
    size = min(WIDTH, 1.35 * k + 1.3)
    fig = _figure(size, size)
    axes = np.asarray(fig.subplots(k, k, squeeze=False))
    center = np.array([draws.center[n] for n in names])
    if draws.n_draws >= 2:
        _pairs_of_draws(fig, axes, draws, idx, params, center, max_points, shares)
        title = f"{_how(draws).removeprefix('over ')} of {_plain(law.name)}{_plain(note)}"
    else:
        _pairs_of_point(axes, draws, idx, params, center, level)
        if draws.is_point and np.all(np.isfinite(draws.cov_u)):
            title = (
                f"point fit of {_plain(law.name)}: {_pct(level)} region of each pair from the Gauss-Newton "
                f"covariance (local){_plain(note)}"
            )
        else:
            title = f"a single fit of {_plain(law.name)} (no covariance: no spread to show){_plain(note)}"
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            ax.tick_params(labelsize=6.5)
            if i == k - 1:
                ax.set_xlabel(_plain(names[j]))
            else:
                ax.tick_params(labelbottom=False)
            if j == 0 and i > 0:
                ax.set_ylabel(_plain(names[i]))
            elif j > 0 or i == 0:
                ax.tick_params(labelleft=False)
    for ax in axes.ravel():
        if ax.axison:
            for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
                if scale == "log":
                    _log_ticks(axis)
    fig.suptitle(title, fontsize=9)
    return fig


def _pairs_of_draws(fig, axes, draws, idx, params, center, max_points, shares) -> None:
    values = draws.samples.to_numpy()[:, idx]
    at = np.zeros(values.shape[0], dtype=bool)
    if shares is None:
        with contextlib.suppress(Exception):  # the markers are a courtesy: a law that cannot be evaluated keeps none
            shares = caveats.bound_shares(draws)
    if shares is not None:
        at = np.asarray(shares.attrs["mask"]).any(axis=1)
    keep = np.all(np.isfinite(values), axis=1)
    values, at = values[keep], at[keep]
    if values.shape[0] > max_points:
        pick = np.linspace(0, values.shape[0] - 1, max_points).astype(int)
        values, at = values[pick], at[pick]
    k = len(idx)
    logs = [_log_axis(p, values[:, j]) for j, p in enumerate(params)]
    alpha = 0.35 if values.shape[0] > 300 else 0.7
    for i in range(k):
        for j in range(i + 1):
            ax = axes[i, j]
            if i == j:
                col = values[:, j]
                bins = np.geomspace(col.min(), col.max(), 30) if logs[j] else 30
                ax.hist(col, bins=bins, color="C0", alpha=0.8)
                if at.any():
                    ax.hist(col[at], bins=bins, color="C1", alpha=0.9)
                ax.axvline(center[j], color="C3", lw=1.2)
                ax.set_yticks([])
            else:
                ax.scatter(values[~at, j], values[~at, i], s=3, alpha=alpha, color="C0", lw=0)
                if at.any():
                    ax.scatter(values[at, j], values[at, i], s=4, alpha=0.8, color="C1", lw=0)
                ax.plot(center[j], center[i], "x", color="C3", ms=6, mew=1.5)
                if logs[i]:
                    ax.set_yscale("log")
            if logs[j]:
                ax.set_xscale("log")
    handles = [
        Line2D([], [], color="C0", marker="o", ls="", ms=4, label="draws"),
        Line2D([], [], color="C3", marker="x", ls="", ms=6, mew=1.5, label="central estimate"),
    ]
    if at.any():
        handles.insert(
            1, Line2D([], [], color="C1", marker="o", ls="", ms=4, label="draws with a parameter at a bound")
        )
    # In the empty upper triangle; a legend inside an axis would widen its column in the constrained layout.
    fig.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.98, 0.93), frameon=False)


def _pairs_of_point(axes, draws, idx, params, center, level) -> None:
    """Each pair's region under the point fit's covariance (in the solver's space, mapped to natural values)."""
    from statistics import NormalDist

    law = draws.law
    cov = draws.cov_u
    k = len(idx)
    usable = cov is not None and np.all(np.isfinite(cov))
    cu = np.asarray(draws.center_u)
    # The 2-D region holding `level` of a Gaussian: radius sqrt(chi2_2(level)) = sqrt(-2 log(1 - level)).
    radius = math.sqrt(-2.0 * math.log(1.0 - level))
    z = NormalDist().inv_cdf(0.5 + level / 2)
    theta = np.linspace(0, 2 * np.pi, 120)
    ends = {}
    for j, g in enumerate(idx):
        if usable:
            sd = math.sqrt(max(cov[g, g], 0.0))
            lo_u, hi_u = cu.copy(), cu.copy()
            lo_u[g] -= z * sd
            hi_u[g] += z * sd
            a, b = law.natural(lo_u)[params[j].name], law.natural(hi_u)[params[j].name]
            ends[j] = (float(min(a, b)), float(max(a, b)))
    logs = [_log_axis(p, [*ends.get(j, ()), center[j]]) for j, p in enumerate(params)]
    for i in range(k):
        for j in range(i + 1):
            ax = axes[i, j]
            if i == j:
                if j in ends:
                    ax.plot(ends[j], [0.5, 0.5], color="C0", lw=2.5, solid_capstyle="butt")
                ax.plot(center[j], 0.5, "x", color="C3", ms=6, mew=1.5)
                ax.set_ylim(0, 1)
                ax.set_yticks([])
            else:
                if usable:
                    gi, gj = idx[i], idx[j]
                    sub = cov[np.ix_([gj, gi], [gj, gi])]
                    w, v = np.linalg.eigh(sub)
                    circle = np.stack([np.cos(theta), np.sin(theta)])
                    pts = v @ (np.sqrt(np.clip(w, 0, None))[:, None] * circle) * radius
                    ring = np.repeat(cu[None, :], theta.size, axis=0)
                    ring[:, gj] += pts[0]
                    ring[:, gi] += pts[1]
                    natural = law.natural(ring)
                    ax.plot(natural[params[j].name], natural[params[i].name], color="C0", lw=1.2)
                ax.plot(center[j], center[i], "x", color="C3", ms=6, mew=1.5)
                if logs[i]:
                    ax.set_yscale("log")
            if logs[j]:
                ax.set_xscale("log")
    handles = [Line2D([], [], color="C3", marker="x", ls="", ms=6, mew=1.5, label="point fit")]
    if usable:
        handles.append(Line2D([], [], color="C0", lw=1.2, label=f"{_pct(level)} region (delta method)"))
    axes[0, -1].figure.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.98, 0.93), frameon=False)


# ---------------------------------------------------------------------------------------------- extrapolation


def plot_extrapolation(draws: Draws, targets=None, data=None, *, level: float | None = None) -> Figure:
    """Forecasts at the targets, each with its parameter and predictive intervals, the law's trend from the
    largest run to it, and its distance beyond the largest run.

    Args:
        draws: any draws.
        targets: the runs to forecast (a DataFrame, dict of arrays or list of
            dicts of the law's inputs; a joint law's `group` as labels);
            default 10x and 100x the largest run.
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
    table = tables.extrapolation_table(draws, targets, level, data)
    with _style():
        return _draw_extrapolation(draws, data, table, level)


def _target_x(draws, table) -> np.ndarray:
    law = tables.base_law(draws.law)
    if tables.is_compute_law(law):
        return table["C"].to_numpy(dtype=np.float64)
    return table[law.inputs[0]].to_numpy(dtype=np.float64)


def _draw_extrapolation(draws, data, table, level) -> Figure:
    fig = _figure(WIDTH, 4.4)
    ax = fig.add_subplot()
    parts = tables.parts(draws, data) if data is not None else []
    labels = {p.label: i for i, p in enumerate(parts)}
    grouped = "group" in table.columns and tables.base_law(draws.law) is not draws.law
    x_t = _target_x(draws, table)
    xs, ys = [x_t], [table["y"].to_numpy()]
    for i, part in enumerate(parts):
        scale = tables.scale_of(part.draws.law, part.data.x)[0]
        color = _group_color(i) if grouped else "0.6"
        ax.scatter(scale, part.data.y, s=12, color=color, alpha=0.6 if grouped else 1.0, zorder=2, lw=0)
        xs.append(scale)
        ys.append(part.data.y)
    if data is not None:
        top = float(np.max(tables.scale_of(draws.law, data.x)[0]))
        ax.axvline(top, color="0.35", ls=":", lw=1.0, zorder=1)
        ax.annotate(
            "largest run",
            (top, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(-3, -3),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=7.5,
            color="0.3",
        )
    names = table.attrs.get("names", [str(i) for i in table.index])
    predictive = table["pred_lo"].notna().all()
    banded = table["lo"].notna().all()
    for r, (xt, name) in enumerate(zip(x_t, names, strict=True)):
        row = table.iloc[r]
        group = row["group"] if grouped else None
        color = _group_color(labels.get(group, 0)) if grouped else "C3"
        if data is not None:
            part = parts[labels[group]] if grouped else parts[0]
            path = _trend(part, row, level)
            if path is not None:
                px, pred = path
                ax.plot(px, pred["y"], color=color, ls="--", lw=1.2, zorder=3)
                if banded:
                    ax.fill_between(px, pred["lo"], pred["hi"], color=color, alpha=0.15, lw=0, zorder=1)
                ys.append(pred["y"].to_numpy())
        if predictive:
            ax.errorbar(
                xt,
                row["y"],
                yerr=[[row["y"] - row["pred_lo"]], [row["pred_hi"] - row["y"]]],
                fmt="none",
                ecolor=color,
                elinewidth=1.0,
                capsize=5,
                zorder=4,
            )
            ys += [np.array([row["pred_lo"], row["pred_hi"]])]
        if banded:
            ax.errorbar(
                xt, row["y"], yerr=[[row["y"] - row["lo"]], [row["hi"] - row["y"]]], fmt="none", ecolor=color,
                elinewidth=4.0, alpha=0.6, zorder=5,
            )  # fmt: skip
        ax.plot(xt, row["y"], "o", color=color, ms=5.5, zorder=6, mec="white", mew=0.6)
        d = row["distance"]
        where = (
            f"\n{d:+.1f} decades beyond"
            if np.isfinite(d) and d > 0
            else ("\nwithin the runs" if np.isfinite(d) else "")
        )
        top = row["pred_hi"] if predictive else (row["hi"] if banded else row["y"])
        ax.annotate(
            _plain(name) + where,
            (xt, top),
            xytext=(3, 4),
            textcoords="offset points",
            ha="left",
            va="bottom",
            fontsize=7.5,
            color=color,
            zorder=7,
        )
        ys.append(np.array([top]))
    x_all = np.concatenate(xs)
    _set_log(ax, x_all, np.concatenate(ys))
    if ax.get_xscale() == "log":
        lo, hi = float(np.nanmin(x_all[x_all > 0])), float(np.nanmax(x_all))
        ax.set_xlim(lo / 2, hi * 30)  # room for the labels right of the farthest target
    _limit_y(ax, *ys, log=ax.get_yscale() == "log")
    lo, hi = ax.get_ylim()  # room above for the targets' two-line labels
    ax.set_ylim(lo, hi * (hi / lo) ** 0.12 if ax.get_yscale() == "log" else hi + 0.12 * (hi - lo))
    ax.set_xlabel(_plain(tables.axis_label(draws, data)))
    ax.set_ylabel(_plain(tables.y_name(draws, data)))
    handles = []
    if data is not None:
        handles.append(Line2D([], [], color="0.6", marker="o", ls="", ms=4, label="observed runs"))
        handles.append(
            Line2D([], [], color="0.3", ls="--", lw=1.2, label="the law from the largest run to each target")
        )
    handles.append(Line2D([], [], color="0.3", marker="o", ls="", ms=5, label="forecast (central estimate)"))
    if banded:
        handles.append(Line2D([], [], color="0.3", lw=4, alpha=0.6, label=_parameter_label(draws, level)))
    if predictive:
        handles.append(
            Line2D([], [], color="0.3", lw=1.0, marker="_", ms=8, label=_predictive_label(level, _predictive(table)))
        )
    if grouped:
        handles += [Patch(color=_group_color(i), label=_plain(p.label)) for i, p in enumerate(parts)]
    fig.legend(handles=handles, loc="outside lower center", ncols=2)
    ax.set_title(f"forecasts at {len(table)} target run{'s' if len(table) != 1 else ''}, labelled by their inputs")
    return fig


def _predictive(table) -> str:
    how = str(table.attrs.get("predictive", "predictive interval"))
    return how if how.endswith("predictive interval") else "predictive interval"


def _trend(part, row, level):
    """The law along a geometric path from the part's largest run to the target: `(x, band)`, or None."""
    law = part.draws.law
    scale = tables.scale_of(law, part.data.x)[0]
    i = int(np.argmax(scale))
    x = {}
    for name in law.inputs:
        a, b = float(part.data.x[name][i]), float(row[name])
        if not (a > 0 and b > 0):
            return None
        x[name] = np.geomspace(a, b, 40)
    pred = tables.band(part.draws, x, level)
    return tables.scale_of(law, x)[0], pred


# ---------------------------------------------------------------------------------------------- frontier


def plot_compute_optimal(draws: Draws, compute=None, data=None, *, level: float | None = None) -> Figure:
    """Compute-optimal model size, tokens, tokens per parameter and loss against the compute budget.

    `scalejax.compute_optimal` of the draws (any law of N and D; one colour per
    group of a joint law), with the parameter interval as a band and, for the
    loss, the predictive interval of one run. The frontier is drawn solid
    within the runs' compute range, dashed beyond it up to
    `FRONTIER_REACH` decades (100x) past the largest run, and grey past that.

    Args:
        draws: draws of a law of N and D.
        compute: FLOP budgets; default from the smallest run's compute to 100x the largest's.
        data: the runs, when the draws do not carry them (optional; they mark the observed range).
        level: band level.

    Returns:
        A matplotlib `Figure` with four axes.

    Example:
        >>> fig = sj.report.plot_compute_optimal(boot)
    """
    data = tables.data_of(draws, data)
    level = tables.level_of(draws, level)
    compute = _default_budgets(draws, data) if compute is None else np.atleast_1d(np.asarray(compute, dtype=float))
    table = tables.compute_optimal_table(draws, compute, level, data)
    if table is None:
        raise LawError(
            f"the compute-optimal frontier needs a law of model size N and tokens D; law {draws.law.name!r} is not "
            "of that form"
        )
    with _style():
        return _draw_compute_optimal(draws, data, table, level)


def _default_budgets(draws, data) -> np.ndarray:
    if data is None or not tables.is_compute_law(draws.law):
        return np.geomspace(1e18, 1e25, 60)
    scale = tables.scale_of(draws.law, data.x)[0]
    return np.geomspace(scale.min(), scale.max() * 10**tables.FRONTIER_REACH, 60)


def _draw_compute_optimal(draws, data, table, level) -> Figure:
    fig = _figure(WIDTH, 5.6)
    axes = fig.subplots(2, 2).ravel()
    quantities = (
        ("N", "optimal model size N* (parameters)"),
        ("D", "optimal tokens D*"),
        ("tokens_per_param", "tokens per parameter D*/N*"),
        ("loss", f"{_plain(tables.y_name(draws, data))} at the optimum"),
    )
    grouped = "group" in table.columns
    labels = list(pd_unique(table["group"])) if grouped else [None]
    scale = tables.scale_of(draws.law, data.x)[0] if data is not None else None
    banded = table["N_lo"].notna().all() and _banded(draws)
    predictive = table["loss_pred_lo"].notna().all()
    for ax, (name, label) in zip(axes, quantities, strict=True):
        values = []
        for g, group in enumerate(labels):
            rows = table[table["group"] == group] if grouped else table
            color = _group_color(g) if grouped else "C0"
            c = rows["compute"].to_numpy()
            d = rows["distance"].to_numpy()
            v = rows[name].to_numpy()
            values.append(v)
            inside = ~(d > 0) if np.isfinite(d).any() else np.ones_like(c, dtype=bool)
            near = (d >= 0) & (d <= tables.FRONTIER_REACH + 1e-9)
            far = d >= tables.FRONTIER_REACH - 1e-9
            if name == "loss" and predictive:
                ax.fill_between(
                    c, rows["loss_pred_lo"], rows["loss_pred_hi"], color=color, alpha=0.1, lw=0, where=~(d > tables.FRONTIER_REACH + 1e-9)
                )  # fmt: skip
            if banded:
                ax.fill_between(
                    c, rows[f"{name}_lo"], rows[f"{name}_hi"], color=color, alpha=0.25, lw=0, where=~(d > tables.FRONTIER_REACH + 1e-9)
                )  # fmt: skip
                if far.sum() > 1:
                    ax.fill_between(c, rows[f"{name}_lo"], rows[f"{name}_hi"], color="0.6", alpha=0.15, lw=0, where=far)
            ax.plot(c[inside], v[inside], color=color, lw=1.7)
            if near.sum() > 1:
                ax.plot(c[near], v[near], color=color, lw=1.5, ls="--")
            if far.sum() > 1:
                ax.plot(c[far], v[far], color="0.55", lw=1.2, ls=":")
        if scale is not None:
            ax.axvspan(float(scale.min()), float(scale.max()), color="0.5", alpha=0.08, lw=0, zorder=0)
            if name == "loss":
                ax.scatter(scale, data.y, s=6, color="0.45", zorder=2, lw=0)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(numticks=6))
        if name != "loss":
            _set_log(ax, None, np.concatenate([*values, *(table[f"{name}_{e}"].to_numpy() for e in ("lo", "hi"))]))
        else:
            _set_log(ax, None, np.concatenate(values))
            band_values = [*values, table["loss_lo"].to_numpy(), table["loss_hi"].to_numpy()]
            if scale is not None:
                band_values.append(data.y)
            _limit_y(ax, *band_values, log=ax.get_yscale() == "log")
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel(label)
    handles = [
        Line2D([], [], color="0.3", lw=1.7, label="within the runs' compute range (shaded)"),
        Line2D([], [], color="0.3", lw=1.5, ls="--", label=f"forecast, up to {10**tables.FRONTIER_REACH:g}x the largest run"),
        Line2D([], [], color="0.55", lw=1.2, ls=":", label=f"beyond {10**tables.FRONTIER_REACH:g}x: not a forecast"),
    ]  # fmt: skip
    if banded:
        handles.append(Patch(facecolor="0.3", alpha=0.25, lw=0, label=_parameter_label(draws, level)))
    if predictive:
        handles.append(
            Patch(facecolor="0.3", alpha=0.1, lw=0, label=_predictive_label(level, _predictive(table)) + " (loss)")
        )
    if scale is not None:
        handles.append(Line2D([], [], color="0.45", marker="o", ls="", ms=3, label="runs (any split of compute)"))
    if grouped:
        handles += [Patch(color=_group_color(g), label=_plain(group)) for g, group in enumerate(labels)]
    fig.legend(handles=handles, loc="outside lower center", ncols=2)
    fig.suptitle(f"compute-optimal allocation under C = {tables.FLOPS_PER_PARAM_TOKEN:g} N D", fontsize=10)
    return fig


def pd_unique(values):
    seen = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


# ---------------------------------------------------------------------------------------------- backtest


def plot_backtest(draws: Draws, data=None, *, level: float | None = None, holdout: float = 0.2) -> Figure:
    """Refit on the smaller runs, forecast the largest `holdout` share, and compare with what was observed.

    Args:
        draws: a `Fit` (refitted as a point fit) or a `Bootstrap` (refitted
            as a bootstrap with the same scheme); other draws refit as they were made.
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
    t = result.table
    fig = _figure(WIDTH, 3.5)
    ax, err = fig.subplots(1, 2, width_ratios=(1, 1.25))
    banded = t["lo"].notna().all()
    predictive = t["pred_lo"].notna().all()
    law = tables.base_law(draws.law)
    # The error panel's axis: model size for laws of N and D (held-out runs often share one budget), else scale.
    by_size = tables.is_compute_law(law)
    x_err = t["N"].to_numpy(dtype=np.float64) if by_size else t["scale"].to_numpy(dtype=np.float64)
    observed = t["observed"].to_numpy()
    for axis, x, y, lo, hi, pred_lo, pred_hi in (
        (ax, observed, t["y"], t["lo"], t["hi"], t["pred_lo"], t["pred_hi"]),
        (
            err,
            x_err,
            100 * t["rel_error"],
            100 * (t["lo"] / observed - 1),
            100 * (t["hi"] / observed - 1),
            100 * (t["pred_lo"] / observed - 1),
            100 * (t["pred_hi"] / observed - 1),
        ),
    ):
        if predictive:
            axis.errorbar(x, y, yerr=np.abs(np.stack([y - pred_lo, pred_hi - y])), fmt="none", ecolor="C3", elinewidth=0.9, capsize=2.5, zorder=4)  # fmt: skip
        if banded:
            axis.errorbar(x, y, yerr=np.abs(np.stack([y - lo, hi - y])), fmt="none", ecolor="C3", elinewidth=3.5, alpha=0.45, zorder=4)  # fmt: skip
        axis.plot(x, y, "o", color="C3", ms=3.5, zorder=5)
    lo_, hi_ = float(np.nanmin(observed)), float(np.nanmax(observed))
    pad = 0.05 * (hi_ - lo_ if hi_ > lo_ else abs(hi_) + 1e-12)
    ax.plot([lo_ - pad, hi_ + pad], [lo_ - pad, hi_ + pad], color="0.3", lw=0.9, ls="--", zorder=2)
    y_name = _plain(tables.y_name(draws, data))
    ax.set_xlabel(f"observed {y_name}")
    ax.set_ylabel(f"forecast {y_name}")
    ax.set_title(f"{result.n_holdout} held-out runs: forecast against observed", loc="left")
    err.axhline(0.0, color="0.3", lw=0.8)
    _set_log(err, x_err)
    err.set_xlabel("model size N of the held-out run" if by_size else _plain(tables.axis_label(draws, data)))
    err.set_ylabel("forecast error (% of observed)")
    summary = result.summary()
    err.set_title(f"mean |error| {100 * summary['mean_abs_rel_error']:.2f}%", loc="left")
    handles = [
        Line2D([], [], color="C3", marker="o", ls="", ms=4, label="forecast (central estimate)"),
        Line2D([], [], color="0.3", ls="--", lw=0.9, label="forecast = observed"),
    ]
    if banded:
        handles.append(Line2D([], [], color="C3", lw=3.5, alpha=0.45, label=_parameter_label(draws, level)))
    if predictive:
        handles.append(Line2D([], [], color="C3", lw=0.9, marker="_", ms=7, label=_predictive_label(level)))
    fig.legend(handles=handles, loc="outside lower center", ncols=2)
    fig.suptitle(
        f"backtest: {_plain(tables.refit_kind(result.method))} refitted on the {result.n_train} smaller runs",
        fontsize=10,
    )
    return fig


# ---------------------------------------------------------------------------------------------- diagnostics


def plot_diagnostics(draws: Draws) -> Figure:
    """How the estimate's starts or resamples ended, the share of draws at a bound of each bounded parameter,
    and, for draws that carry them (a posterior), R-hat and effective sample size of each parameter as dot plots
    against their thresholds (1.01; 100 per chain).

    Args:
        draws: any draws.

    Returns:
        A matplotlib `Figure`.

    Example:
        >>> fig = sj.report.plot_diagnostics(boot)
    """
    with _style():
        return _draw_diagnostics(draws)


def _draw_diagnostics(draws, shares=None) -> Figure:
    counts, what = tables.outcomes(draws)
    stats = draws.stats
    rhat = stats.get("rhat") or stats.get("r_hat")
    ess = stats.get("ess")
    if shares is None and draws.n_draws > 1:
        try:
            shares = caveats.bound_shares(draws)
        except Exception:  # a law that cannot be evaluated on its data: no shares to show
            shares = None
    show_bounds = shares is not None and draws.n_draws > 1 and (shares["n_at"] > 0).any()
    panels = ["outcomes"] + (["bounds"] if show_bounds else [])
    panels += ["rhat"] if isinstance(rhat, dict) and rhat else []
    panels += ["ess"] if isinstance(ess, dict) and ess else []
    cols = min(len(panels), 2)
    rows = math.ceil(len(panels) / cols)
    height = 2.6 * rows + 0.2 if len(panels) > 1 else 0.45 * len(counts) + 1.1
    fig = _figure(WIDTH if cols > 1 else 5.2, height)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    for ax, panel in zip(axes, panels, strict=False):
        if panel == "outcomes":
            names = list(counts)
            y = np.arange(len(names))[::-1]
            colors = ["C2" if i == 0 else "C3" for i in range(len(names))]
            bars = ax.barh(y, [counts[k] for k in names], color=colors, height=0.6)
            ax.bar_label(bars, labels=[f"{counts[k]:,}" for k in names], fontsize=7.5, padding=2)
            ax.set_yticks(y, [_plain(n) for n in names])
            ax.set_xlabel(what)
            ax.set_title(f"how the {sum(counts.values()):,} {what} ended")
            ax.set_xlim(0, max(1, max(counts.values())) * 1.2)
            ax.grid(axis="y", visible=False)
        elif panel == "bounds":
            names = list(shares.index)
            y = np.arange(len(names))[::-1]
            ax.scatter(100 * shares["share"].to_numpy(), y, color="C1", zorder=3)
            ax.set_yticks(y, [_plain(n) for n in names])
            ax.set_xlim(-2, 102)
            ax.set_xlabel("% of draws at a bound of the parameter's range")
            ax.set_title("draws at a bound (a limit, not an estimate)")
        else:
            values = rhat if panel == "rhat" else ess
            names = list(values)
            v = np.array([float(values[k]) for k in names])
            y = np.arange(len(names))[::-1]
            threshold = 1.01 if panel == "rhat" else 100.0 * float(stats.get("chains", 1) or 1)
            bad = (v > threshold) if panel == "rhat" else (v < threshold)
            ax.scatter(v[~bad], y[~bad], color="C0", zorder=3, label="passes")
            ax.scatter(v[bad], y[bad], color="C3", zorder=3, label="fails")
            ax.axvline(threshold, color="C3", ls="--", lw=1)
            ax.set_yticks(y, [_plain(n) for n in names])
            if panel == "rhat":
                finite = v[np.isfinite(v)]
                top = max(1.02, float(finite.max()) + 0.005) if finite.size else 1.02
                ax.set_xlim(min(0.995, float(finite.min()) - 0.002) if finite.size else 0.995, top)
                ax.set_xlabel("R-hat (split, rank-normalised); threshold 1.01")
                ax.set_title("R-hat of each parameter")
            else:
                ax.set_xscale("log")
                ax.set_xlabel(f"effective sample size; threshold {threshold:g} (100 per chain)")
                ax.set_title("effective sample size of each parameter")
    return fig
