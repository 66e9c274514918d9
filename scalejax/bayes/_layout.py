"""Where each quantity lives in the sampler's flat unconstrained vector `theta`, and the log density there.

The law sampled is the user's law or, for groups, the joint law of
`scalejax.joint` (one copy of each parameter per group, shared ones once):
one grouping model for fits and posteriors. A partially pooled parameter's
group copies are `mu + exp(log_tau) * z_g` (non-centred) with a hierarchical
prior on `mu`, `tau` and the standardised offsets `z`. The noise parameters
follow (with the slopes of a log-linear scale when the data chose one). A
`Layout` is an `equinox.Module` compared by value, so the compiled mode
finder and sampler are reused by every posterior of the same layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._law import Law, Param, _Opaque
from .._noise import SLOPE_NAMES
from ._likelihoods import LIKELIHOOD_NOISE, SCALE_SLOPE_PARAMS, pointwise_log_likelihood
from ._priors import NOISE_PARAMS, POOLED_TAU_PRIOR, STANDARD_NORMAL, log_prior_u, prior_of, to_distribution

__all__ = ["Layout", "make_layout"]


class Layout(eqx.Module):
    """The parametrisation of a posterior (all static, compared by value).

    Attributes:
        law: the law sampled (a `JointLaw` for groups).
        likelihood: the likelihood's name.
        pooled_of: per law parameter, the base parameter it is a pooled copy of, or "".
        law_index: per law parameter, its entry of `theta` (for a pooled copy, the mean's).
        tau_index, z_index: per law parameter, the entries of the pooled spread and offset (-1 if not pooled).
        noise_index: `(name, entry)` of each noise parameter.
        noise_covariates: the covariates the log-y scale is log-linear in (`NoiseModel.covariates`;
            empty for a constant scale), whose slopes are among the noise parameters.
        terms: `(param, prior, entries)` whose log prior densities sum to the log prior of `theta`.
        names: the name of each entry of `theta`.
        floor: the guessing rate of count likelihoods.
    """

    law: Law = eqx.field(static=True)
    likelihood: str = eqx.field(static=True)
    pooled_of: tuple[str, ...] = eqx.field(static=True)
    law_index: tuple[int, ...] = eqx.field(static=True)
    tau_index: tuple[int, ...] = eqx.field(static=True)
    z_index: tuple[int, ...] = eqx.field(static=True)
    noise_index: tuple[tuple[str, int], ...] = eqx.field(static=True)
    noise_covariates: tuple[str, ...] = eqx.field(static=True)
    terms: tuple = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)
    floor: float = eqx.field(static=True)

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def noise_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.noise_index)

    def law_u(self, theta):
        """The law's unconstrained parameters `(p,)` at `theta`."""
        u = theta[np.asarray(self.law_index)]
        tau = np.asarray(self.tau_index)
        if np.any(tau >= 0):
            pooled = tau >= 0
            spread = jnp.exp(theta[np.where(pooled, tau, 0)]) * theta[np.where(pooled, np.asarray(self.z_index), 0)]
            u = u + jnp.where(pooled, spread, 0.0)
        return u

    def noise(self, theta) -> dict:
        """The noise parameters' natural values at `theta`."""
        return {name: _noise_param(name).forward(theta[..., i]) for name, i in self.noise_index}

    def log_prior(self, theta):
        total = 0.0
        for param, prior, index in self.terms:
            total = total + jnp.sum(log_prior_u(param, prior.value, theta[np.asarray(index)]))
        return total

    def pointwise(self, theta, data):
        """Pointwise log-likelihood `(n,)` (unweighted) at `theta`."""
        params = self.law.unpack(self.law_u(theta))
        return pointwise_log_likelihood(
            self.likelihood, self.law, params, self.noise(theta), data, self.floor, self.noise_covariates
        )

    def log_likelihood(self, theta, data):
        w = data["weights"]
        total = jnp.sum(jnp.where(w > 0, w * self.pointwise(theta, data), 0.0))
        return jnp.where(jnp.isnan(total), -jnp.inf, total)

    def log_density(self, theta, data):
        lp = self.log_prior(theta)
        lp = lp + jnp.where(jnp.isfinite(lp), self.log_likelihood(theta, data), 0.0)
        return jnp.where(jnp.isnan(lp), -jnp.inf, lp)

    def report(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Every reported quantity on the natural scale, for `theta` of shape `(..., size)`: law parameters,
        pooled means `<name>_mu` and spreads `tau_<name>`, and the noise parameters.
        """
        import jax

        law_u = np.asarray(jax.vmap(self.law_u)(theta.reshape(-1, self.size))).reshape(*theta.shape[:-1], -1)
        out = {k: np.asarray(v, dtype=np.float64) for k, v in self.law.natural(law_u).items()}
        base_params = {p.name: p for p in _base(self.law).params}
        for j, base in enumerate(self.pooled_of):
            if base and f"{base}_mu" not in out:
                mu = theta[..., self.law_index[j]]
                out[f"{base}_mu"] = np.asarray(base_params[base].forward(mu, xp=np), dtype=np.float64)
                out[f"tau_{base}"] = np.exp(np.asarray(theta[..., self.tau_index[j]], dtype=np.float64))
        for name, i in self.noise_index:
            out[name] = np.asarray(_noise_param(name).forward(theta[..., i], xp=np), dtype=np.float64)
        return out


def _base(law: Law) -> Law:
    return getattr(law, "base", None) or law


def _noise_param(name: str) -> Param:
    return NOISE_PARAMS[name] if name in NOISE_PARAMS else SCALE_SLOPE_PARAMS[name]


def make_layout(
    law: Law,
    likelihood: str,
    pooled: Sequence[str],
    priors: Mapping,
    floor: float,
    noise_covariates: Sequence[str] = (),
) -> Layout:
    """The layout of a posterior of `law` (a joint law when there are groups); `pooled` names base parameters.

    `noise_covariates` (log-y likelihoods only) make the scale log-linear in them, adding one slope each.
    """
    base = _base(law)
    base_params = {p.name: p for p in base.params}
    origin = getattr(law, "origin", None) or law.param_names
    names: list[str] = []
    terms = []

    def add(label: str) -> int:
        names.append(label)
        return len(names) - 1

    def term(param: Param, prior, index) -> None:
        terms.append((param, _Opaque(to_distribution(prior)), tuple(int(i) for i in index)))

    law_index, tau_index, z_index, pooled_of = [], [], [], []
    pooled_entries: dict[str, tuple[int, int]] = {}
    z_entries: dict[str, list[int]] = {}
    for param, source in zip(law.params, origin, strict=True):
        if source in pooled:
            if source not in pooled_entries:
                mu = add(f"{source}_mu")
                term(base_params[source], priors.get(source, prior_of(base_params[source])), [mu])
                tau = add(f"log_tau_{source}")
                term(Param(f"tau_{source}", lower=0), priors.get(f"tau_{source}", POOLED_TAU_PRIOR), [tau])
                pooled_entries[source] = (mu, tau)
                z_entries[source] = []
            mu, tau = pooled_entries[source]
            z = add(f"z_{param.name}")
            z_entries[source].append(z)
            law_index.append(mu)
            tau_index.append(tau)
            z_index.append(z)
            pooled_of.append(source)
        else:
            i = add(param.name)
            term(param, priors.get(source, prior_of(param)), [i])
            law_index.append(i)
            tau_index.append(-1)
            z_index.append(-1)
            pooled_of.append("")
    for source, entries in z_entries.items():
        term(Param(f"z_{source}"), STANDARD_NORMAL, entries)
    noise_index = []
    covariates = tuple(noise_covariates) if "sigma" in LIKELIHOOD_NOISE[likelihood] else ()
    slopes = tuple(SLOPE_NAMES[c] for c in covariates)
    for name in (*LIKELIHOOD_NOISE[likelihood], *slopes):
        param = _noise_param(name)
        i = add(f"u_{name}")
        noise_index.append((name, i))
        term(param, priors.get(name, prior_of(param)), [i])
    return Layout(
        law=law,
        likelihood=likelihood,
        pooled_of=tuple(pooled_of),
        law_index=tuple(law_index),
        tau_index=tuple(tau_index),
        z_index=tuple(z_index),
        noise_index=tuple(noise_index),
        noise_covariates=covariates,
        terms=tuple(terms),
        names=tuple(names),
        floor=float(floor),
    )
