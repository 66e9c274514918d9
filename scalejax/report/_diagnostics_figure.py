"""The diagnostics figure: how the starts or resamples ended, draws at a bound, R-hat and ESS against thresholds."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from .._draws import Draws
from . import _caveats as caveats
from . import _tables as tables
from ._plotting import (
    WIDTH,
    _figure,
    _plain,
    _style,
)

__all__ = ["plot_diagnostics"]


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
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> boot = sj.bootstrap("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", n=200)
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
    cols = len(panels) if len(panels) <= 3 else 2
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
