"""Decisions from fitted laws, each written for one parameter set and vmapped over draws."""

from ._compute_optimal import chinchilla_compute_optimal as chinchilla_compute_optimal

__all__ = ["chinchilla_compute_optimal"]
