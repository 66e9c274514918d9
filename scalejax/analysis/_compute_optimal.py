"""Compute-optimal allocation of a FLOP budget between parameters and tokens, for any law of N and D.

Each function is written for one parameter set (`*_split`) and evaluated over
draws into a table with intervals (`compute_optimal`, `tokens_for_loss`,
`inference_optimal`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._draws import Draws
from .._errors import LawError, ScalejaxError
from .._law import Law
from ..laws import chinchilla as _chinchilla_law
from ._intervals import interval_table
from ._solve1d import argmin_1d, root_1d

__all__ = [
    "chinchilla_compute_optimal",
    "compute_optimal",
    "inference_optimal",
    "inference_optimal_split",
    "optimal_split",
    "tokens_for_loss",
    "tokens_for_loss_split",
]

# log D (or log N) searched between these: 1 and e^100 (about 2.7e43) tokens or parameters.
_LOG_LIMIT = 100.0


def chinchilla_compute_optimal(params, compute, flops_per_param_token: float = 6.0) -> dict:
    """Closed-form compute-optimal split of the Chinchilla law under `C = k N D`.

    Minimising `E + A/N^alpha + B/D^beta` subject to `C = k N D` gives
    `N* = G (C/k)^(beta/(alpha+beta))`, `D* = (C/k) / N*`, with
    `G = (alpha A / (beta B))^(1/(alpha+beta))`. Written for one parameter set;
    use `compute_optimal` for a table with intervals.

    Args:
        params: dict with E, A, B, alpha, beta.
        compute: FLOP budget C (scalar or array).
        flops_per_param_token: k in C = k N D (6 for dense transformers).

    Returns:
        dict with `N`, `D`, `tokens_per_param` and `loss` at the optimum.

    References:
        Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, eq. (4).
    """
    alpha, beta = params["alpha"], params["beta"]
    budget = jnp.asarray(compute) / flops_per_param_token
    log_g = (jnp.log(alpha * params["A"]) - jnp.log(beta * params["B"])) / (alpha + beta)
    log_n = log_g + beta / (alpha + beta) * jnp.log(budget)
    log_d = jnp.log(budget) - log_n
    n, d = jnp.exp(log_n), jnp.exp(log_d)
    loss = params["E"] + params["A"] * jnp.exp(-alpha * log_n) + params["B"] * jnp.exp(-beta * log_d)
    return {"N": n, "D": d, "tokens_per_param": d / n, "loss": loss}


def _check_nd(law: Law) -> None:
    if set(law.inputs) != {"N", "D"}:
        raise LawError(
            f"law {law.name!r} has inputs {', '.join(law.inputs)}; compute-optimal allocation needs a law of "
            "exactly N (parameters) and D (tokens)"
        )


def _log_loss(law: Law, params, log_n, log_d):
    y = law.log_predict(params, {"N": jnp.exp(log_n), "D": jnp.exp(log_d)})
    return jnp.where(jnp.isfinite(y), y, jnp.inf)


def optimal_split(law: Law, params, compute, flops_per_param_token: float = 6.0) -> dict:
    """Compute-optimal `N`, `D` of any law of N and D under `C = k N D`, for one parameter set.

    Minimises the predicted log loss over `s = log N` with `log D = log(C/k) - s`
    for `N` and `D` both at least 1: a 257-point grid, then safeguarded Newton
    on the derivative to machine precision. Differentiable in `params` and
    `compute` (implicit-function theorem). NaN where the minimum lies on an end
    (the law has no interior optimum for this budget).

    Args:
        law: a `Law` with inputs `N` and `D`.
        params: dict of natural parameter values.
        compute: FLOP budget (scalar or array).
        flops_per_param_token: `k` in `C = k N D`.

    Returns:
        dict with `N`, `D`, `tokens_per_param` and `loss` at the optimum.

    Example:
        >>> import jax
        >>> import scalejax as sj
        >>> p = {"E": 1.8, "A": 480.0, "B": 2090.0, "alpha": 0.35, "beta": 0.37}
        >>> with jax.enable_x64(True):
        ...     out = sj.analysis.optimal_split(sj.laws.get("chinchilla"), p, 5.76e23)
        >>> round(float(out["N"]) / 1e9)
        78
    """
    _check_nd(law)
    log_budget = jnp.log(jnp.asarray(compute, dtype=jnp.float64) / flops_per_param_token)

    def one(lb):
        def f(s, theta):
            p, b = theta
            return _log_loss(law, p, s, b - s)

        return argmin_1d(f, jnp.zeros_like(lb), lb, (params, lb))

    log_n = jnp.vectorize(one)(log_budget)
    log_d = log_budget - log_n
    n, d = jnp.exp(log_n), jnp.exp(log_d)
    return {"N": n, "D": d, "tokens_per_param": d / n, "loss": law.predict(params, {"N": n, "D": d})}


def _is_chinchilla(law: Law) -> bool:
    return law == _chinchilla_law


def compute_optimal(
    draws: Draws,
    compute,
    *,
    flops_per_param_token: float = 6.0,
    level: float = 0.95,
    method: str = "auto",
) -> pd.DataFrame:
    """Compute-optimal model size and tokens per FLOP budget, with intervals over the draws.

    Args:
        draws: a `Fit`, `Bootstrap` or posterior of a law with inputs `N` and `D`.
        compute: FLOP budget(s) C, scalar or array.
        flops_per_param_token: `k` in `C = k N D` (6 for dense transformers).
        level: interval level.
        method: `"closed_form"` (Chinchilla only), `"numerical"` (any law of N and D)
            or `"auto"` (closed form where one exists).

    Returns:
        One row per budget: `compute`, `N`, `D`, `tokens_per_param`, `loss` at the
        central estimate (the fit, the full-data fit of a bootstrap, the median
        of a posterior) and `<column>_lo`, `<column>_hi` at `level`.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> table = sj.compute_optimal(fit, [1e21, 1e24])
        >>> list(table.columns[:6])
        ['compute', 'N', 'N_lo', 'N_hi', 'D', 'D_lo']

    References:
        Hoffmann et al. 2022, Training Compute-Optimal Large Language Models (Approach 3).
    """
    law = draws.law
    _check_nd(law)
    compute = _positive_array(compute, "compute")
    if method not in ("auto", "closed_form", "numerical"):
        raise ScalejaxError(f"unknown method {method!r}; choose 'auto', 'closed_form' or 'numerical'")
    if method == "closed_form" and not _is_chinchilla(law):
        raise ScalejaxError(f"no closed form for law {law.name!r}; use method='numerical'")
    closed = method == "closed_form" or (method == "auto" and _is_chinchilla(law))
    k = float(flops_per_param_token)
    return interval_table(draws, _split, law, compute, k, closed, level=level, index={"compute": compute})


def _split(p, law, compute, k, closed):
    return chinchilla_compute_optimal(p, compute, k) if closed else optimal_split(law, p, compute, k)


def tokens_for_loss_split(law: Law, params, loss, n) -> jax.Array:
    """Tokens `D` at which a model of `n` parameters reaches `loss`, for one parameter set.

    Solves `L(n, D) = loss` for `log D` in `[0, 100]` (bracketed Newton);
    NaN when the loss is out of reach at this size (at or below the law's
    limit as `D` grows) or already reached with one token. Differentiable in
    `params`, `loss` and `n`.
    """
    _check_nd(law)

    def one(target, log_n):
        def f(t, theta):
            p, tl, ln = theta
            return law.log_predict(p, {"N": jnp.exp(ln), "D": jnp.exp(t)}) - tl

        return root_1d(f, 0.0, _LOG_LIMIT, (params, jnp.log(target), log_n))

    return jnp.exp(jnp.vectorize(one)(jnp.asarray(loss), jnp.log(jnp.asarray(n))))


def tokens_for_loss(draws: Draws, loss, N, *, flops_per_param_token: float = 6.0, level: float = 0.95) -> pd.DataFrame:
    """Training tokens needed to reach a target loss at a given model size, with intervals.

    Args:
        draws: a `Fit`, `Bootstrap` or posterior of a law with inputs `N` and `D`.
        loss: target loss(es).
        N: model size(s); broadcast against `loss`.
        flops_per_param_token: `k` in `C = k N D`, for the `compute` column.
        level: interval level.

    Returns:
        One row per (loss, N): `loss`, `N`, then `D`, `tokens_per_param` and
        `compute` with `_lo`, `_hi`. NaN (with a warning) for draws where the
        target is out of reach at that size.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> bool(sj.analysis.tokens_for_loss(fit, loss=2.1, N=7e9)["D"].iloc[0] > 1e11)
        True
    """
    law = draws.law
    _check_nd(law)
    loss, n = np.broadcast_arrays(_positive_array(loss, "loss"), _positive_array(N, "N"))
    k = float(flops_per_param_token)
    return interval_table(draws, _tokens, law, loss, n, k, level=level, index={"loss": loss, "N": n})


def _tokens(p, law, loss, n, k):
    d = tokens_for_loss_split(law, p, loss, n)
    return {"D": d, "tokens_per_param": d / n, "compute": k * n * d}


def inference_optimal_split(
    law: Law,
    params,
    loss,
    inference_tokens,
    *,
    flops_per_param_token: float = 6.0,
    inference_flops_per_param_token: float = 2.0,
    n_range: tuple[float, float] = (1.0, 1e16),
) -> dict:
    """Model size and training tokens that reach `loss` with the fewest lifetime FLOPs, for one parameter set.

    Minimises `k N D + k_inf N D_inf` over `N`, with `D = D(N)` the tokens at
    which the law reaches `loss` (`tokens_for_loss_split`), and `D_inf` the
    lifetime inference tokens. Sizes too small to ever reach the loss are
    infeasible. NaN where the minimum lies at an end of `n_range`.

    Returns:
        dict with `N`, `D`, `tokens_per_param`, `training_flops`,
        `inference_flops` and `total_flops`.

    References:
        Sardana et al. 2024, Beyond Chinchilla-Optimal: Accounting for Inference in
        Language Model Scaling Laws (ICML), Section 2, eq. (2).
    """
    _check_nd(law)
    lo, hi = float(np.log(n_range[0])), float(np.log(n_range[1]))

    def log_d(s, p, tl):
        def f(t, theta):
            pp, target, ln = theta
            return law.log_predict(pp, {"N": jnp.exp(ln), "D": jnp.exp(t)}) - target

        return root_1d(f, 0.0, _LOG_LIMIT, (p, tl, s))

    def log_total(s, theta):
        p, tl, log_inf = theta
        train = jnp.log(flops_per_param_token) + s + log_d(s, p, tl)
        infer = jnp.log(inference_flops_per_param_token) + s + log_inf
        return jnp.logaddexp(train, infer)

    def one(target, d_inf):
        theta = (params, jnp.log(target), jnp.log(d_inf))
        return argmin_1d(log_total, lo, hi, theta)

    loss, d_inf = jnp.broadcast_arrays(
        jnp.asarray(loss, dtype=jnp.float64), jnp.asarray(inference_tokens, dtype=jnp.float64)
    )
    s = jnp.vectorize(one)(loss, d_inf)
    n = jnp.exp(s)
    d = jnp.exp(jnp.vectorize(lambda s_, target: log_d(s_, params, jnp.log(target)))(s, loss))
    train = flops_per_param_token * n * d
    infer = inference_flops_per_param_token * n * d_inf
    return {
        "N": n,
        "D": d,
        "tokens_per_param": d / n,
        "training_flops": train,
        "inference_flops": infer,
        "total_flops": train + infer,
    }


def inference_optimal(
    draws: Draws,
    loss,
    inference_tokens,
    *,
    flops_per_param_token: float = 6.0,
    inference_flops_per_param_token: float = 2.0,
    n_range: tuple[float, float] = (1.0, 1e16),
    level: float = 0.95,
) -> pd.DataFrame:
    """Inference-aware allocation: the model that reaches a loss with the fewest training plus inference FLOPs.

    Training costs `k N D` FLOPs and serving `D_inf` tokens over the model's
    life `k_inf N D_inf`; a smaller model trained on more tokens than
    Chinchilla-optimal wins when `D_inf` is large (Sardana et al. 2024).

    Args:
        draws: a `Fit`, `Bootstrap` or posterior of a law with inputs `N` and `D`.
        loss: target loss(es).
        inference_tokens: lifetime inference tokens (broadcast against `loss`).
        flops_per_param_token: `k`, training FLOPs per parameter and token (6).
        inference_flops_per_param_token: `k_inf`, inference FLOPs per parameter and token (2).
        n_range: model sizes searched.
        level: interval level.

    Returns:
        One row per (loss, inference_tokens): `loss`, `inference_tokens`, then
        `N`, `D`, `tokens_per_param`, `training_flops`, `inference_flops`,
        `total_flops` with `_lo`, `_hi`.

    Example:
        >>> import scalejax as sj
        >>> frame = sj.datasets.load_example("chinchilla")
        >>> fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
        >>> t = sj.analysis.inference_optimal(fit, loss=2.1, inference_tokens=[0.0, 1e13])
        >>> bool(t["N"].iloc[1] < t["N"].iloc[0])
        True

    References:
        Sardana et al. 2024, Beyond Chinchilla-Optimal: Accounting for Inference in
        Language Model Scaling Laws (ICML).
    """
    law = draws.law
    _check_nd(law)
    loss = _positive_array(loss, "loss")
    d_inf = np.atleast_1d(np.asarray(inference_tokens, dtype=np.float64))
    if not np.all(np.isfinite(d_inf) & (d_inf >= 0)):
        raise ScalejaxError("inference_tokens must be finite and >= 0")
    # log(0) = -inf is exact: logaddexp drops the inference term.
    loss, d_inf = np.broadcast_arrays(loss, d_inf)
    settings = (float(flops_per_param_token), float(inference_flops_per_param_token), tuple(map(float, n_range)))
    return interval_table(
        draws, _inference, law, loss, d_inf, settings, level=level, index={"loss": loss, "inference_tokens": d_inf}
    )


def _inference(p, law, loss, d_inf, settings):
    k, k_inf, n_range = settings
    return inference_optimal_split(
        law, p, loss, d_inf, flops_per_param_token=k, inference_flops_per_param_token=k_inf, n_range=n_range
    )


def _positive_array(values, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1:
        raise ScalejaxError(f"{name} must be a scalar or a 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ScalejaxError(f"{name} must be finite and > 0, got {arr[~(np.isfinite(arr) & (arr > 0))][:3]}")
    return arr
