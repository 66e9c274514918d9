"""The pair plot of the parameter draws (or of a point fit's Gauss-Newton regions), draws at a bound marked."""

from __future__ import annotations

import contextlib
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._draws import Draws
from . import _caveats as caveats
from . import _tables as tables
from ._plotting import (
    WIDTH,
    _figure,
    _how,
    _log_ticks,
    _pct,
    _plain,
    _style,
)

__all__ = ["plot_pairs"]

_MAX_PAIRS = 8  # parameters in a pair plot


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
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
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
