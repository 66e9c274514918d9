"""scalejax: fit neural scaling laws with JAX, with honest uncertainty.

data -> law -> objective -> solver -> Draws -> analyses -> report: a law
(`Law`, `sj.laws`) is fitted to validated data (`Data`) by minimising an
objective (`Loss`) with batched solvers (`SolverConfig`); every estimate
(`Fit`, `Bootstrap`, `Posterior`) is a `Draws` value, which every analysis
(`sj.analysis`) and the report (`sj.report`, `write_report`) read.
NumPyro and matplotlib load only when a posterior or a figure needs them.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import analysis as analysis
from . import datasets as datasets
from . import functional as functional
from . import laws as laws
from ._bootstrap import Bootstrap as Bootstrap
from ._bootstrap import bootstrap as bootstrap
from ._compile_cache import clear_compile_cache as clear_compile_cache
from ._compile_cache import enable_compile_cache as enable_compile_cache
from ._constrain import ConstrainedLaw as ConstrainedLaw
from ._constrain import constrain as constrain
from ._constrain import expand as expand
from ._data import Data as Data
from ._data import DataWarning as DataWarning
from ._draws import Draws as Draws
from ._errors import DataError as DataError
from ._errors import FitError as FitError
from ._errors import LawError as LawError
from ._errors import ScalejaxError as ScalejaxError
from ._fit import Fit as Fit
from ._fit import FitWarning as FitWarning
from ._fit import fit as fit
from ._io import load as load
from ._io import save as save
from ._joint import JointLaw as JointLaw
from ._joint import joint as joint
from ._law import Law as Law
from ._law import Param as Param
from ._law import law as law
from ._law import log_sum_exp as log_sum_exp
from ._many import fit_many as fit_many
from ._objectives import Loss as Loss
from .analysis import compute_optimal as compute_optimal
from .solvers import SolverConfig as SolverConfig

try:
    __version__ = _version("scalejax")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

# Loaded on first use: NumPyro (posteriors) and matplotlib (figures, reports) take about as long
# to import as JAX itself, and most calls need neither.
_LAZY = {
    "bayes": ("bayes", None),
    "report": ("report", None),
    "Posterior": ("bayes", "Posterior"),
    "PosteriorWarning": ("bayes", "PosteriorWarning"),
    "posterior": ("bayes", "posterior"),
    "write_report": ("report", "write_report"),
}


def __getattr__(name: str):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = import_module(f".{module}", __name__)
        value = value if attribute is None else getattr(value, attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scalejax' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])


__all__ = [
    "Bootstrap",
    "ConstrainedLaw",
    "Data",
    "DataError",
    "DataWarning",
    "Draws",
    "Fit",
    "FitError",
    "FitWarning",
    "JointLaw",
    "Law",
    "LawError",
    "Loss",
    "Param",
    "Posterior",
    "PosteriorWarning",
    "ScalejaxError",
    "SolverConfig",
    "analysis",
    "bayes",
    "bootstrap",
    "clear_compile_cache",
    "compute_optimal",
    "constrain",
    "datasets",
    "enable_compile_cache",
    "expand",
    "fit",
    "fit_many",
    "functional",
    "joint",
    "law",
    "laws",
    "load",
    "log_sum_exp",
    "posterior",
    "report",
    "save",
    "write_report",
]
