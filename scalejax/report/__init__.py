"""Figures of any draws and the self-contained HTML (or Markdown) report.

Each `plot_*` function returns a matplotlib `Figure` (built without pyplot,
so nothing leaks into global state) that displays itself inline in Jupyter;
`write_report` puts them all in one file, opening with every caveat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
    from ._caveats import bound_shares as bound_shares
    from ._document import write_report as write_report
    from ._figures import plot_backtest as plot_backtest
    from ._figures import plot_compute_optimal as plot_compute_optimal
    from ._figures import plot_diagnostics as plot_diagnostics
    from ._figures import plot_extrapolation as plot_extrapolation
    from ._figures import plot_fit as plot_fit
    from ._figures import plot_pairs as plot_pairs
    from ._figures import plot_residuals as plot_residuals

# Loaded on first use: `write_report` and the figures bring in matplotlib (about 0.5 s), which a
# command that only reads the caveats (`scalejax fit`) never needs.
_LAZY = {
    "bound_shares": ("_caveats", "bound_shares"),
    "write_report": ("_document", "write_report"),
    "plot_backtest": ("_figures", "plot_backtest"),
    "plot_compute_optimal": ("_figures", "plot_compute_optimal"),
    "plot_diagnostics": ("_figures", "plot_diagnostics"),
    "plot_extrapolation": ("_figures", "plot_extrapolation"),
    "plot_fit": ("_figures", "plot_fit"),
    "plot_pairs": ("_figures", "plot_pairs"),
    "plot_residuals": ("_figures", "plot_residuals"),
}
__getattr__, __dir__ = attach(__name__, _LAZY, globals())

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
