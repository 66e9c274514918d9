"""posterior(): Bayesian fits of a law with NumPyro's NUTS (or a Laplace approximation), as draws.

The sampler works on one flat unconstrained vector (`Layout`): the law's
parameters through their own transforms (with the log-Jacobian added to the
prior), then the noise parameters through theirs. Groups are a joint law
(`scalejax.joint`) with a hierarchical prior on partially pooled parameters.
The posterior mode is found by the package's compiled damped Newton solver
from a Huber point fit; NUTS samples the posterior whitened by the Laplace
approximation there, so warmup is short. Every compiled piece is keyed by
the layout's value, so a second posterior of the same problem compiles nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pandas as pd
from numpyro.infer.hmc import hmc

from .._data import Data, as_table
from .._draws import Draws, tails, with_roles
from .._errors import DataError, FitError, LawError, ScalejaxError, describe_rows
from .._fit import Fit, constrained, fit, make_data, residual_noise
from .._joint import GROUP_INPUT, joint
from .._law import Law, plain_method
from .._noise import NoiseModel, noise_features
from .._objectives import make_loss
from .._progress import Progress
from ..solvers._newton import newton_minimize
from ..solvers._status import STATUS_NAMES
from . import _arviz
from ._diagnostics import summarize
from ._layout import Layout, make_layout
from ._likelihoods import COUNTS, LIKELIHOOD_NOISE, LIKELIHOODS, simulate
from ._priors import NOISE_PARAMS

__all__ = ["Posterior", "PosteriorWarning", "posterior"]

METHODS = ("nuts", "laplace")
CHAIN_METHODS = ("vectorized", "sequential")
# The sampler needs a start in the right basin, not the best of thousands: Newton's method then
# finds the posterior mode. Chinchilla's 4,500-start grid takes 4 s; an even 500 of it, 0.5 s.
MAX_POINT_STARTS = 500


class PosteriorWarning(UserWarning):
    """The sampler's diagnostics are poor: R-hat above 1.01, too few effective draws, or divergences."""


