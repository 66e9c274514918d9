"""What every report figure shares: the print style, a `Figure` that shows itself in a notebook, colours readable
on white, labels that name each band (parameter or predictive interval), and log-axis helpers."""

from __future__ import annotations

import contextlib
import io

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from . import _caveats as caveats

__all__ = ["GROUP_COLORS", "WIDTH", "ReportFigure"]

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
