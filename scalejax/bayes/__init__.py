"""Bayesian fits of a law with NumPyro: priors, likelihoods and the posterior, as draws."""

from ._likelihoods import LIKELIHOODS as LIKELIHOODS
from ._posterior import Posterior as Posterior
from ._posterior import PosteriorWarning as PosteriorWarning
from ._posterior import posterior as posterior
from ._priors import NOISE_PARAMS as NOISE_PARAMS
from ._priors import default_prior as default_prior
from ._priors import prior_of as prior_of

__all__ = ["LIKELIHOODS", "NOISE_PARAMS", "Posterior", "PosteriorWarning", "default_prior", "posterior", "prior_of"]