class Posterior(Draws):
    """Posterior draws of a law's parameters: the `Draws` interface plus the sampler's output and diagnostics.

    The draws (`u`, `samples`) are the law's parameters, chains concatenated;
    for groups the law is the joint law (`scalejax.joint`: per-group copies
    named `<param>_<group>`), so predictions at a `group` input use that
    group's parameters. The noise draws (`noise`: `sigma`, `nu`, `kappa`)
    travel with them into every predictive interval.

    Attributes (beyond those of `Draws`):
        likelihood: the likelihood's name.
        method: `"nuts"` or `"laplace"`.
        chains, draws: the shape of the sampler's output (`chains * draws` draws in all).
        by_chain: every reported quantity (law and noise parameters, pooled means
            `<name>_mu` and spreads `tau_<name>`) as a `(chains, draws)` array.
        diagnostics: `rhat_max`, `ess_min` (bulk), `ess_tail_min`, `divergences`,
            per-quantity `rhat` (rank-normalised split R-hat), `ess` (bulk) and
            `ess_tail` (Vehtari et al. 2021), `diverging` `(chains, draws)`, `mode`
            (the posterior mode, unconstrained), `mode_status`; for NUTS
            `mean_tree_steps` and `sample_stats` (per draw, `(chains, draws)`:
            `lp`, `energy`, `n_steps`, `tree_depth`, `step_size`,
            `acceptance_rate`, `diverging`).
        fit: the Huber point `Fit` the sampler started from (None for one group's posterior).
        labels: the group labels (empty without groups).
        floor: the guessing rate of count likelihoods.
        trials: `(n,)` trials per data point of count likelihoods (None otherwise).
        seed: the seed of the chains (and the default of predictive noise).
    """

    likelihood: str = eqx.field(static=True)
    method: str = eqx.field(static=True)
    chains: int
    draws: int
    by_chain: dict
    diagnostics: dict
    fit: Fit | None
    labels: tuple
    floor: float
    seed: int
    trials: np.ndarray | None

    def __init__(
        self,
        law: Law,
        u,
        *,
        noise: Mapping,
        by_chain: Mapping,
        diagnostics: Mapping,
        likelihood: str,
        method: str,
        data: Data | None,
        columns: Mapping,
        fit_: Fit | None,
        labels: Sequence = (),
        floor: float = 0.0,
        level: float = 0.95,
        seed: int = 0,
        noise_model: NoiseModel | None = None,
        trials=None,
    ):
        by_chain = {str(k): np.asarray(v, dtype=np.float64) for k, v in by_chain.items()}
        chains, draws = next(iter(by_chain.values())).shape
        problems = []
        d = diagnostics
        if np.isfinite(d.get("rhat_max", np.nan)) and d["rhat_max"] > 1.01:
            problems.append(f"R-hat {d['rhat_max']:.3f} > 1.01: the chains disagree")
        if method == "nuts" and d.get("ess_min", np.inf) < 100 * chains:
            problems.append(f"effective sample size {d['ess_min']:.0f} < {100 * chains} (100 per chain)")
        if method == "nuts" and d.get("ess_tail_min", np.inf) < 100 * chains:
            problems.append(f"tail effective sample size {d['ess_tail_min']:.0f} < {100 * chains} (100 per chain)")
        if d.get("divergences", 0):
            problems.append(f"{d['divergences']} divergent transitions")
        stats = {
            "likelihood": likelihood,
            "method": method,
            "chains": int(chains),
            "draws_per_chain": int(draws),
            "rhat_max": d.get("rhat_max", np.nan),
            "ess_min": d.get("ess_min", np.nan),
            "ess_tail_min": d.get("ess_tail_min", np.nan),
            "divergences": d.get("divergences", 0),
            "rhat": dict(d.get("rhat", {})),
            "ess": dict(d.get("ess", {})),
            "ess_tail": dict(d.get("ess_tail", {})),
        }
        super().__init__(
            law,
            u,
            noise=noise,
            log_scale=likelihood not in COUNTS,
            noise_model=noise_model,
            cov_u=None,
            data=data,
            loss=None,
            columns=columns,
            level=level,
            stats=stats,
            warnings=problems,
        )
        self.likelihood = str(likelihood)
        self.method = str(method)
        self.chains, self.draws = int(chains), int(draws)
        self.by_chain = by_chain
        self.diagnostics = dict(diagnostics)
        self.fit = fit_
        self.labels = tuple(str(v) for v in labels)
        self.floor = float(floor)
        self.seed = int(seed)
        self.trials = None if trials is None else np.asarray(trials, dtype=np.float64)

    @plain_method
    def describe(self) -> str:
        how = "NUTS" if self.method == "nuts" else "Laplace approximation"
        return f"{how} posterior ({self.likelihood}), {self.chains} chains x {self.draws} draws"

    @property
    def groups(self) -> dict:
        """Group label -> that group's `Posterior` (empty without groups)."""
        return {label: self.group(label) for label in self.labels}

    @plain_method
    def group(self, label) -> Posterior:
        """The posterior of one group's law parameters (shared ones included), with the full `Draws` interface."""
        if not self.labels:
            raise ScalejaxError("this posterior has no groups; pass group= to posterior()")
        key = str(label)
        if key not in self.labels:
            raise ScalejaxError(f"no group {label!r}; the groups are {', '.join(map(repr, self.labels))}")
        law = self.law
        idx = law.group_indices(key)
        names = [law.param_names[i] for i in idx]
        by_chain = {base: self.by_chain[name] for base, name in zip(law.base.param_names, names, strict=True)}
        by_chain |= {k: self.by_chain[k] for k in self.noise}
        diagnostics = dict(self.diagnostics)
        diagnostics["rhat"] = {
            b: self.diagnostics["rhat"].get(n, np.nan) for b, n in zip(law.base.param_names, names, strict=True)
        }
        for stat in ("ess", "ess_tail"):
            diagnostics[stat] = {
                b: self.diagnostics.get(stat, {}).get(n, np.nan)
                for b, n in zip(law.base.param_names, names, strict=True)
            }
        data, trials = None, None
        if self.data is not None:
            keep = self.data.x[GROUP_INPUT] == self.labels.index(key)
            trials = None if self.trials is None else self.trials[keep]
            data = self.data.replace(
                x={k: v[keep] for k, v in self.data.x.items() if k != GROUP_INPUT},
                y=self.data.y[keep],
                weights=self.data.weights[keep],
                groups=None if self.data.groups is None else self.data.groups[keep],
                index=None if self.data.index is None else self.data.index[keep],
                columns={k: v for k, v in self.data.columns.items() if k != GROUP_INPUT},
            )
        return Posterior(
            law.base,
            self.u[:, idx],
            noise=self.noise,
            by_chain=by_chain,
            diagnostics=diagnostics,
            likelihood=self.likelihood,
            method=self.method,
            data=data,
            columns={k: v for k, v in self.columns.items() if k != GROUP_INPUT},
            fit_=None,
            floor=self.floor,
            level=self.level,
            seed=self.seed,
            noise_model=self.noise_model,
            trials=trials,
        )

    @plain_method
    def samples_by_chain(self) -> dict[str, np.ndarray]:
        """Every reported quantity (law and noise parameters) as a `(chains, draws)` array."""
        return {k: v.copy() for k, v in self.by_chain.items()}

    @plain_method
    def table(self, level: float | None = None) -> pd.DataFrame:
        """Median, mean, sd, equal-tailed interval, R-hat, bulk ESS (`ess`) and tail ESS of every law and noise parameter."""
        level = self.level if level is None else level
        lo_q, hi_q = tails(level)
        rows = {}
        for k, v in self.by_chain.items():
            v = v.reshape(-1)
            rows[k] = {
                "median": float(np.median(v)),
                "mean": float(np.mean(v)),
                "sd": float(np.std(v, ddof=1)),
                "lo": float(np.quantile(v, lo_q)),
                "hi": float(np.quantile(v, hi_q)),
                "rhat": self.diagnostics["rhat"].get(k, np.nan),
                "ess": self.diagnostics["ess"].get(k, np.nan),
                "ess_tail": self.diagnostics.get("ess_tail", {}).get(k, np.nan),
            }
        return with_roles(self.law, pd.DataFrame.from_dict(rows, orient="index").rename_axis("param"))

    @plain_method
    def predictive_draws(
        self, new, *, noise: bool = True, trials=None, seed: int | None = None, calibration="auto"
    ) -> np.ndarray:
        """Posterior predictive draws of y at the rows of `new`: `(n_draws, m)`.

        With `noise` the observation noise of the likelihood, from each draw's
        own noise parameters (at each point, for a scale log-linear in compute),
        is added to that draw's prediction (log-scale residuals for `gaussian` /
        `student_t`, plus the extra error of the calibration at the point's
        extrapolation distance, see `scalejax.analysis.extrapolate`; for
        `binomial` / `beta_binomial` the success fraction out of `trials`).
        Without it, the law's prediction (success probability above the floor
        for count likelihoods) under parameter uncertainty alone.
        """
        mean = self.predict_draws(new)
        if self.likelihood in COUNTS:
            mean = self.floor + (1 - self.floor) * np.clip(mean, 0.0, 1.0)
        if not noise:
            return mean
        rng = np.random.default_rng(self.seed if seed is None else seed)
        if self.likelihood in COUNTS:
            return simulate(self.likelihood, mean, self.noise, rng, trials)
        from ..analysis._extrapolate import extra_noise

        out = simulate(self.likelihood, mean, {**self.noise, "sigma": self.noise_scale(new)}, rng, trials)
        extra = extra_noise(self, new, calibration)[0]
        return out * np.exp(extra[None, :] * rng.standard_normal(out.shape))

    @plain_method
    def predict(
        self, new, level: float | None = None, *, trials=None, seed: int | None = None, calibration="auto"
    ) -> pd.DataFrame:
        """Posterior prediction at the rows of `new`, with the caller's index.

        Columns: `y` (the posterior median of the law's prediction), `lo`,
        `hi` (its equal-tailed interval: parameter uncertainty), `pred_lo`,
        `pred_hi` (the posterior predictive interval of a new observation:
        each draw's prediction plus noise from that draw's noise parameters,
        widened for extrapolation by `calibration` (`"auto"`, None or a
        `Calibration`, as in `scalejax.analysis.extrapolate`); for count
        likelihoods only with `trials`, else NaN) and `distance` (decades
        beyond the data).

        Args:
            new: a DataFrame or dict of the law's inputs (by input or column name).
            level: the interval level (default: the posterior's).
            trials: for `binomial` / `beta_binomial`, questions per new evaluation.
            seed: seed of the noise draws (default: the posterior's seed).
        """
        new = as_table(new)
        level = self.level if level is None else level
        lo_q, hi_q = tails(level)
        mean = self.predictive_draws(new, noise=False)
        out = {
            "y": np.median(mean, axis=0),
            "lo": np.quantile(mean, lo_q, axis=0),
            "hi": np.quantile(mean, hi_q, axis=0),
        }
        if self.likelihood in COUNTS and trials is None:
            out |= {"pred_lo": np.full(mean.shape[1], np.nan), "pred_hi": np.full(mean.shape[1], np.nan)}
        else:
            draws = self.predictive_draws(new, noise=True, trials=trials, seed=seed, calibration=calibration)
            out |= {"pred_lo": np.quantile(draws, lo_q, axis=0), "pred_hi": np.quantile(draws, hi_q, axis=0)}
        from ..analysis._extrapolate import extra_noise

        _, out["distance"], cal, _ = extra_noise(self, new, calibration)
        if cal is not None and cal.input is not None:
            out[f"distance_{cal.input}"] = cal.input_distance(new)
        table = pd.DataFrame(out, index=new.index if isinstance(new, pd.DataFrame) else None)
        table.attrs["level"] = level
        return table

    @plain_method
    def refit(self, data: Data, *, n: int | None = None, seed: int = 0, level: float | None = None) -> Draws:
        """The posterior on other data by the Laplace approximation (fast; same law and likelihood).

        Count likelihoods need their trials, which `data` does not carry: they
        refit as a point fit.
        """
        level = self.level if level is None else level
        if self.likelihood in COUNTS:
            return super().refit(data, level=level)
        return posterior(
            self.law,
            data,
            likelihood=self.likelihood,
            method="laplace",
            chains=1,
            draws=max(int(n or 1000), 250),
            seed=seed,
            level=level,
            warn=False,
        )

    @plain_method
    def log_likelihood(self) -> np.ndarray:
        """Pointwise log-likelihood `(chains, draws, n)` of the data under every draw (for LOO and WAIC).

        Each point's term is its weight times its log-likelihood under the
        posterior's likelihood, so the terms add up to the log-likelihood the
        sampler used; held-out points (weight 0) get 0.
        """
        if self.data is None:
            raise DataError("this posterior does not carry its data, so it has no pointwise log-likelihood")
        if self.likelihood in COUNTS and self.trials is None:
            raise DataError("this count posterior does not carry its trials, so it has no pointwise log-likelihood")
        return _arviz.log_likelihood(self)

    @plain_method
    def to_arviz(self, *, predictive_seed: int | None = None):
        """The posterior as ArviZ `InferenceData`, for `az.summary`, `az.loo`, `az.compare`, `az.plot_ppc`...

        Groups:
            posterior: every law and noise parameter (and pooled means and
                spreads) by chain and draw; for groups, one variable per base
                parameter with a `group` dimension (coordinates: the labels),
                shared parameters without it.
            log_likelihood: `y`, the pointwise log-likelihood (see `log_likelihood()`).
            posterior_predictive: `y`, a replicated observation per draw and
                point (y itself for `gaussian` / `student_t`, success counts for
                the count likelihoods), seeded by `predictive_seed` (default:
                the posterior's seed).
            observed_data: `y`, as observed.
            constant_data: the law's inputs (group labels for groups), the
                weights, and the trials of count likelihoods.
            sample_stats: NUTS's `lp` (log density), `energy`, `n_steps`,
                `tree_depth`, `step_size`, `acceptance_rate`, `diverging`
                (only `diverging` for a Laplace approximation).

        Points with zero weight are left out of the per-point groups (their
        coordinate `obs` is the data's row label). Save with
        `idata.to_netcdf(path)`. Needs the optional package `arviz`
        (`pip install 'scalejax[arviz]'`).

        Example:
            >>> import scalejax as sj
            >>> frame = sj.datasets.load_example("chinchilla")
            >>> post = sj.posterior("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", draws=300, method="laplace")
            >>> idata = post.to_arviz()
            >>> idata.log_likelihood["y"].shape
            (4, 300, 81)
        """
        if self.data is not None and self.likelihood in COUNTS and self.trials is None:
            raise DataError("this count posterior does not carry its trials; it cannot be converted with its data")
        return _arviz.inference_data(self, predictive_seed=predictive_seed)


