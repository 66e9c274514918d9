"""A posterior as ArviZ `InferenceData`: draws, pointwise log-likelihood, predictive draws, data and sampler statistics.

Every group is built from what a `Posterior` keeps (its draws, noise draws,
data, trials and the sampler's per-draw statistics), so a posterior loaded
with `scalejax.load` converts exactly as the one that was sampled.
"""

from __future__ import annotations

import numpy as np

from .._draws import map_draws, map_rows
from .._errors import MissingDependency
from .._joint import GROUP_INPUT
from ._likelihoods import COUNTS, pointwise_log_likelihood, simulate

__all__ = ["inference_data", "log_likelihood", "require_arviz"]

ARVIZ_HINT = "needs the optional package arviz: pip install 'scalejax[arviz]' (or pip install arviz)"


def require_arviz(what: str):
    """Import ArviZ, or raise `MissingDependency` naming `what` needed it."""
    try:
        import arviz
    except ImportError:
        raise MissingDependency(f"{what} {ARVIZ_HINT}") from None
    major = str(getattr(arviz, "__version__", "0")).split(".")[0]
    if major.isdigit() and int(major) >= 1:
        # ArviZ 1.x (Python >= 3.12) rebuilt its API on DataTree; scalejax is tested with the 0.2x line.
        raise MissingDependency(
            f"{what} supports ArviZ 0.18 to 0.23, found {arviz.__version__}: pip install 'arviz>=0.18,<1'"
        )
    return arviz


def _pointwise_row(row, law, likelihood, noise_names, floor, data):
    """Pointwise log-likelihood of every point at one draw: `row` is the law's u then the natural noise values."""
    p = law.n_params
    noise = {name: row[p + i] for i, name in enumerate(noise_names)}
    return pointwise_log_likelihood(likelihood, law, law.unpack(row[:p]), noise, data, floor)


def _predict(p, law, x):
    return law.predict(p, x)


def _sampler_data(post) -> dict:
    """The arrays the likelihood reads: inputs, y (log y, or success counts) and trials."""
    data = post.data
    counts = post.likelihood in COUNTS
    out = {"x": dict(data.x), "y": data.y if counts else np.log(data.y)}
    out["trials"] = np.asarray(post.trials, dtype=np.float64) if counts else np.ones_like(data.y)
    return out


def log_likelihood(post) -> np.ndarray:
    """Log-likelihood of each data point under each draw, `(chains, draws, n)`, weighted as in the posterior.

    Each point's term is its weight times its log-likelihood, so the terms
    add up to the log-likelihood the sampler used; points with zero weight
    (held out) get 0.
    """
    data = post.data
    noise_names = tuple(post.noise)
    rows = np.column_stack([post.u, *(post.noise[k] for k in noise_names)]) if noise_names else post.u
    ll = map_rows(_pointwise_row, rows, post.law, post.likelihood, noise_names, post.floor, _sampler_data(post))
    w = data.weights
    ll = np.where(w > 0, w * ll, 0.0)
    return ll.reshape(post.chains, post.draws, -1)


def predictive(post, seed: int | None = None) -> np.ndarray:
    """Posterior predictive draws of the observed y at the data's inputs, `(chains, draws, n)`.

    On the scale of the observations: y itself for the log-scale likelihoods,
    success counts for the count likelihoods.
    """
    data = post.data
    mean = map_draws(_predict, post.law, post.u, post.law, dict(data.x))
    rng = np.random.default_rng(post.seed if seed is None else seed)
    if post.likelihood in COUNTS:
        mean = post.floor + (1 - post.floor) * np.clip(mean, 0.0, 1.0)
        trials = np.asarray(post.trials, dtype=np.int64)
        draws = np.round(simulate(post.likelihood, mean, post.noise, rng, trials) * trials)
    else:
        draws = simulate(post.likelihood, mean, post.noise, rng)
    return draws.reshape(post.chains, post.draws, -1)


def _posterior_group(post) -> tuple[dict, dict]:
    """Quantity -> `(chains, draws[, group])` and each variable's extra dims: a group's copies become one variable."""
    law = post.law
    variables, dims = {}, {}
    done = set()
    if post.labels:
        for name in law.base.param_names:
            members = [law.param_name(name, g) for g in post.labels]
            if members[0] == name:  # shared
                continue
            variables[name] = np.stack([post.by_chain[m] for m in members], axis=-1)
            dims[name] = [GROUP_INPUT]
            done.update(members)
    for key, values in post.by_chain.items():
        if key not in done:
            variables.setdefault(key, values)
    return variables, dims


def _observation_labels(post) -> np.ndarray:
    index = post.data.index
    labels = np.arange(post.data.n) if index is None else np.asarray(index)
    return labels if labels.dtype.kind in "iuf" else labels.astype(str)


def inference_data(post, *, predictive_seed: int | None = None):
    """The posterior as ArviZ `InferenceData` (see `Posterior.to_arviz`)."""
    az = require_arviz("to_arviz()")
    posterior, dims = _posterior_group(post)
    coords = {GROUP_INPUT: list(post.labels)} if post.labels else {}
    groups = {"posterior": posterior}
    stats = dict(post.diagnostics.get("sample_stats") or {})
    stats.setdefault("diverging", np.asarray(post.diagnostics["diverging"], dtype=bool))
    groups["sample_stats"] = stats
    if post.data is not None:
        data = post.data
        live = data.weights > 0
        coords["obs"] = _observation_labels(post)[live]
        observed = data.y[live]
        groups["log_likelihood"] = {"y": log_likelihood(post)[..., live]}
        groups["posterior_predictive"] = {"y": predictive(post, predictive_seed)[..., live]}
        groups["observed_data"] = {"y": observed}
        constant = {}
        for name, values in data.x.items():
            if name == GROUP_INPUT and post.labels:
                constant[name] = np.asarray(post.labels)[values.astype(int)][live]
            else:
                constant[name] = values[live]
        constant["weights"] = data.weights[live]
        if post.likelihood in COUNTS:
            constant["trials"] = np.asarray(post.trials, dtype=np.float64)[live]
        groups["constant_data"] = constant
        for group in ("log_likelihood", "posterior_predictive", "observed_data", "constant_data"):
            for key in groups[group]:
                dims[key] = ["obs"]
    return az.from_dict(
        **groups,
        coords=coords,
        dims=dims,
        attrs={
            "inference_library": "scalejax",
            "law": post.law.name,
            "likelihood": post.likelihood,
            "method": post.method,
        },
    )
