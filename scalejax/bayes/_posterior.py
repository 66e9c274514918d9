"""posterior(): Bayesian fits of a law with NumPyro's NUTS (or a Laplace approximation), as draws.

The sampler works on one flat unconstrained vector: the law's parameters
through their own transforms (`Param.forward`, with the log-Jacobian added to
the prior), then the noise parameters (`sigma`, `nu`, `kappa`) through theirs.
Groups share, separate or partially pool each law parameter. Chains start
from the Laplace approximation at the posterior mode, which is found by
Newton's method from the Huber point fit; NUTS samples the posterior whitened
by that approximation, so warmup is short.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer.hmc import hmc

from .._data import Data
from .._draws import Draws, _tails
from .._errors import DataError, FitError, LawError, ScalejaxError, describe_rows
from .._fit import Fit, fit, make_data
from .._law import Law, Param
from .._objectives import make_loss
from .._progress import Progress
from ..laws import get as get_law

__all__ = [
    "LIKELIHOODS",
    "NOISE_PARAMS",
    "Posterior",
    "PosteriorWarning",
    "default_prior",
    "posterior",
    "prior_of",
]

LIKELIHOODS = ("student_t", "gaussian", "binomial", "beta_binomial")
METHODS = ("nuts", "laplace")
CHAIN_METHODS = ("vectorized", "sequential")

# The noise parameters of each likelihood, with their default priors.
NOISE_PARAMS = {
    # sigma: scale of the log-y residuals; published scaling-law fits have 0.005-0.05.
    "sigma": Param("sigma", lower=0, doc="scale of the residuals of log y", prior=dist.HalfNormal(0.2)),
    # nu: Student-t degrees of freedom, Gamma(2, 0.1) as recommended by Juarez and Steel (2010).
    "nu": Param("nu", lower=0, doc="Student-t degrees of freedom", prior=dist.Gamma(2.0, 0.1)),
    # kappa: Beta-binomial concentration (large = binomial); median 20. Bounded at 1e8: beyond it the
    # beta-binomial is the binomial to within the float64 precision of its log-pmf, whose gammaln
    # differences lose all precision further out (chains then wander to kappa = 1e30).
    "kappa": Param("kappa", lower=0, upper=1e8, doc="Beta-binomial concentration", prior=dist.LogNormal(3.0, 1.5)),
}
_LIKELIHOOD_NOISE = {"gaussian": ("sigma",), "student_t": ("sigma", "nu"), "binomial": (), "beta_binomial": ("kappa",)}
# Prior of the spread of a partially pooled parameter, in its unconstrained units, and of the
# standardised group offsets (non-centred parametrisation). Module constants, so that compiled
# samplers are reused across calls (priors are part of the cache key, by identity).
POOLED_TAU_PRIOR = dist.HalfNormal(0.5)
_STANDARD_NORMAL = dist.Normal(0.0, 1.0)


class PosteriorWarning(UserWarning):
    """The sampler's diagnostics are poor: R-hat above 1.01, too few effective draws, or divergences."""


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
    """The parameter's declared prior, or `default_prior(param)`."""
    if param.prior is None:
        return default_prior(param)
    if not isinstance(param.prior, dist.Distribution) or param.prior.event_shape or param.prior.batch_shape:
        raise LawError(
            f"parameter {param.name!r} declares prior {param.prior!r}; it must be a scalar numpyro distribution"
        )
    return param.prior


def _log_jacobian(param: Param, u):
    """log |d forward / du| of the parameter's transform."""
    match param.transform:
        case "identity":
            return jnp.zeros_like(u)
        case "lower" | "upper":
            return u
        case _:
            return math.log(param.upper - param.lower) + jax.nn.log_sigmoid(u) + jax.nn.log_sigmoid(-u)


def _log_prior_u(param: Param, prior: dist.Distribution, u):
    """Log density of the unconstrained value `u` under a natural-scale prior (with the Jacobian)."""
    v = param.forward(u)
    with warnings.catch_warnings():  # values outside a narrower support are masked to -inf just below
        warnings.filterwarnings("ignore", "Out-of-support values", UserWarning)
        lp = prior.log_prob(v)
    ok = jnp.asarray(prior.support(v)) & ~jnp.isnan(lp)
    return jnp.where(ok, lp, -jnp.inf) + _log_jacobian(param, u)


def _beta_binomial_log_pmf(k, n, a, b):
    """log P(k | n, a, b) of the beta-binomial, through gammaln only.

    Same value as `numpyro.distributions.BetaBinomial.log_prob`, whose `betaln` makes the
    Hessian several times slower to compile.
    """
    g = jax.scipy.special.gammaln
    return g(n + 1.0) - g(k + 1.0) - g(n - k + 1.0) + g(k + a) + g(n - k + b) - g(n + a + b) + g(a + b) - g(a) - g(b)