def _diagnostics(by_chain: dict[str, np.ndarray], diverging: np.ndarray, method: str) -> dict:
    chains, draws = diverging.shape
    if method == "laplace":  # independent draws: nothing to diagnose
        rhat = {k: float("nan") for k in by_chain}
        ess = {k: float(chains * draws) for k in by_chain}
        ess_tail = dict(ess)
    else:
        summary = summarize(by_chain)
        rhat, ess, ess_tail = summary["rhat"], summary["ess_bulk"], summary["ess_tail"]
    finite_rhat = [v for v in rhat.values() if np.isfinite(v)]
    return {
        "rhat_max": max(finite_rhat) if finite_rhat else float("nan"),
        "ess_min": min(ess.values()),
        "ess_tail_min": min(ess_tail.values()),
        "divergences": int(diverging.sum()),
        "rhat": rhat,
        "ess": ess,
        "ess_tail": ess_tail,
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
    if diag.get("ess_tail_min", np.inf) < 100 * chains:
        worst = min(diag["ess_tail"], key=diag["ess_tail"].get)
        problems.append(
            f"tail effective sample size {diag['ess_tail_min']:.0f} < {100 * chains} (for {worst}: interval ends are noisy)"
        )
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


def _check_priors(base: Law, likelihood: str, priors, pooled) -> dict:
    if priors is None:
        return {}
    if not isinstance(priors, Mapping):
        raise LawError(
            "priors must be a dict of parameter name -> numpyro distribution, e.g. {'alpha': dist.Uniform(0, 1)}"
        )
    valid = [*base.param_names, *LIKELIHOOD_NOISE[likelihood], *(f"tau_{n}" for n in pooled)]
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


def _check_groups(base: Law, data: Data, group, shared, pooled) -> tuple[tuple, np.ndarray | None]:
    shared, pooled = set(shared or ()), set(pooled or ())
    for role, names in (("shared", shared), ("pooled", pooled)):
        unknown = sorted(names - set(base.param_names))
        if unknown:
            raise LawError(
                f"{role}= names {unknown}, not parameters of law {base.name!r} ({', '.join(base.param_names)})"
            )
    if shared & pooled:
        raise LawError(f"parameters {sorted(shared & pooled)} are both shared and pooled; pick one")
    if group is None:
        if shared or pooled:
            raise DataError("shared= and pooled= need group= (the column naming each data set, family or task)")
        return (), None
    labels, codes = np.unique(data.groups.astype(str), return_inverse=True)
    if labels.size < 2:
        raise DataError(f"column {group!r} holds a single group ({labels[0]!r}); a joint fit needs at least 2")
    for g, label in enumerate(labels):
        live = int(np.sum((codes == g) & (data.weights > 0)))
        own = sum(1 for n in base.param_names if n not in shared)
        if live < own:
            raise DataError(f"group {label!r} has {live} weighted points for its {own} own parameters; it needs more")
    return tuple(str(v) for v in labels), codes.astype(np.float64)


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
    noise: str = "auto",
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
    fixed: Mapping[str, float] | None = None,
    tied: Sequence[Sequence[str]] = (),
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
        noise: the scale of the log-y likelihoods: `"auto"` (the Huber point fit's noise
            model, chosen by cross-validated log score), `"constant"`, `"log_linear"` or
            `"log_linear_tpp"` (see `scalejax.fit`); a log-linear scale adds the slopes
            `sigma_slope` (per decade of compute) and `sigma_slope_tpp` (per decade of
            tokens per parameter), prior Normal(0, 1), to the noise parameters.
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
        warn: warn (`PosteriorWarning`) when R-hat > 1.01, bulk or tail ESS < 100 per chain or
            any transition diverged.
        fixed, tied: parameters held at values, and groups sharing one value, as in `scalejax.fit`
            (priors are then given for the free parameters only).
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
    base, starts = constrained(law, fixed, tied, starts)
    frame = as_table(frame)
    _check_settings(likelihood, method, chain_method, chains, draws, max_tree_depth, target_accept, floor, level)
    warmup = max(200, draws // 2) if warmup is None else warmup
    if not (isinstance(warmup, int | np.integer) and warmup >= 1):
        raise ScalejaxError(f"warmup must be a positive integer, got {warmup!r}")
    if not (isinstance(seed, int | np.integer) and not isinstance(seed, bool) and 0 <= seed < 2**63):
        raise ScalejaxError(f"seed must be a non-negative integer below 2**63, got {seed!r}")
    counts = likelihood in COUNTS
    if not counts and (trials is not None or floor):
        raise ScalejaxError(
            f"trials= and floor= apply to the binomial and beta_binomial likelihoods, not {likelihood!r}"
        )

    loss = make_loss("squared" if counts else "huber")
    data = make_data(base, frame, x, y, weights, group, loss)
    labels, codes = _check_groups(base, data, group, shared, pooled)
    priors = _check_priors(base, likelihood, priors, set(pooled or ()))
    law_ = base
    if labels:
        law_ = joint(base, groups=labels, shared=tuple(shared or ()))
        data = data.replace(x={**data.x, GROUP_INPUT: codes}, columns={**data.columns, GROUP_INPUT: group})
    if init is not None and (not isinstance(init, Fit) or init.law != law_):
        raise ScalejaxError("init= must be a Fit of the same law (for groups, of the joint law of the groups)")
    arrays = {"x": dict(data.x), "weights": data.weights}
    if counts:
        n_trials = _count_data(frame if isinstance(frame, pd.DataFrame) else None, data, y, trials)
        arrays["y"], arrays["trials"] = data.y, n_trials
        # The point fit that starts the sampler: least squares on the fraction solved beyond guessing.
        point_y = np.clip((data.y / n_trials - floor) / (1 - floor), 0.0, 1.0)
    else:
        arrays["y"] = np.log(data.y)
        point_y = data.y
    point = init
    if point is None:
        with (
            warnings.catch_warnings()
        ):  # a point fit's doubts (a bound, a flat direction) are the posterior's to settle
            warnings.simplefilter("ignore")
            point = fit(law_, data.replace(y=point_y), loss=loss, starts=_point_starts(law_, starts), noise=noise)
    # The log-y scale: the noise model of the point fit's residuals (constant, or log-linear in its covariates).
    noise_model = None
    if not counts:
        noise_model = point.noise_model if noise in ("auto", point.noise_kind) else None
        noise_model = noise_model or residual_noise(law_, data, point.residuals, noise)
    covariates = () if noise_model is None else noise_model.covariates
    if covariates:
        arrays["noise_z"] = noise_model._design(noise_features(data.x, noise_model.by))
    layout = make_layout(law_, likelihood, tuple(pooled or ()), priors, floor, covariates)
    theta0 = _initial_theta(layout, point, data, counts)
    arrays = jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), arrays)
    with jax.enable_x64(True):
        solved = _mode(layout, jnp.asarray(theta0), arrays)
        mode, hess = np.asarray(solved.x), np.asarray(solved.hessian)
        if not np.isfinite(float(solved.f)):
            raise FitError(
                "the posterior density is zero at the point fit; a prior excludes it "
                "(check the priors' supports against the fitted values) or the likelihood does not suit the data"
            )
        cov = _laplace_covariance(hess)
        rng = np.random.default_rng(seed)
        chol = np.linalg.cholesky(cov)
        steps = None
        sampler = None
        if method == "laplace":
            theta = (mode + rng.standard_normal((chains * draws, mode.size)) @ chol.T).reshape(chains, draws, -1)
            diverging = np.zeros((chains, draws), dtype=bool)
        else:
            z0 = rng.standard_normal((chains, mode.size))
            keys = np.asarray(jax.random.split(jax.random.PRNGKey(seed), chains))
            settings = (int(warmup), int(draws), bool(dense_mass), float(target_accept), int(max_tree_depth))
            args = (mode, chol, arrays)
            if chain_method == "vectorized":
                theta, sampler, steps = _chains(layout, settings, keys, z0, *args)
            else:
                outs = []
                with Progress(chains, "NUTS chains", progress, unit="chain") as bar:
                    for c in range(chains):
                        outs.append(jax.block_until_ready(_chain(layout, settings, keys[c], z0[c], *args)))
                        bar.update(c + 1)
                theta, sampler, steps = jax.tree.map(lambda *v: jnp.stack(v), *outs)
            theta, steps = np.asarray(theta), np.asarray(steps)
            sampler = {k: np.asarray(v) for k, v in sampler.items()}
            sampler["tree_depth"] = (np.log2(sampler["n_steps"]).astype(np.int64) + 1).astype(np.int64)
            diverging = sampler["diverging"].astype(bool)
        by_chain = layout.report(theta)
        law_u = np.asarray(jax.vmap(layout.law_u)(jnp.asarray(theta.reshape(-1, layout.size))))
    diag = _diagnostics(by_chain, diverging, method)
    if steps is not None:
        diag["mean_tree_steps"] = float(steps.mean())
    if sampler is not None:
        diag["sample_stats"] = sampler
    diag["mode"] = dict(zip(layout.names, mode.tolist(), strict=True))
    diag["mode_status"] = STATUS_NAMES.get(int(solved.status), "running")
    if warn and method == "nuts":
        _warn_if_poor(diag, chains)
    noise = {k: by_chain[k].reshape(-1) for k in layout.noise_names}
    return Posterior(
        law_,
        law_u,
        noise=noise,
        by_chain=by_chain,
        diagnostics=diag,
        likelihood=likelihood,
        method=method,
        data=data,
        columns=data.columns,
        fit_=point,
        labels=labels,
        floor=floor,
        level=level,
        seed=seed,
        noise_model=noise_model,
        trials=n_trials if counts else None,
    )


