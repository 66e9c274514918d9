"""scalejax: fit neural scaling laws with JAX, with honest uncertainty.

data -> law -> objective -> solver -> Draws -> analyses -> report: a law
(`Law`, `sj.laws`) is fitted to validated data (`Data`) by minimising an
objective (`Loss`) with batched solvers (`SolverConfig`); every estimate
(`Fit`, `Bootstrap`, `Posterior`) is a `Draws` value, which every analysis
(`sj.analysis`) and the report (`sj.report`, `write_report`) read.
Every name loads on first use (`import scalejax` itself imports neither JAX
nor pandas): a command that only parses its arguments, or a notebook that
imports scalejax before it reads its data, does not wait for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import attach

if TYPE_CHECKING:  # what static analysers and editors see; at run time the names load lazily
    from . import analysis as analysis
    from . import bayes as bayes
    from . import datasets as datasets
    from . import functional as functional
    from . import laws as laws
    from . import report as report
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
    from .bayes import Posterior as Posterior
    from .bayes import PosteriorWarning as PosteriorWarning
    from .bayes import posterior as posterior
    from .report import write_report as write_report
    from .solvers import SolverConfig as SolverConfig


# Each public name -> (module, attribute): imported on first use. JAX, pandas, equinox and optax
# together take about twice as long to import as JAX alone; NumPyro and matplotlib as long again.
_LAZY = {
    "analysis": ("analysis", None),
    "datasets": ("datasets", None),
    "functional": ("functional", None),
    "laws": ("laws", None),
    "Bootstrap": ("_bootstrap", "Bootstrap"),
    "bootstrap": ("_bootstrap", "bootstrap"),
    "clear_compile_cache": ("_compile_cache", "clear_compile_cache"),
    "enable_compile_cache": ("_compile_cache", "enable_compile_cache"),
    "ConstrainedLaw": ("_constrain", "ConstrainedLaw"),
    "constrain": ("_constrain", "constrain"),
    "expand": ("_constrain", "expand"),
    "Data": ("_data", "Data"),
    "DataWarning": ("_data", "DataWarning"),
    "Draws": ("_draws", "Draws"),
    "DataError": ("_errors", "DataError"),
    "FitError": ("_errors", "FitError"),
    "LawError": ("_errors", "LawError"),
    "ScalejaxError": ("_errors", "ScalejaxError"),
    "Fit": ("_fit", "Fit"),
    "FitWarning": ("_fit", "FitWarning"),
    "fit": ("_fit", "fit"),
    "load": ("_io", "load"),
    "save": ("_io", "save"),
    "JointLaw": ("_joint", "JointLaw"),
    "joint": ("_joint", "joint"),
    "Law": ("_law", "Law"),
    "Param": ("_law", "Param"),
    "law": ("_law", "law"),
    "log_sum_exp": ("_law", "log_sum_exp"),
    "fit_many": ("_many", "fit_many"),
    "Loss": ("_objectives", "Loss"),
    "compute_optimal": ("analysis", "compute_optimal"),
    "SolverConfig": ("solvers", "SolverConfig"),
    "bayes": ("bayes", None),
    "report": ("report", None),
    "Posterior": ("bayes", "Posterior"),
    "PosteriorWarning": ("bayes", "PosteriorWarning"),
    "posterior": ("bayes", "posterior"),
    "write_report": ("report", "write_report"),
}


_lazy_getattr, __dir__ = attach(__name__, _LAZY, globals())


def __getattr__(name: str):
    if name == "__version__":  # read from the installed metadata on first use (importlib.metadata: ~40 ms)
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("scalejax")
        except PackageNotFoundError:  # running from a source tree that was not installed
            value = "0.0.0"
        globals()[name] = value
        return value
    return _lazy_getattr(name)


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