@dataclasses.dataclass(frozen=True, eq=False)
class _Layout:
    """Where each quantity lives in the flat unconstrained vector `theta`.

    `law_index[g, j]` is the entry of law parameter j for group g (the pooled
    mean for pooled parameters); pooled parameters add `exp(theta[tau_index])
    * theta[z_index]`. `terms` lists `(param, prior, indices)` whose log prior
    densities sum to the log prior of theta.
    """

    law: Law
    likelihood: str
    labels: tuple
    modes: tuple[str, ...]  # per law parameter: "shared", "group" or "pooled"
    law_index: np.ndarray
    tau_index: np.ndarray  # (G, p); -1 where not pooled
    z_index: np.ndarray
    noise_index: dict[str, int]
    terms: tuple
    names: tuple[str, ...]  # of the theta entries
    floor: float

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def grouped(self) -> bool:
        return len(self.labels) > 1 or any(m != "shared" for m in self.modes)

    def law_u(self, theta):
        """`(G, p)` unconstrained law parameters per group."""
        u = theta[self.law_index]
        if np.any(self.tau_index >= 0):
            pooled = self.tau_index >= 0
            spread = jnp.exp(theta[np.where(pooled, self.tau_index, 0)]) * theta[np.where(pooled, self.z_index, 0)]
            u = u + jnp.where(pooled, spread, 0.0)
        return u

    def log_prior(self, theta):
        total = 0.0
        for param, prior, index in self.terms:
            total = total + jnp.sum(_log_prior_u(param, prior, theta[np.asarray(index)]))
        return total

    def noise(self, theta, name: str):
        """A noise parameter's natural value."""
        return NOISE_PARAMS[name].forward(theta[..., self.noise_index[name]])

    def log_likelihood(self, theta, data):
        u = self.law_u(theta)
        u = u[0] if len(self.labels) == 1 else u[data["codes"]]
        p = self.law.unpack(u)
        w = data["weights"]
        if self.likelihood in ("gaussian", "student_t"):
            r = self.law.log_predict(p, data["x"]) - data["y"]
            sigma = self.noise(theta, "sigma")
            if self.likelihood == "gaussian":
                ll = dist.Normal(0.0, sigma).log_prob(r)
            else:
                ll = dist.StudentT(self.noise(theta, "nu"), 0.0, sigma).log_prob(r)
        else:
            q = self.law.predict(p, data["x"])
            valid = (q >= 0) & (q <= 1)
            prob = jnp.clip(self.floor + (1 - self.floor) * jnp.where(valid, q, 0.5), 1e-300, 1.0)
            if self.likelihood == "binomial":
                ll = dist.Binomial(data["trials"], probs=prob).log_prob(data["y"])
            else:
                kappa = self.noise(theta, "kappa")
                prob = jnp.clip(prob, 1e-12, 1 - 1e-12)
                ll = _beta_binomial_log_pmf(data["y"], data["trials"], prob * kappa, (1 - prob) * kappa)
            ll = jnp.where(valid, ll, -jnp.inf)
        total = jnp.sum(jnp.where(w > 0, w * ll, 0.0))
        return jnp.where(jnp.isnan(total), -jnp.inf, total)

    def log_density(self, theta, data):
        lp = self.log_prior(theta)
        lp = lp + jnp.where(jnp.isfinite(lp), self.log_likelihood(theta, data), 0.0)
        return jnp.where(jnp.isnan(lp), -jnp.inf, lp)


def _make_layout(law: Law, likelihood: str, labels, shared, pooled, priors: Mapping, floor: float) -> _Layout:
    g = len(labels)
    names: list[str] = []
    terms = []
    p = law.n_params
    law_index = np.zeros((g, p), dtype=np.int64)
    tau_index = np.full((g, p), -1, dtype=np.int64)
    z_index = np.full((g, p), -1, dtype=np.int64)
    modes = []

    def add(label: str, count: int = 1) -> list[int]:
        start = len(names)
        names.extend([label] if count == 1 else [f"{label}[{lab}]" for lab in labels])
        return list(range(start, start + count))

    for j, param in enumerate(law.params):
        prior = priors.get(param.name, prior_of(param))
        mode = "shared" if g == 1 or param.name in shared else "pooled" if param.name in pooled else "group"
        modes.append(mode)
        if mode == "shared":
            law_index[:, j] = add(param.name)
            terms.append((param, prior, law_index[:1, j]))
        elif mode == "group":
            law_index[:, j] = add(param.name, g)
            terms.append((param, prior, law_index[:, j]))
        else:
            law_index[:, j] = add(f"{param.name}_mu")
            terms.append((param, prior, law_index[:1, j]))
            tau = Param(f"tau_{param.name}", lower=0)
            tau_index[:, j] = add(f"log_tau_{param.name}")
            terms.append((tau, priors.get(tau.name, POOLED_TAU_PRIOR), tau_index[:1, j]))
            z_index[:, j] = add(f"z_{param.name}", g)
            terms.append((Param(f"z_{param.name}"), _STANDARD_NORMAL, z_index[:, j]))
    noise_index = {}
    for name in _LIKELIHOOD_NOISE[likelihood]:
        param = NOISE_PARAMS[name]
        noise_index[name] = add(f"u_{name}")[0]
        terms.append((param, priors.get(name, prior_of(param)), np.array([noise_index[name]])))
    return _Layout(
        law=law,
        likelihood=likelihood,
        labels=tuple(labels),
        modes=tuple(modes),
        law_index=law_index,
        tau_index=tau_index,
        z_index=z_index,
        noise_index=noise_index,
        terms=tuple(terms),
        names=tuple(names),
        floor=float(floor),
    )


