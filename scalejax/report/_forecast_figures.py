"""The forecast figures: forecasts at targets with the law's trend to each, the compute-optimal frontier (solid
within the runs, dashed beyond, grey past its reach) and the holdout backtest."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import LogLocator

from .._draws import Draws
from .._errors import LawError
from . import _tables as tables
from ._plotting import (
    WIDTH,
    _banded,
    _figure,
    _group_color,
    _limit_y,
    _parameter_label,
    _plain,
    _predictive_label,
    _set_log,
    _style,
)

__all__ = ["plot_backtest", "plot_compute_optimal", "plot_extrapolation"]


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
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> boot = sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=200)
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
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> boot = sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=200)
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
    labels = list(dict.fromkeys(table["group"])) if grouped else [None]
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
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
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