def _check_settings(likelihood, method, chain_method, chains, draws, max_tree_depth, target_accept, floor, level):
    if likelihood not in LIKELIHOODS:
        raise ScalejaxError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
    if method not in METHODS:
        raise ScalejaxError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if chain_method not in CHAIN_METHODS:
        raise ScalejaxError(f"unknown chain_method {chain_method!r}; choose one of {', '.join(CHAIN_METHODS)}")
    for name, value, least in (("chains", chains, 1), ("draws", draws, 10), ("max_tree_depth", max_tree_depth, 1)):
        if not (isinstance(value, int | np.integer) and value >= least):
            raise ScalejaxError(f"{name} must be an integer >= {least}, got {value!r}")
    if not 0 < target_accept < 1:
        raise ScalejaxError(f"target_accept must be between 0 and 1, got {target_accept}")
    if not 0 <= floor < 1:
        raise ScalejaxError(f"floor (the random-guess success rate) must be in [0, 1), got {floor}")
    tails(level)


def _point_starts(law: Law, starts):
    """The point fit's starts: the user's, or the law's grid thinned evenly to at most MAX_POINT_STARTS."""
    if starts is not None:
        return starts
    grid = law.start_grid()
    if grid.shape[0] <= MAX_POINT_STARTS:
        return None
    pick = np.linspace(0, grid.shape[0] - 1, MAX_POINT_STARTS).round().astype(int)
    return pd.DataFrame(law.natural(grid[pick]))


