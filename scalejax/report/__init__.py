"""Figures of any draws and the self-contained HTML (or Markdown) report.

Each `plot_*` function returns a matplotlib `Figure` (built without pyplot,
so nothing leaks into global state) that displays itself inline in Jupyter;
`write_report` puts them all in one file, opening with every caveat.
"""

from ._caveats import bound_shares as bound_shares
from ._document import write_report as write_report
from ._figures import plot_backtest as plot_backtest
from ._figures import plot_compute_optimal as plot_compute_optimal
from ._figures import plot_diagnostics as plot_diagnostics
from ._figures import plot_extrapolation as plot_extrapolation
from ._figures import plot_fit as plot_fit
from ._figures import plot_pairs as plot_pairs
from ._figures import plot_residuals as plot_residuals

__all__ = [
    "bound_shares",
    "plot_backtest",
    "plot_compute_optimal",
    "plot_diagnostics",
    "plot_extrapolation",
    "plot_fit",
    "plot_pairs",
    "plot_residuals",
    "write_report",
]
