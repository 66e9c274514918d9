"""scalejax: fit neural scaling laws with JAX, with honest uncertainty."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import analysis as analysis
from . import bayes as bayes
from . import datasets as datasets
from . import laws as laws
from . import report as report
from ._errors import DataError as DataError
from ._errors import FitError as FitError
from ._errors import LawError as LawError
from ._errors import ScalejaxError as ScalejaxError
from ._io import load as load
from ._io import save as save
from .analysis import compute_optimal as compute_optimal
from .bayes import Posterior as Posterior
from .bayes import PosteriorWarning as PosteriorWarning
from .bayes import posterior as posterior
from .bootstrap import Bootstrap as Bootstrap
from .bootstrap import bootstrap as bootstrap
from .data import Data as Data
from .data import DataWarning as DataWarning
from .draws import Draws as Draws
from .fit import Fit as Fit
from .fit import FitWarning as FitWarning
from .fit import fit as fit
from .joint import JointLaw as JointLaw
from .joint import joint as joint
from .law import Law as Law
from .law import Param as Param
from .law import law as law
from .law import log_sum_exp as log_sum_exp
from .many import fit_many as fit_many
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
