"""scalejax: fit neural scaling laws with JAX, with honest uncertainty."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import analysis as analysis
from . import datasets as datasets
from . import laws as laws
from ._errors import DataError as DataError
from ._errors import FitError as FitError
from ._errors import LawError as LawError
from ._errors import ScalejaxError as ScalejaxError
from .bootstrap import Bootstrap as Bootstrap
from .bootstrap import bootstrap as bootstrap
from .data import Data as Data
from .data import DataWarning as DataWarning
from .draws import Draws as Draws
from .fit import Fit as Fit
from .fit import fit as fit
from .joint import JointLaw as JointLaw
from .joint import joint as joint
from .law import Law as Law
from .law import Param as Param
from .law import law as law
from .law import log_sum_exp as log_sum_exp
from .many import fit_many as fit_many

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
    "JointLaw",
    "Law",
    "LawError",
    "Param",
    "ScalejaxError",
    "analysis",
    "bootstrap",
    "datasets",
    "fit",
    "fit_many",
    "joint",
    "law",
    "laws",
    "log_sum_exp",
]
