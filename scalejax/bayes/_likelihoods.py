"""Likelihoods of a posterior: Gaussian and Student-t on log y, binomial and beta-binomial for counts.

Each gives the pointwise log-likelihood of the data under one parameter set
(in JAX, for the sampler and for LOO), and simulates new observations from
draws (in NumPy, for predictive intervals). The log-y likelihoods' scale may
vary from point to point: `log sigma_i = log sigma + sum_j slope_j z_ij`, with
`z` the centred covariates of a `NoiseModel` (log10 compute, log10 tokens per
parameter) when the data chose a log-linear scale.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from .._errors import DataError, ScalejaxError
from .._law import Param
from .._noise import SLOPE_NAMES

__all__ = [
    "COUNTS",
    "LIKELIHOODS",
    "LIKELIHOOD_NOISE",
    "SCALE_SLOPE_PARAMS",
    "beta_binomial_log_pmf",
    "point_scale",
    "pointwise_log_likelihood",
    "simulate",
]

LIKELIHOODS = ("student_t", "gaussian", "binomial", "beta_binomial")
COUNTS = ("binomial", "beta_binomial")
# The noise parameters each likelihood fits (see `NOISE_PARAMS`).
LIKELIHOOD_NOISE = {"gaussian": ("sigma",), "student_t": ("sigma", "nu"), "binomial": (), "beta_binomial": ("kappa",)}
# Slopes of log sigma per decade of each noise covariate, for a log-linear scale: weakly informative
# (a slope of 1 multiplies the scale by e per decade; published sweeps show |slope| < 1).
SCALE_SLOPE_PARAMS = {
    name: Param(name, doc=f"change of log sigma per decade of {covariate}", prior=("Normal", 0.0, 1.0))
    for covariate, name in SLOPE_NAMES.items()
}


def point_scale(noise: dict, z, covariates) -> object:
    """The scale at each point: `sigma * exp(sum_j slope_j z_j)` (`z` `(n, k)` centred covariates), or `sigma`."""
    if not covariates:
        return noise["sigma"]
    log = sum(noise[SLOPE_NAMES[c]] * z[:, j] for j, c in enumerate(covariates))
    return noise["sigma"] * jnp.exp(log)


def beta_binomial_log_pmf(k, n, a, b):
    """log P(k | n, a, b) of the beta-binomial, through gammaln only.

    Same value as `numpyro.distributions.BetaBinomial.log_prob`, whose `betaln` makes the
    Hessian several times slower to compile.
    """
    g = jax.scipy.special.gammaln
    return g(n + 1.0) - g(k + 1.0) - g(n - k + 1.0) + g(k + a) + g(n - k + b) - g(n + a + b) + g(a + b) - g(a) - g(b)


def pointwise_log_likelihood(likelihood: str, law, params, noise: dict, data: dict, floor: float, covariates=()):
    """Log-likelihood of each point `(n,)` under natural parameters `params` and noise values `noise`.

    `data` holds `x` (the law's inputs), `y` (log y for the log-scale
    likelihoods, success counts for the count ones), `trials` (counts) and,
    with noise `covariates`, `noise_z` (`(n, k)` centred covariates of the scale).
    Points where the law gives no valid prediction get -inf.
    """
    if likelihood in ("gaussian", "student_t"):
        r = law.log_predict(params, data["x"]) - data["y"]
        sigma = point_scale(noise, data.get("noise_z"), covariates)
        if likelihood == "gaussian":
            return dist.Normal(0.0, sigma).log_prob(r)
        return dist.StudentT(noise["nu"], 0.0, sigma).log_prob(r)
    q = law.predict(params, data["x"])
    valid = (q >= 0) & (q <= 1)
    prob = jnp.clip(floor + (1 - floor) * jnp.where(valid, q, 0.5), 1e-300, 1.0)
    if likelihood == "binomial":
        ll = dist.Binomial(data["trials"], probs=prob).log_prob(data["y"])
    else:
        kappa = noise["kappa"]
        prob = jnp.clip(prob, 1e-12, 1 - 1e-12)
        ll = beta_binomial_log_pmf(data["y"], data["trials"], prob * kappa, (1 - prob) * kappa)
    return jnp.where(valid, ll, -jnp.inf)


def simulate(likelihood: str, mean: np.ndarray, noise: dict, rng: np.random.Generator, trials=None) -> np.ndarray:
    """New observations `(S, m)` around each draw's prediction `mean` `(S, m)` under the likelihood.

    Log-scale likelihoods multiply by `exp(sigma * eps)` (Gaussian or
    Student-t `eps`; `noise["sigma"]` per draw `(S,)`, or per draw and point
    `(S, m)` for a scale varying with the points); count likelihoods draw the
    fraction solved out of `trials` (with the guessing floor already in `mean`).
    """
    s, m = mean.shape
    if likelihood in ("gaussian", "student_t"):
        sigma = np.asarray(noise["sigma"])
        sigma = sigma[:, None] if sigma.ndim == 1 else sigma
        if likelihood == "gaussian":
            eps = rng.standard_normal((s, m))
        else:
            eps = rng.standard_t(np.asarray(noise["nu"])[:, None], size=(s, m))
        return mean * np.exp(sigma * eps)
    if trials is None:
        raise ScalejaxError(
            f"predictive draws of a {likelihood} posterior need trials= (questions per evaluation), "
            "or noise=False for the success probability"
        )
    n = np.broadcast_to(np.asarray(trials, dtype=np.int64), (m,))
    if np.any(n < 1):
        raise DataError("trials must be positive integers")
    prob = mean
    if likelihood == "beta_binomial":
        kappa = np.asarray(noise["kappa"])[:, None]
        prob = rng.beta(np.maximum(prob * kappa, 1e-12), np.maximum((1 - prob) * kappa, 1e-12))
    return rng.binomial(n[None, :], np.clip(prob, 0.0, 1.0)) / n[None, :]
