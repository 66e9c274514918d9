"""Built-in laws of the scaling-law literature, looked up by name."""

from __future__ import annotations

from ._annealing import annealing_areas as annealing_areas
from ._annealing import lr_annealing as lr_annealing
from ._bnsl import bnsl as bnsl
from ._bnsl import bnsl2 as bnsl2
from ._bnsl import bnsl_law as bnsl_law
from ._chinchilla import chinchilla as chinchilla
from ._chinchilla import kaplan as kaplan
from ._downstream import downstream_exp as downstream_exp
from ._downstream import exp_power as exp_power
from ._downstream import isik_bleu as isik_bleu
from ._downstream import sigmoid_floor as sigmoid_floor
from ._downstream import sigmoid_floor_law as sigmoid_floor_law
from ._filtering import data_filtering as data_filtering
from ._filtering import data_filtering_law as data_filtering_law
from ._fp_quant import fp_quant as fp_quant
from ._hyper import optimal_batch as optimal_batch
from ._hyper import optimal_lr as optimal_lr
from ._kaplan import critical_batch as critical_batch
from ._kaplan import kaplan_steps as kaplan_steps
from ._loglinear import loglinear as loglinear
from ._lowbit import lowbit_ptq as lowbit_ptq
from ._m4 import m4 as m4
from ._m4 import m4_fit as m4_fit
from ._multilingual import multilingual_nmt as multilingual_nmt
from ._multilingual import multilingual_nmt_law as multilingual_nmt_law
from ._nmt import nmt as nmt
from ._nmt import nmt_law as nmt_law
from ._overtrain import data_constrained as data_constrained
from ._overtrain import data_constrained_full as data_constrained_full
from ._overtrain import data_constrained_law as data_constrained_law
from ._overtrain import overtrain as overtrain
from ._power import power as power
from ._power import powerlaw as powerlaw
from ._precision import precision as precision
from ._precision import ptq_degradation as ptq_degradation
from ._registry import available as available
from ._registry import get as get
from ._registry import register as register
from ._saturating import densing as densing
from ._saturating import densing_capability as densing_capability
from ._saturating import densing_effective_params as densing_effective_params
from ._saturating import henighan as henighan

__all__ = [
    "annealing_areas",
    "available",
    "bnsl",
    "bnsl2",
    "bnsl_law",
    "chinchilla",
    "critical_batch",
    "data_constrained",
    "data_constrained_full",
    "data_constrained_law",
    "data_filtering",
    "data_filtering_law",
    "densing",
    "densing_capability",
    "densing_effective_params",
    "downstream_exp",
    "exp_power",
    "fp_quant",
    "get",
    "henighan",
    "isik_bleu",
    "kaplan",
    "kaplan_steps",
    "loglinear",
    "lowbit_ptq",
    "lr_annealing",
    "m4",
    "m4_fit",
    "multilingual_nmt",
    "multilingual_nmt_law",
    "nmt",
    "nmt_law",
    "optimal_batch",
    "optimal_lr",
    "overtrain",
    "power",
    "powerlaw",
    "precision",
    "ptq_degradation",
    "register",
    "sigmoid_floor",
    "sigmoid_floor_law",
]

for _law in (
    chinchilla,
    kaplan,
    power,
    powerlaw,
    overtrain,
    data_constrained,
    downstream_exp,
    sigmoid_floor,
    isik_bleu,
    exp_power,
    bnsl,
    bnsl2,
    lr_annealing,
    precision,
    ptq_degradation,
    optimal_lr,
    optimal_batch,
    densing,
    henighan,
    kaplan_steps,
    critical_batch,
    m4,
    data_constrained_full,
    densing_capability,
    data_filtering,
    nmt,
    multilingual_nmt,
    fp_quant,
    lowbit_ptq,
    loglinear,
):
    register(_law)