def _initial_theta(layout: Layout, point: Fit, data: Data, counts: bool) -> np.ndarray:
    """Theta at the Huber point fit, with the noise parameters from its residuals."""
    theta = np.zeros(layout.size)
    u = np.asarray(point.center_u)
    pooled: dict[str, list[int]] = {}
    for j, source in enumerate(layout.pooled_of):
        if source:
            pooled.setdefault(source, []).append(j)
        else:
            theta[layout.law_index[j]] = u[j]
    for members in pooled.values():
        values = u[members]
        mu, tau = float(values.mean()), max(float(values.std()), 0.1)
        theta[layout.law_index[members[0]]] = mu
        theta[layout.tau_index[members[0]]] = np.log(tau)
        for j in members:
            theta[layout.z_index[j]] = (u[j] - mu) / tau
    noise = dict(layout.noise_index)
    if not counts:
        r = point.residuals[data.weights > 0]
        sigma = max(1.4826 * float(np.median(np.abs(r - np.median(r)))), 1e-4)
        theta[noise["sigma"]] = NOISE_PARAMS["sigma"].inverse(sigma)
        if "nu" in noise:
            theta[noise["nu"]] = NOISE_PARAMS["nu"].inverse(10.0)
    elif "kappa" in noise:
        theta[noise["kappa"]] = NOISE_PARAMS["kappa"].inverse(50.0)
    return theta


