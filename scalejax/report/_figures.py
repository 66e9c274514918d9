"""Matplotlib figures of any draws, each returned as a `Figure` (no pyplot state) that shows itself in a notebook.

Every function works on a `Fit` (a batch of one: delta-method intervals), a
`Bootstrap`, a posterior and plain `Draws`, joint laws included (one panel
or one colour per group). Every band says what it is: a parameter interval
(where the law's mean could be) or a predictive interval (where one run's
measured value could fall). Curves are drawn solid where there are runs and
dashed where they forecast. This module gathers the figures of the modules
below for the report and `scalejax.report`.
"""

from ._diagnostics_figure import _draw_diagnostics as _draw_diagnostics
from ._diagnostics_figure import plot_diagnostics as plot_diagnostics
from ._fit_figures import _draw_fit as _draw_fit
from ._fit_figures import _draw_residuals as _draw_residuals
from ._fit_figures import plot_fit as plot_fit
from ._fit_figures import plot_residuals as plot_residuals
from ._forecast_figures import _default_budgets as _default_budgets
from ._forecast_figures import _draw_backtest as _draw_backtest
from ._forecast_figures import _draw_compute_optimal as _draw_compute_optimal
from ._forecast_figures import _draw_extrapolation as _draw_extrapolation
from ._forecast_figures import plot_backtest as plot_backtest
from ._forecast_figures import plot_compute_optimal as plot_compute_optimal
from ._forecast_figures import plot_extrapolation as plot_extrapolation
from ._pairs_figure import _draw_pairs as _draw_pairs
from ._pairs_figure import plot_pairs as plot_pairs
from ._plotting import ReportFigure as ReportFigure
from ._plotting import _figure as _figure
from ._plotting import _plain as _plain
from ._plotting import _style as _style

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
