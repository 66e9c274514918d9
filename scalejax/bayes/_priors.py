"""Priors of a posterior: each parameter's declared prior or a weakly-informative default, on the natural scale.

Laws may declare priors as NumPyro distributions or as specs `(name, *args)`
(so that laws load without NumPyro); this module turns either into a
distribution, and gives the log density of an unconstrained value with the
log-Jacobian of the parameter's transform.
"""

from __future__ import annotations

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from .._errors import LawError
from .._law import Param

__all__ = [
    "NOISE_PARAMS",
    "POOLED_TAU_PRIOR",
    "STANDARD_NORMAL",
    "default_prior",
    "log_prior_u",
    "prior_of",
    "to_distribution",
]

# The noise parameters of the likelihoods, with their default priors.
NOISE_PARAMS = {
    # sigma: scale of the log-y residuals; published scaling-law fits have 0.005-0.05.
    "sigma": Param("sigma", lower=0, doc="scale of the residuals of log y", prior=("HalfNormal", 0.2)),
    # nu: Student-t degrees of freedom, Gamma(2, 0.1) as recommended by Juarez and Steel (2010).
    "nu": Param("nu", lower=0, doc="Student-t degrees of freedom", prior=("Gamma", 2.0, 0.1)),
    # kappa: Beta-binomial concentration (large = binomial); median 20. Bounded at 1e8: beyond it the
    # beta-binomial is the binomial to within the float64 precision of its log-pmf, whose gammaln
    # differences lose all precision further out (chains then wander to kappa = 1e30).
    "kappa": Param("kappa", lower=0, upper=1e8, doc="Beta-binomial concentration", prior=("LogNormal", 3.0, 1.5)),
}
# Prior of the spread of a partially pooled parameter, in its unconstrained units, and of the
# standardised group offsets (non-centred parametrisation).
POOLED_TAU_PRIOR = ("HalfNormal", 0.5)
STANDARD_NORMAL = ("Normal", 0.0, 1.0)


@functools.lru_cache(maxsize=512)
def _from_spec(spec: tuple) -> dist.Distribution:
    name, *args = spec
    maker = getattr(dist, str(name), None)
    if not (isinstance(maker, type) and issubclass(maker, dist.Distribution)):
        raise LawError(f"prior spec {spec!r}: {name!r} is not a numpyro distribution")
    try:
        return maker(*args)
    except (TypeError, ValueError) as err:
        raise LawError(f"prior spec {spec!r} cannot be built: {err}") from None


def to_distribution(prior) -> dist.Distribution:
    """A prior given as a distribution or a spec `(name, *args)` as a scalar NumPyro distribution."""
    out = _from_spec(prior) if isinstance(prior, tuple) else prior
    if not isinstance(out, dist.Distribution) or out.event_shape or out.batch_shape:
        raise LawError(f"prior {prior!r} must be a scalar numpyro distribution (e.g. dist.Normal(0.3, 0.1))")
    return out


@functools.lru_cache(maxsize=256)
def default_prior(param: Param) -> dist.Distribution:
    """The weakly-informative prior used for a parameter that declares none (natural scale).

    Parameters with both bounds get a uniform prior between them. Otherwise the
    prior is Normal in the parameter's unconstrained space (`Param.inverse`),
    centred on the middle of its start grid with a standard deviation equal to
    the grid's width there, and at least 2: for a `lower=0` parameter that is a
    log-normal whose middle 95% spans a factor of at least e^8.

    Args:
        param: the parameter.

    Returns:
        A NumPyro distribution over the parameter's natural values.

    Example:
        >>> import scalejax as sj
        >>> prior = sj.bayes.default_prior(sj.Param("A", lower=0, grid=(1.0, 100.0)))
        >>> float(prior.base_dist.scale)
        4.605170185988092
    """
    if param.transform == "interval":
        return dist.Uniform(param.lower, param.upper)
    u = np.asarray(param.inverse(np.asarray(param.start_values())), dtype=np.float64)
    mid, width = float((u.min() + u.max()) / 2), float(u.max() - u.min())
    base = dist.Normal(mid, max(width, 2.0))
    match param.transform:
        case "identity":
            return base
        case "lower":
            transforms = [dist.transforms.ExpTransform(), dist.transforms.AffineTransform(param.lower, 1.0)]
        case _:
            transforms = [dist.transforms.ExpTransform(), dist.transforms.AffineTransform(param.upper, -1.0)]
    return dist.TransformedDistribution(base, transforms)


def prior_of(param: Param) -> dist.Distribution:
    """The parameter's declared prior (a distribution or a spec), or `default_prior(param)`."""
    if param.prior is None:
        return default_prior(param)
    try:
        return to_distribution(param.prior)
    except LawError:
        raise LawError(
            f"parameter {param.name!r} declares prior {param.prior!r}; it must be a scalar numpyro distribution"
        ) from None


def _log_jacobian(param: Param, u):
    """log |d forward / du| of the parameter's transform."""
    match param.transform:
        case "identity":
            return jnp.zeros_like(u)
        case "lower" | "upper":
            return u
        case _:
            return math.log(param.upper - param.lower) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)


def log_prior_u(param: Param, prior: dist.Distribution, u):
    """Log density of the unconstrained value `u` under a natural-scale prior (with the Jacobian)."""
    v = param.forward(u)
    with warnings.catch_warnings():  # values outside a narrower support are masked to -inf just below
        warnings.filterwarnings("ignore", "Out-of-support values", UserWarning)
        lp = prior.log_prob(v)
    ok = jnp.asarray(prior.support(v)) & ~jnp.isnan(lp)
    return jnp.where(ok, lp, -jnp.inf) + _log_jacobian(param, u)