def _negative_log_density(theta, layout, data):
    return -layout.log_density(theta, data)


@eqx.filter_jit
def _mode(layout: Layout, theta0, data):
    """The posterior mode by compiled damped Newton steps, with the Hessian of -log density there."""
    return newton_minimize(_negative_log_density, theta0, layout, data)


def _laplace_covariance(h: np.ndarray) -> np.ndarray:
    """Inverse of the Hessian, with eigenvalues floored so the covariance is positive definite.

    The floor also caps any direction's sd at 100 unconstrained units: a flat or
    indefinite direction must not whiten the sampler's start to an absurd scale
    (NUTS adapts its mass matrix from there).
    """
    h = 0.5 * (h + h.T)
    if not np.all(np.isfinite(h)):  # no curvature to whiten by: the sampler adapts from the identity
        return np.eye(h.shape[0])
    eig, vec = np.linalg.eigh(h)
    floor = max(float(eig.max()) * 1e-10, 1e-4)
    return (vec / np.maximum(eig, floor)) @ vec.T


def _one_chain(layout: Layout, settings, key, z0, mode, chol, data):
    # NUTS runs on z with theta = mode + chol @ z (chol: Cholesky factor of the Laplace covariance):
    # the posterior is then close to a standard normal, so the step size and the mass matrix adapt
    # quickly, and NumPyro's shrinkage of the mass matrix towards 1e-3 * I (harmful when some
    # directions have standard deviations of 1e-4, as Chinchilla's do) is harmless.
    warmup, draws, dense, target_accept, max_tree_depth = settings

    def potential_gen(data_, mode_, chol_):
        return lambda z: -layout.log_density(mode_ + chol_ @ z, data_)

    init_kernel, sample_kernel = hmc(potential_fn_gen=potential_gen, algo="NUTS")
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
        stats = {
            "lp": -s.potential_energy,  # the log density at theta (the whitening is linear: no Jacobian)
            "energy": s.energy,
            "n_steps": s.num_steps,
            "acceptance_rate": s.accept_prob,
            "step_size": s.adapt_state.step_size,
            "diverging": s.diverging,
        }
        return s, (s.z, stats)

    _, (z, stats) = jax.lax.scan(step, state, None, length=warmup + draws)
    # Every draw's sampler statistics (ArviZ's names); the mean leapfrog steps over warmup and draws.
    return mode + z[warmup:] @ chol.T, {k: v[warmup:] for k, v in stats.items()}, stats["n_steps"]


@eqx.filter_jit
def _chain(layout, settings, key, z0, mode, chol, data):
    """One NUTS chain, compiled once per layout, settings and shapes."""
    return _one_chain(layout, settings, key, z0, mode, chol, data)


@eqx.filter_jit
def _chains(layout, settings, keys, z0, mode, chol, data):
    """All chains in one vmapped call."""
    return jax.vmap(lambda k, z: _one_chain(layout, settings, k, z, mode, chol, data))(keys, z0)
