"""scalejax: fit neural scaling laws with JAX, with honest uncertainty."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import analysis as analysis
from . import bayes as bayes
from . import datasets as datasets
from . import functional as functional
from . import laws as laws
from . import report as report
from ._bootstrap import Bootstrap as Bootstrap
from ._bootstrap import bootstrap as bootstrap
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
from .analysis import compute_optimal as compute_optimal
from .bayes import Posterior as Posterior
from .bayes import PosteriorWarning as PosteriorWarning
from .bayes import posterior as posterior
from .report import write_report as write_report

try:
    __version__ = _version("scalejax")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = [
    "Bootstrap",
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
    "Param",
    "Posterior",
    "PosteriorWarning",
    "ScalejaxError",
    "analysis",
    "bayes",
    "bootstrap",
    "compute_optimal",
    "datasets",
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