def _cache_key(layout: _Layout) -> tuple:
    # Priors are kept by identity (objects in the key stay alive, so ids are not reused).
    return (
        layout.law,
        layout.likelihood,
        layout.labels,
        layout.modes,
        layout.floor,
        tuple((param, prior) for param, prior, _ in layout.terms),
    )


_COMPILED: dict[tuple, object] = {}


def _compiled(kind: str, layout: _Layout, *static):
    """A compiled function per (layout, shapes-independent settings); data are arguments, so reruns reuse it."""
    key = (kind, _cache_key(layout), *static)
    if key not in _COMPILED:
        if len(_COMPILED) > 32:
            _COMPILED.clear()
        _COMPILED[key] = _build(kind, layout, *static)
    return _COMPILED[key]


def _build(kind: str, layout: _Layout, *static):
    if kind == "newton":
        f = lambda th, data: -layout.log_density(th, data)  # noqa: E731
        return jax.jit(jax.value_and_grad(f)), jax.jit(jax.hessian(f))
    warmup, draws, dense, target_accept, max_tree_depth, vectorized = static

    # NUTS runs on z with theta = mode + chol @ z (chol: Cholesky factor of the Laplace covariance):
    # the posterior is then close to a standard normal, so the step size and the mass matrix adapt
    # quickly, and NumPyro's shrinkage of the mass matrix towards 1e-3 * I (harmful when some
    # directions have standard deviations of 1e-4, as Chinchilla's do) is harmless.
    def potential_gen(data, mode, chol):
        return lambda z: -layout.log_density(mode + chol @ z, data)

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")

    def one_chain(key, z0, mode, chol, data):
        args = (data, mode, chol)
        state = init_kernel(
            z0,
            warmup,
            dense_mass=dense,
            target_accept_prob=target_accept,
            max_tree_depth=max_tree_depth,
            model_args=args,
            rng_key=key,
        )

        def step(s, _):
            s = sample_kernel(s, model_args=args)
            return s, (s.z, s.diverging, s.num_steps)

        _, (z, diverging, steps) = jax.lax.scan(step, state, None, length=warmup + draws)
        return mode + z[warmup:] @ chol.T, diverging[warmup:], steps

    if vectorized:
        return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None, None, None)))
    return jax.jit(one_chain)


