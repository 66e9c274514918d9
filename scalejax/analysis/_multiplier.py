"""The effective compute multiplier of one training recipe over another, from their fitted laws, with an interval.

A recipe's cost of a loss is the compute its law needs to reach it: for a law
of compute alone, the compute at which it predicts that loss; for a law of
parameters and tokens, the least `k N D` that reaches it (the compute-optimal
frontier). The multiplier of A over B is B's cost divided by A's: how many
times more compute B spends for what A gets.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._draws import Draws
from .._errors import LawError, ScalejaxError
from .._law import Law
from ..laws import chinchilla as _chinchilla_law
from ._compute_optimal import chinchilla_compute_optimal, optimal_split
from ._solve1d import root_1d

__all__ = ["compute_for_loss", "compute_multiplier", "frontier_loss"]

# log compute searched up to e^250 (about 4e108) FLOPs; from 1 FLOP for a law of compute, from k e^2 (N, D >= e)
# for a law of N and D. A loss the law cannot reach there counts as not reached (a large log loss).
_LOG_C_MAX = 250.0
_NOT_REACHED = 1e3


def _kind(law: Law) -> str:
    if set(law.inputs) == {"N", "D"}:
        return "nd"
    if len(law.inputs) == 1:
        return "compute"
    raise LawError(
        f"law {law.name!r} has inputs {', '.join(law.inputs)}; a compute multiplier needs a law of compute alone "
        "(one input) or of N (parameters) and D (tokens)"
    )


def frontier_loss(law: Law, params, compute, flops_per_param_token: float = 6.0):
    """The loss a recipe reaches with `compute` FLOPs, for one parameter set.

    For a law of one input, that input is the compute; for a law of `N` and
    `D`, the compute-optimal loss under `C = k N D` (`optimal_split`).

    Args:
        law: a law of one input (compute) or of `N` and `D`.
        params: dict of natural parameter values.
        compute: FLOP budget(s).
        flops_per_param_token: `k` in `C = k N D`.

    Returns:
        The loss (array like `compute`).
    """
    if _kind(law) == "compute":
        return law.predict(params, {law.inputs[0]: jnp.asarray(compute)})
    if law is _chinchilla_law:
        return chinchilla_compute_optimal(params, compute, flops_per_param_token)["loss"]
    return optimal_split(law, params, compute, flops_per_param_token)["loss"]


def compute_for_loss(law: Law, params, loss, flops_per_param_token: float = 6.0):
    """The least compute at which a recipe's law reaches `loss`, for one parameter set.

    Solves `frontier_loss(C) = loss` for `log C` (bracketed Newton, derivatives
    by the implicit-function theorem). NaN where the loss is out of reach (at
    or below the law's limit) or reached with one FLOP.

    Args:
        law: a law of one input (compute) or of `N` and `D`.
        params: dict of natural parameter values.
        loss: target loss(es).
        flops_per_param_token: `k` in `C = k N D`.

    Returns:
        The compute (array like `loss`).
    """
    kind = _kind(law)
    loss = jnp.asarray(loss)
    if law is _chinchilla_law:
        # Closed form: on the compute-optimal frontier L = E + K (C/k)^(-alpha beta / (alpha + beta)),
        # K = A G^-alpha + B G^beta, G = (alpha A / (beta B))^(1 / (alpha + beta)) (Hoffmann et al., eq. 4).
        a, b = params["alpha"], params["beta"]
        log_g = (jnp.log(a * params["A"]) - jnp.log(b * params["B"])) / (a + b)
        log_k = jnp.logaddexp(jnp.log(params["A"]) - a * log_g, jnp.log(params["B"]) + b * log_g)
        excess = loss - params["E"]
        log_budget = (jnp.log(jnp.where(excess > 0, excess, jnp.nan)) - log_k) * -(a + b) / (a * b)
        return flops_per_param_token * jnp.exp(log_budget)
    lo = 0.0 if kind == "compute" else float(np.log(flops_per_param_token)) + 2.0

    def one(target):
        def f(t, theta):
            p, log_target = theta
            if kind == "compute":
                value = law.log_predict(p, {law.inputs[0]: jnp.exp(t)})
            else:
                value = jnp.log(optimal_split(law, p, jnp.exp(t), flops_per_param_token)["loss"])
            # Out of the law's domain (no interior optimum at this budget): not reached yet.
            return jnp.where(jnp.isfinite(value), value, _NOT_REACHED) - log_target

        return root_1d(f, lo, _LOG_C_MAX, (params, jnp.log(target)))

    return jnp.exp(jnp.vectorize(one)(loss))


def compute_multiplier(
    draws_a: Draws,
    draws_b: Draws,
    *,
    loss=None,
    compute=None,
    flops_per_param_token: float = 6.0,
    level: float = 0.95,
) -> pd.DataFrame:
    """How many times more compute recipe B needs than recipe A for the same loss, with an interval.

    Give either target losses or budgets. At a loss `L`: `C_B(L) / C_A(L)`, each
    recipe's least compute to reach `L`. At a budget `C`: `C_B(L_A(C)) / C`,
    the compute B needs to match what A reaches with `C`. A multiplier above 1
    means A is the more compute-efficient recipe.

    Draw `i` of A is paired with draw `i` of B (independent fits, so any
    pairing samples the joint uncertainty); with different numbers of draws,
    the first `min(S_A, S_B)` of each are used. The central value uses both
    central estimates (`Draws.center`).

    Args:
        draws_a: draws (a `Fit`, `Bootstrap` or posterior) of recipe A's law:
            a law of compute alone (one input, e.g. `power` fitted against
            FLOPs) or of `N` and `D` (its compute-optimal frontier is used).
        draws_b: the same for recipe B (any law of those two kinds).
        loss: target loss(es), or None.
        compute: FLOP budget(s), or None (exactly one of `loss`, `compute`).
        flops_per_param_token: `k` in `C = k N D` (6 for dense transformers).
        level: interval level.

    Returns:
        One row per target: `loss` or `compute`, then `multiplier`,
        `multiplier_lo`, `multiplier_hi`, and the central `compute_a`,
        `compute_b` (the two recipes' compute for that loss) and `loss_a`
        (the loss, or A's loss at the budget). NaN where a loss is out of a
        recipe's reach; `n_valid` counts the draws that gave a number.

    Example:
        >>> import numpy as np, scalejax as sj
        >>> c = np.geomspace(1e18, 1e21, 8)
        >>> fit_a = sj.fit("power", x={"x": c}, y=2.0 + 1e3 * c**-0.15)
        >>> fit_b = sj.fit("power", x={"x": c}, y=2.0 + 1e3 * (c / 2) ** -0.15)   # B wastes half its compute
        >>> table = sj.analysis.compute_multiplier(fit_a, fit_b, compute=[1e22])
        >>> round(float(table["multiplier"].iloc[0]), 3)
        2.0

    References:
        The "effective compute" comparison of recipes, e.g. Hoffmann et al. 2022 (Chinchilla against
        Kaplan allocations) and the compute-multiplier accounting of Epoch AI's algorithmic-progress
        estimates (Ho et al. 2024, Algorithmic progress in language models).
    """
    for name, d in (("draws_a", draws_a), ("draws_b", draws_b)):
        if not isinstance(d, Draws):
            raise ScalejaxError(f"{name} must be draws (a Fit, Bootstrap or posterior), got {type(d).__name__}")
    law_a, law_b = draws_a.law, draws_b.law
    _kind(law_a), _kind(law_b)
    if (loss is None) == (compute is None):
        raise ScalejaxError("give exactly one of loss= (target losses) or compute= (FLOP budgets)")
    if not 0 < level < 1:
        raise ScalejaxError(f"level must be between 0 and 1, got {level}")
    at_loss = loss is not None
    targets = np.atleast_1d(np.asarray(loss if at_loss else compute, dtype=np.float64))
    if targets.ndim != 1 or not np.all(np.isfinite(targets) & (targets > 0)):
        raise ScalejaxError(f"{'loss' if at_loss else 'compute'} must be finite, > 0 and at most 1-D, got {targets}")
    k = float(flops_per_param_token)
    s = min(draws_a.n_draws, draws_b.n_draws)
    # Row 0 is the pair of central estimates, rows 1.. the paired draws: one compiled, vmapped call.
    u_a = np.concatenate([np.asarray(draws_a.center_u)[None], np.asarray(draws_a.u)[:s]])
    u_b = np.concatenate([np.asarray(draws_b.center_u)[None], np.asarray(draws_b.u)[:s]])
    with jax.enable_x64(True):
        run = _paired(law_a, law_b, at_loss, k)
        loss_a, cost_a, cost_b = (np.asarray(v) for v in run(jnp.asarray(u_a), jnp.asarray(u_b), jnp.asarray(targets)))
    loss_c, cost_a_c, cost_b_c = loss_a[0], cost_a[0], cost_b[0]
    loss_a, cost_a, cost_b = loss_a[1:], cost_a[1:], cost_b[1:]

    ratio = cost_b / cost_a
    valid = np.isfinite(ratio)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    with np.errstate(all="ignore"):
        lo = np.array([np.quantile(r[v], lo_q) if v.any() else np.nan for r, v in zip(ratio.T, valid.T, strict=True)])
        hi = np.array([np.quantile(r[v], hi_q) if v.any() else np.nan for r, v in zip(ratio.T, valid.T, strict=True)])
    return pd.DataFrame(
        {
            "loss" if at_loss else "compute": targets,
            "multiplier": cost_b_c / cost_a_c,
            "multiplier_lo": lo,
            "multiplier_hi": hi,
            "compute_a": cost_a_c,
            "compute_b": cost_b_c,
            "loss_a": loss_c,
            "n_valid": valid.sum(axis=0),
        }
    )


@functools.lru_cache(maxsize=64)
def _paired(law_a: Law, law_b: Law, at_loss: bool, k: float):
    """`(u_a, u_b, targets) -> (loss_a, cost_a, cost_b)` over paired rows of unconstrained parameters, compiled once."""

    def one(u_a, u_b, targets):
        p_a, p_b = law_a.unpack(u_a), law_b.unpack(u_b)
        if at_loss:
            loss_a, cost_a = targets, compute_for_loss(law_a, p_a, targets, k)
        else:
            loss_a, cost_a = frontier_loss(law_a, p_a, targets, k), targets
        return loss_a, cost_a, compute_for_loss(law_b, p_b, loss_a, k)

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))
