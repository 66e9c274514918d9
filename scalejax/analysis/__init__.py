"""Decisions from fitted laws, each written for one parameter set and vmapped over draws."""

from ._backtest import backtest as backtest
from ._backtest import compare_laws as compare_laws
from ._backtest import information_criteria as information_criteria
from ._calibrate import Calibration as Calibration
from ._calibrate import calibrate as calibrate
from ._calibrate import interval_score as interval_score
from ._chain import chain_predict as chain_predict
from ._compare import LOOWarning as LOOWarning
from ._compare import compare_loo as compare_loo
from ._compute_optimal import chinchilla_compute_optimal as chinchilla_compute_optimal
from ._compute_optimal import compute_optimal as compute_optimal
from ._compute_optimal import inference_optimal as inference_optimal
from ._compute_optimal import inference_optimal_split as inference_optimal_split
from ._compute_optimal import optimal_split as optimal_split
from ._compute_optimal import tokens_for_loss as tokens_for_loss
from ._compute_optimal import tokens_for_loss_split as tokens_for_loss_split
from ._design import design as design
from ._extrapolate import extrapolate as extrapolate
from ._influence import influence as influence
from ._intervals import interval_table as interval_table
from ._intervals import noise_scale as noise_scale
from ._isoflop import IsoFLOP as IsoFLOP
from ._isoflop import isoflop as isoflop
from ._multiplier import compute_multiplier as compute_multiplier

__all__ = [
    "Calibration",
    "IsoFLOP",
    "LOOWarning",
    "backtest",
    "calibrate",
    "chain_predict",
    "chinchilla_compute_optimal",
    "compare_laws",
    "compare_loo",
    "compute_multiplier",
    "compute_optimal",
    "design",
    "extrapolate",
    "inference_optimal",
    "inference_optimal_split",
    "influence",
    "information_criteria",
    "interval_score",
    "interval_table",
    "isoflop",
    "noise_scale",
    "optimal_split",
    "tokens_for_loss",
    "tokens_for_loss_split",
]