def _newton(layout: _Layout, theta0: np.ndarray, data, max_steps: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The posterior mode in theta by damped Newton steps; returns `(mode, Hessian of -log density)`."""
    jit_value_and_grad, jit_hessian = _compiled("newton", layout)

    def value_and_grad(t):
        f, g = jit_value_and_grad(jnp.asarray(t), data)
        return float(f), np.asarray(g)

    def hessian(t):
        return np.asarray(jit_hessian(jnp.asarray(t), data))

    theta = np.asarray(theta0, dtype=np.float64)
    f, g = value_and_grad(theta)
    if not np.isfinite(f):
        raise FitError(
            "the posterior density is zero at the point fit; a prior excludes it "
            "(check the priors' supports against the fitted values) or the likelihood does not suit the data"
        )
    damping = 1e-3
    eye = np.eye(theta.size)
    for _ in range(max_steps):
        h = hessian(theta)
        improved = False
        for _ in range(30):
            try:
                step = np.linalg.solve(h + damping * (np.abs(np.diag(h)).mean() + 1.0) * eye, -g)
            except np.linalg.LinAlgError:
                step = np.full_like(theta, np.nan)
            trial = theta + step
            f_new, g_new = value_and_grad(trial) if np.all(np.isfinite(trial)) else (np.inf, g)
            if np.isfinite(f_new) and f_new <= f:
                improved = True
                break
            damping *= 10.0
        if not improved:
            break
        small = f - f_new <= 1e-12 * max(1.0, abs(f))
        theta, f, g = trial, f_new, g_new
        damping = max(damping / 10.0, 1e-9)
        if small and np.max(np.abs(g)) < 1e-6:
            break
    return theta, hessian(theta)


def _laplace_covariance(h: np.ndarray) -> np.ndarray:
    """Inverse of the Hessian, with eigenvalues floored so the covariance is positive definite.

    The floor also caps any direction's sd at 100 unconstrained units: a flat or
    indefinite direction must not whiten the sampler's start to an absurd scale
    (NUTS adapts its mass matrix from there).
    """
    h = 0.5 * (h + h.T)
    eig, vec = np.linalg.eigh(h)
    floor = max(float(eig.max()) * 1e-10, 1e-4)
    return (vec / np.maximum(eig, floor)) @ vec.T


class Posterior(Draws):
    """Posterior draws of a law's parameters: the `Draws` interface plus diagnostics.

    Attributes:
        law: the `Law`.
        likelihood: the likelihood's name.
        method: `"nuts"` or `"laplace"`.
        chains, draws: the shape of the sampler's output (`chains * draws` draws in all).
        diagnostics: `rhat_max`, `ess_min`, `divergences` (and per-quantity
            `rhat`, `ess`, plus `mean_tree_steps` for NUTS).
        noise: DataFrame of the noise parameters' draws (`sigma`, `nu`, `kappa`).
        fit: the Huber point `Fit` the sampler started from (for groups: one fit to all groups' points).
        groups: for a grouped posterior, group label -> `Posterior` of that group.
        level: the default interval level.
    """

    def __init__(
        self,
        law: Law,
        u: np.ndarray | None,
        *,
        by_chain: dict[str, np.ndarray],
        noise: pd.DataFrame,
        diagnostics: dict,
        likelihood: str,
        method: str,
        columns: Mapping,
        fit_: Fit | None,
        floor: float,
        level: float,
        groups: dict | None = None,
        seed: int = 0,
    ):
        chains, draws = next(iter(by_chain.values())).shape
        super().__init__(law, np.zeros((chains * draws, law.n_params)) if u is None else u, columns=columns)
        self._by_chain = by_chain
        self.noise = noise
        self.diagnostics = diagnostics
        self.likelihood = likelihood
        self.method = method
        self.chains, self.draws = chains, draws
        self.fit = fit_
        self.floor = floor
        self.level = level
        self.groups = groups
        self.seed = seed

    def __repr__(self) -> str:
        d = self.diagnostics
        where = f", {len(self.groups)} groups" if self.groups else ""
        return (
            f"Posterior({self.law.name}, {self.likelihood}, {self.method}: {self.chains} chains x {self.draws} draws{where}; "
            f"rhat_max={d['rhat_max']:.4g}, ess_min={d['ess_min']:.4g}, divergences={d['divergences']})"
        )

    def group(self, label) -> Posterior:
        """The posterior of one group's law parameters (shared ones included), with the full `Draws` interface."""
        if not self.groups:
            raise ScalejaxError("this posterior has no groups; pass group= to posterior()")
        key = str(label)
        if key not in self.groups:
            raise ScalejaxError(f"no group {label!r}; the groups are {', '.join(map(repr, self.groups))}")
        return self.groups[key]

    def _single(self, what: str) -> None:
        if self.groups:
            raise ScalejaxError(
                f"{what} needs one group's parameters; use post.group(label).{what} (groups: {', '.join(map(repr, self.groups))})"
            )

    @property
    def samples(self) -> pd.DataFrame:
        """One row per draw (chains concatenated), one column per law parameter (per group: `E[label]`)."""
        if self.groups:
            return pd.DataFrame({k: v.reshape(-1) for k, v in self._by_chain.items() if k not in self.noise.columns})
        return super().samples

    def samples_by_chain(self) -> dict[str, np.ndarray]:
        """Every reported quantity (law and noise parameters) as a `(chains, draws)` array."""
        return {k: v.copy() for k, v in self._by_chain.items()}

    @property
    def center_u(self) -> np.ndarray:
        self._single("center_u")
        return super().center_u

    def map(self, fn):
        self._single("map")
        return super().map(fn)

    def table(self, level: float | None = None) -> pd.DataFrame:
        """Median, mean, sd, equal-tailed interval, R-hat and ESS of every law and noise parameter."""
        level = self.level if level is None else level
        lo_q, hi_q = _tails(level)
        values = {k: v.reshape(-1) for k, v in self._by_chain.items()}
        rows = {
            k: {
                "median": float(np.median(v)),
                "mean": float(np.mean(v)),
                "sd": float(np.std(v, ddof=1)),
                "lo": float(np.quantile(v, lo_q)),
                "hi": float(np.quantile(v, hi_q)),
                "rhat": self.diagnostics["rhat"].get(k, np.nan),
                "ess": self.diagnostics["ess"].get(k, np.nan),
            }
            for k, v in values.items()
        }
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("param")

    def predictive_draws(self, new, *, noise: bool = True, trials=None, seed: int | None = None) -> np.ndarray:
        """Posterior predictive draws of y at the rows of `new`: `(n_draws, m)`.

        With `noise` the observation noise of the likelihood is added to each
        draw's prediction (log-scale residuals for `gaussian` / `student_t`;
        for `binomial` / `beta_binomial` the success fraction out of `trials`).
        Without it, the law's prediction (success probability above the floor
        for count likelihoods) under parameter uncertainty alone.
        """
        self._single("predictive_draws")
        mean = self.predict_draws(new)
        if self.likelihood in ("binomial", "beta_binomial"):
            mean = self.floor + (1 - self.floor) * np.clip(mean, 0.0, 1.0)
        if not noise:
            return mean
        rng = np.random.default_rng(self.seed if seed is None else seed)
        s, m = mean.shape
        if self.likelihood in ("gaussian", "student_t"):
            sigma = self.noise["sigma"].to_numpy()[:, None]
            if self.likelihood == "gaussian":
                eps = rng.standard_normal((s, m))
            else:
                eps = rng.standard_t(self.noise["nu"].to_numpy()[:, None], size=(s, m))
            return mean * np.exp(sigma * eps)
        if trials is None:
            raise ScalejaxError(
                f"predictive draws of a {self.likelihood} posterior need trials= (questions per evaluation), "
                "or noise=False for the success probability"
            )
        n = np.broadcast_to(np.asarray(trials, dtype=np.int64), (m,))
        if np.any(n < 1):
            raise DataError("trials must be positive integers")
        prob = mean
        if self.likelihood == "beta_binomial":
            kappa = self.noise["kappa"].to_numpy()[:, None]
            prob = rng.beta(np.maximum(prob * kappa, 1e-12), np.maximum((1 - prob) * kappa, 1e-12))
        return rng.binomial(n[None, :], np.clip(prob, 0.0, 1.0)) / n[None, :]

    def predict(
        self, new, level: float | None = None, *, noise: bool | None = None, trials=None, seed: int | None = None
    ) -> pd.DataFrame:
        """Posterior predictive at the rows of `new`: columns `y` (median), `lo`, `hi`.

        Args:
            new: a DataFrame or dict of the law's inputs (by input or column name).
            level: the interval level (default: the posterior's).
            noise: add the observation noise (parameter uncertainty plus noise);
                default True for `gaussian` / `student_t`, and for count
                likelihoods when `trials` is given.
            trials: for `binomial` / `beta_binomial`, questions per new evaluation.
            seed: seed of the noise draws (default: the posterior's seed).
        """
        level = self.level if level is None else level
        lo_q, hi_q = _tails(level)
        if noise is None:
            noise = self.likelihood in ("gaussian", "student_t") or trials is not None
        draws = self.predictive_draws(new, noise=noise, trials=trials, seed=seed)
        return pd.DataFrame(
            {
                "y": np.median(draws, axis=0),
                "lo": np.quantile(draws, lo_q, axis=0),
                "hi": np.quantile(draws, hi_q, axis=0),
            }
        )

    def to_arviz(self):
        """An ArviZ `InferenceData` (or DataTree) with the posterior and the divergences, per chain.

        Needs the optional package `arviz` (`pip install arviz`).
        """
        try:
            import arviz
        except ImportError:
            raise ImportError("to_arviz() needs the optional package arviz: pip install arviz") from None
        posterior = self.samples_by_chain()
        stats = {"diverging": self.diagnostics["diverging"]}
        try:
            return arviz.from_dict(posterior=posterior, sample_stats=stats)
        except TypeError:  # arviz >= 1.0 takes one dict of groups
            return arviz.from_dict({"posterior": posterior, "sample_stats": stats})


def _diagnostics(by_chain: dict[str, np.ndarray], diverging: np.ndarray, method: str) -> dict:
    chains, draws = diverging.shape
    if method == "laplace":
        rhat = {k: float("nan") for k in by_chain}
        ess = {k: float(chains * draws) for k in by_chain}
    else:
        rhat = {k: float(split_gelman_rubin(v)) for k, v in by_chain.items()}
        ess = {k: float(effective_sample_size(v)) for k, v in by_chain.items()}
    finite_rhat = [v for v in rhat.values() if np.isfinite(v)]
    return {
        "rhat_max": max(finite_rhat) if finite_rhat else float("nan"),
        "ess_min": min(ess.values()),
        "divergences": int(diverging.sum()),
        "rhat": rhat,
        "ess": ess,
        "diverging": diverging,
    }


def _warn_if_poor(diag: dict, chains: int) -> None:
    problems = []
    if np.isfinite(diag["rhat_max"]) and diag["rhat_max"] > 1.01:
        worst = max(diag["rhat"], key=lambda k: diag["rhat"][k] if np.isfinite(diag["rhat"][k]) else -1)
        problems.append(f"R-hat {diag['rhat_max']:.3f} > 1.01 (for {worst})")
    if diag["ess_min"] < 100 * chains:
        worst = min(diag["ess"], key=diag["ess"].get)
        problems.append(f"effective sample size {diag['ess_min']:.0f} < {100 * chains} (for {worst})")
    if diag["divergences"]:
        problems.append(f"{diag['divergences']} divergent transitions")
    if problems:
        warnings.warn(
            "posterior diagnostics are poor: "
            + "; ".join(problems)
            + "; run more draws or warmup, raise target_accept, or reconsider the priors",
            PosteriorWarning,
            stacklevel=3,
        )


def _check_priors(law: Law, likelihood: str, priors, pooled) -> dict:
    if priors is None:
        return {}
    if not isinstance(priors, Mapping):
        raise LawError(
            "priors must be a dict of parameter name -> numpyro distribution, e.g. {'alpha': dist.Uniform(0, 1)}"
        )
    valid = [*law.param_names, *_LIKELIHOOD_NOISE[likelihood], *(f"tau_{n}" for n in pooled)]
    for name, prior in priors.items():
        if name not in valid:
            raise LawError(
                f"priors name {name!r}, which is not a parameter here; the parameters are {', '.join(valid)}"
            )
        if not isinstance(prior, dist.Distribution) or prior.event_shape != () or prior.batch_shape != ():
            raise LawError(
                f"the prior for {name!r} must be a scalar numpyro distribution (e.g. dist.Normal(0.3, 0.1)), got {prior!r}"
            )
    return dict(priors)


def _check_groups(law: Law, data: Data, group, shared, pooled) -> tuple[tuple, np.ndarray, set, set]:
    shared, pooled = set(shared or ()), set(pooled or ())
    for role, names in (("shared", shared), ("pooled", pooled)):
        unknown = sorted(names - set(law.param_names))
        if unknown:
            raise LawError(
                f"{role}= names {unknown}, not parameters of law {law.name!r} ({', '.join(law.param_names)})"
            )
    if shared & pooled:
        raise LawError(f"parameters {sorted(shared & pooled)} are both shared and pooled; pick one")
    if group is None:
        if shared or pooled:
            raise DataError("shared= and pooled= need group= (the column naming each data set, family or task)")
        return ("all",), np.zeros(data.n, dtype=np.int64), shared, pooled
    labels, codes = np.unique(data.groups.astype(str), return_inverse=True)
    if labels.size < 2:
        raise DataError(f"column {group!r} holds a single group ({labels[0]!r}); a joint fit needs at least 2")
    for g, label in enumerate(labels):
        live = int(np.sum((codes == g) & (data.weights > 0)))
        own = sum(1 for n in law.param_names if n not in shared)
        if live < own:
            raise DataError(f"group {label!r} has {live} weighted points for its {own} own parameters; it needs more")
    return tuple(str(v) for v in labels), codes.astype(np.int64), shared, pooled


def _count_data(frame, data: Data, y, trials, row_name: str = "row") -> np.ndarray:
    """Validated trials per point for count likelihoods; `y` must hold success counts."""
    if trials is None:
        raise DataError(
            "the binomial and beta_binomial likelihoods need trials= (a column, or one number, of questions per evaluation); "
            "y is then the column of correct answers"
        )
    if isinstance(trials, str):
        if frame is None or trials not in frame.columns:
            raise DataError(f"column {trials!r} (for trials) not found")
        n = pd.to_numeric(frame[trials], errors="coerce").to_numpy(dtype=np.float64)
        name = repr(trials)
    else:
        n = np.broadcast_to(np.asarray(trials, dtype=np.float64), data.y.shape).copy()
        name = "trials"
    labels = data.index if data.index is not None else pd.RangeIndex(data.n)
    bad = ~np.isfinite(n) | (n < 1) | (n != np.round(n))
    if bad.any():
        raise DataError(
            f"{name} has {bad.sum()} values that are not positive whole numbers ({describe_rows(labels[bad], row_name=row_name)})"
        )
    k = data.y
    bad = (k < 0) | (k > n) | (k != np.round(k))
    if bad.any():
        raise DataError(
            f"y column {y!r} has {bad.sum()} values that are not whole counts between 0 and trials "
            f"({describe_rows(labels[bad], row_name=row_name)}); for count likelihoods y is the number correct, not the accuracy"
        )
    return n


def posterior(
    law: str | Law,
    frame: pd.DataFrame | Data | None = None,
    *,
    x: Mapping | None = None,
    y=None,
    likelihood: str = "student_t",
    priors: Mapping | None = None,
    chains: int = 4,
    draws: int = 1000,
    warmup: int | None = None,
    seed: int = 0,
    method: str = "nuts",
    weights=None,
    group=None,
    shared: Sequence[str] | None = None,
    pooled: Sequence[str] | None = None,
    trials=None,
    floor: float = 0.0,
    init: Fit | None = None,
    starts=None,
    level: float = 0.95,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass: bool = True,
    chain_method: str = "sequential",
    warn: bool = True,
    progress: bool | None = None,
) -> Posterior:
    """Bayesian fit of `law`: posterior draws of its parameters with NUTS (or a Laplace approximation).

    Likelihoods on log y: `student_t` (default; scale `sigma` and degrees of
    freedom `nu` fitted, robust to outlying runs) and `gaussian` (`sigma`). For
    accuracies and pass counts: `binomial` and `beta_binomial` (concentration
    `kappa`), with `y` the number correct out of `trials` and success
    probability `floor + (1 - floor) * law(x)`: the law predicts the fraction
    solved beyond random guessing, `floor` is the guessing rate (0.25 for four
    choices).

    Every parameter's prior is its `Param.prior`, or `default_prior(param)`;
    `priors={"alpha": dist.Uniform(0, 1)}` overrides any by name (law
    parameters, `sigma`, `nu`, `kappa`, and `tau_<name>` for the spread of a
    pooled parameter, default HalfNormal(0.5) in unconstrained units).
    The sampler works in the unconstrained space of the law's transforms,
    with the log-Jacobian added; a prior whose support is narrower than the
    bounds truncates the posterior to it.

    Groups (`group=` a column): every law parameter is per group, except those
    in `shared` (one value for all groups) and `pooled` (per group, drawn
    around a common mean with a fitted spread, non-centred). The noise
    parameters are shared.

    Args:
        law, frame, x, y, weights, starts: as in `scalejax.fit` (weights
            multiply each point's log-likelihood; `starts` go to the Huber point
            fit that starts the sampler; by default the law's grid, thinned evenly
            to at most 500 starts).
        likelihood: `"student_t"`, `"gaussian"`, `"binomial"` or `"beta_binomial"`.
        priors: parameter name -> numpyro distribution on the natural scale.
        chains: number of chains.
        draws: draws kept per chain.
        warmup: adaptation steps per chain (default `draws // 2`, at least
            200; short because the chains start from the Laplace approximation
            and sample the posterior whitened by it).
        seed: seed of the chains (and of predictive noise).
        method: `"nuts"` or `"laplace"` (Gaussian in the unconstrained space at
            the posterior mode, from the Hessian: fast, approximate; `chains * draws` draws).
        group, shared, pooled: joint fit of several groups (see above).
        trials, floor: for count likelihoods (see above).
        init: a `Fit` to start from instead of fitting (ungrouped only).
        level: the default interval level.
        target_accept, max_tree_depth, dense_mass: NUTS settings (dense mass
            matrix by default: these posteriors are small and strongly correlated).
        chain_method: `"sequential"` (one compiled chain, run once per chain)
            or `"vectorized"` (all chains in one vmapped call). On a 2-core CPU
            sequential compiles faster (Chinchilla: 5.6 s against 7.7 s for the
            first call) and samples somewhat slower once compiled (1.1 s against
            0.7 s); see benchmarks/RESULTS.md. Prefer vectorized for many calls
            of one compiled shape.
        warn: warn (`PosteriorWarning`) when R-hat > 1.01, ESS < 100 per chain or
            any transition diverged.
        progress: a progress bar over the chains (sequential chains only; None:
            in a terminal or notebook, once sampling has run 2 s).

    Returns:
        A `Posterior`.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> post = sj.posterior("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", draws=500)
        >>> list(post.interval(0.9).columns)
        ['lo', 'hi']

    References:
        Hoffman and Gelman 2014, The No-U-Turn Sampler. Vehtari et al. 2021,
        Rank-normalization, folding, and localization: an improved R-hat.
        Juarez and Steel 2010, Model-based clustering of non-Gaussian panel data
        based on skew-t distributions (the Gamma(2, 0.1) prior on nu).
    """
    law = get_law(law)
    if likelihood not in LIKELIHOODS:
        raise ScalejaxError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
    if method not in METHODS:
        raise ScalejaxError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if chain_method not in CHAIN_METHODS:
        raise ScalejaxError(f"unknown chain_method {chain_method!r}; choose one of {', '.join(CHAIN_METHODS)}")
    for name, value, least in (("chains", chains, 1), ("draws", draws, 10), ("max_tree_depth", max_tree_depth, 1)):
        if not (isinstance(value, int | np.integer) and value >= least):
            raise ScalejaxError(f"{name} must be an integer >= {least}, got {value!r}")
    warmup = max(200, draws // 2) if warmup is None else warmup
    if not (isinstance(warmup, int | np.integer) and warmup >= 1):
        raise ScalejaxError(f"warmup must be a positive integer, got {warmup!r}")
    if not 0 < target_accept < 1:
        raise ScalejaxError(f"target_accept must be between 0 and 1, got {target_accept}")
    if not 0 <= floor < 1:
        raise ScalejaxError(f"floor (the random-guess success rate) must be in [0, 1), got {floor}")
    _tails(level)
    counts = likelihood in ("binomial", "beta_binomial")
    if not counts and (trials is not None or floor):
        raise ScalejaxError(
            f"trials= and floor= apply to the binomial and beta_binomial likelihoods, not {likelihood!r}"
        )

    loss = make_loss("squared" if counts else "huber")
    data = make_data(law, frame, x, y, weights, group, loss)
    labels, codes, shared, pooled = _check_groups(law, data, group, shared, pooled)
    priors = _check_priors(law, likelihood, priors, pooled)
    if init is not None and (not isinstance(init, Fit) or init.law is not law or labels != ("all",)):
        raise ScalejaxError("init= must be a Fit of the same law, and only for a posterior without groups")
    # NumPy here; JAX arrays only inside the float64 scope below.
    arrays = {"x": dict(data.x), "weights": data.weights, "codes": codes}
    if counts:
        n_trials = _count_data(frame if isinstance(frame, pd.DataFrame) else None, data, y, trials)
        arrays["y"], arrays["trials"] = data.y, n_trials
        # The point fit that starts the sampler: least squares on the fraction solved beyond guessing.
        point_y = np.clip((data.y / n_trials - floor) / (1 - floor), 0.0, 1.0)
    else:
        arrays["y"] = np.log(data.y)
        point_y = data.y
    layout = _make_layout(law, likelihood, labels, shared, pooled, priors, floor)

    with jax.enable_x64(True):
        arrays = jax.tree.map(jnp.asarray, arrays)
        if init is None:
            point = fit(law, dataclasses.replace(data, y=point_y), loss=loss, starts=_point_starts(law, starts))
        else:
            point = init
        theta0 = _initial_theta(layout, point, data, codes, counts, arrays)
        mode, hess = _newton(layout, theta0, arrays)
        cov = _laplace_covariance(hess)
        rng = np.random.default_rng(seed)
        chol = np.linalg.cholesky(cov)
        if method == "laplace":
            theta = mode + rng.standard_normal((chains * draws, mode.size)) @ chol.T
            theta = theta.reshape(chains, draws, -1)
            diverging = np.zeros((chains, draws), dtype=bool)
            steps = None
        else:
            z0 = jnp.asarray(rng.standard_normal((chains, mode.size)))
            fixed = (jnp.asarray(mode), jnp.asarray(chol), arrays)
            keys = jax.random.split(jax.random.PRNGKey(seed), chains)
            settings = (int(warmup), int(draws), bool(dense_mass), float(target_accept), int(max_tree_depth))
            run = _compiled("nuts", layout, *settings, chain_method == "vectorized")
            if chain_method == "vectorized":
                theta, diverging, steps = run(keys, z0, *fixed)
            else:
                outs = []
                with Progress(chains, "NUTS chains", progress, unit="chain") as bar:
                    for c in range(chains):
                        outs.append(jax.block_until_ready(run(keys[c], z0[c], *fixed)))
                        bar.update(c + 1)
                theta, diverging, steps = (jnp.stack(v) for v in zip(*outs, strict=True))
            theta, diverging, steps = np.asarray(theta), np.asarray(diverging), np.asarray(steps)
        by_chain, law_u = _report(layout, jnp.asarray(theta))
    diag = _diagnostics(by_chain, diverging, method)
    if steps is not None:
        diag["mean_tree_steps"] = float(steps.mean())
    diag["mode"] = dict(zip(layout.names, mode.tolist(), strict=True))
    if warn and method == "nuts":
        _warn_if_poor(diag, chains)
    noise_names = list(_LIKELIHOOD_NOISE[likelihood])
    noise = pd.DataFrame({k: by_chain[k].reshape(-1) for k in noise_names})
    common = dict(
        noise=noise,
        diagnostics=diag,
        likelihood=likelihood,
        method=method,
        columns=data.columns,
        fit_=point,
        floor=floor,
        level=level,
        seed=seed,
    )
    flat_u = law_u.reshape(chains * draws, len(labels), law.n_params)
    if labels == ("all",):
        return Posterior(law, flat_u[:, 0], by_chain=by_chain, **common)
    members = {}
    for g, label in enumerate(labels):
        own = {
            n: by_chain[n if layout.modes[j] == "shared" else f"{n}[{label}]"] for j, n in enumerate(law.param_names)
        }
        members[label] = Posterior(
            law, flat_u[:, g], by_chain={**own, **{k: by_chain[k] for k in noise_names}}, **common
        )
    return Posterior(law, None, by_chain=by_chain, groups=members, **common)


# The sampler needs a start in the right basin, not the best of thousands: Newton's method then
# finds the posterior mode. Chinchilla's 4,500-start grid takes 4 s; an even 500 of it, 0.5 s.
MAX_POINT_STARTS = 500


def _point_starts(law: Law, starts):
    """The point fit's starts: the user's, or the law's grid thinned evenly to at most MAX_POINT_STARTS."""
    if starts is not None:
        return starts
    grid = law.start_grid()
    if grid.shape[0] <= MAX_POINT_STARTS:
        return None
    pick = np.linspace(0, grid.shape[0] - 1, MAX_POINT_STARTS).round().astype(int)
    return pd.DataFrame(_natural(law, grid[pick]))


def _natural(law: Law, u: np.ndarray) -> dict[str, np.ndarray]:
    with jax.enable_x64(True):
        return {k: np.asarray(v) for k, v in law.unpack(jnp.asarray(u)).items()}


def _initial_theta(layout: _Layout, point: Fit, data: Data, codes, counts: bool, arrays) -> np.ndarray:
    """Theta at the Huber point fit, with the noise parameters from its residuals."""
    theta = np.zeros(layout.size)
    u = np.asarray(point.u[0])
    for j in range(layout.law.n_params):
        theta[layout.law_index[:, j]] = u[j]
        if layout.modes[j] == "pooled":
            theta[layout.tau_index[0, j]] = np.log(0.1)
            theta[layout.z_index[:, j]] = 0.0
    if not counts:
        r = point.residuals[data.weights > 0]
        sigma = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 1e-4)
        theta[layout.noise_index["sigma"]] = NOISE_PARAMS["sigma"].inverse(sigma)
        if "nu" in layout.noise_index:
            theta[layout.noise_index["nu"]] = NOISE_PARAMS["nu"].inverse(10.0)
    elif "kappa" in layout.noise_index:
        theta[layout.noise_index["kappa"]] = NOISE_PARAMS["kappa"].inverse(50.0)
    return theta


def _report(layout: _Layout, theta) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Natural-scale quantities per draw `(chains, draws)`, and the law's unconstrained parameters per group."""
    law = layout.law
    law_u = jax.vmap(jax.vmap(layout.law_u))(theta)  # (C, S, G, p)
    natural = law.unpack(law_u)
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(law.param_names):
        values = np.asarray(natural[name])
        if layout.modes[j] == "shared":
            out[name] = values[..., 0]
        else:
            for g, label in enumerate(layout.labels):
                out[f"{name}[{label}]"] = values[..., g]
            if layout.modes[j] == "pooled":
                mu = np.asarray(theta[..., layout.law_index[0, j]])
                out[f"{name}_mu"] = np.asarray(law.params[j].forward(jnp.asarray(mu)))
                out[f"tau_{name}"] = np.exp(np.asarray(theta[..., layout.tau_index[0, j]]))
    for name in layout.noise_index:
        out[name] = np.asarray(layout.noise(theta, name))
    return out, np.asarray(law_u)
