"""Decisions from fitted laws, each written for one parameter set and vmapped over draws."""

from ._chain import chain_predict as chain_predict
from ._compute_optimal import chinchilla_compute_optimal as chinchilla_compute_optimal

__all__ = ["chain_predict", "chinchilla_compute_optimal"]
