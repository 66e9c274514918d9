"""Bayesian fits of a law with NumPyro: priors, likelihoods and the posterior, as draws."""

import warnings as _warnings

with _warnings.catch_warnings():
    # NumPyro imports `tqdm.auto`, which warns on import in a Jupyter kernel without ipywidgets
    # ("IProgress not found"); scalejax draws its own progress bars (plain tqdm there), so that
    # warning would only be noise in the user's notebook.
    _warnings.filterwarnings("ignore", message="IProgress not found")
    import numpyro as _numpyro  # noqa: F401

from ._likelihoods import LIKELIHOODS as LIKELIHOODS
from ._posterior import Posterior as Posterior
from ._posterior import PosteriorWarning as PosteriorWarning
from ._posterior import posterior as posterior
from ._priors import NOISE_PARAMS as NOISE_PARAMS
from ._priors import default_prior as default_prior
from ._priors import prior_of as prior_of

__all__ = ["LIKELIHOODS", "NOISE_PARAMS", "Posterior", "PosteriorWarning", "default_prior", "posterior", "prior_of"]
