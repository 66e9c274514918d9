"""The functional fit: same optimum as `scalejax.fit` under jit and vmap; implicit derivatives against refits.

References are independent of scalejax's solver: finite differences of refits by
SciPy (`trust-exact` on a Huber objective written here, `least_squares` for a
squared log loss), warm-started and polished to machine precision.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.optimize

import scalejax as sj
from scalejax import functional
from scalejax.analysis import chinchilla_compute_optimal

EPOCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chinchilla_epoch" / "svg_extracted_data.csv"
needs_epoch = pytest.mark.skipif(not EPOCH.is_file(), reason=f"real Chinchilla data not found at {EPOCH}")
CHINCHILLA = sj.laws.get("chinchilla")
DELTA = 1e-3
# A 72-start grid: every fit here from it shares one compiled lane count.
GRID = np.array(list(itertools.product((1.0, 3.0), (100.0, 5000.0), (100.0, 5000.0), (0.2, 0.4, 0.6), (0.2, 0.4, 0.6))))


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def as_init(law, rows) -> dict:
    return {k: jnp.asarray(rows[:, i]) for i, k in enumerate(law.param_names)}


@pytest.fixture(scope="module")
def epoch():
    if not EPOCH.is_file():
        pytest.skip(f"real Chinchilla data not found at {EPOCH}")
    frame = sj.datasets.read_epoch_chinchilla(EPOCH)
    with jax.enable_x64(True):
        x = {k: jnp.asarray(frame[k].to_numpy()) for k in ("N", "D")}
        y = jnp.asarray(frame.loss.to_numpy())
    return frame, x, y


def rel(a, b):
    return abs(a - b) / abs(b)


# --- the same optimum as the host fit ------------------------------------------------------------


@needs_epoch
def test_jit_matches_host_fit_from_the_default_grid(epoch):
    """Hoffmann et al.'s 4,500-start grid, Huber delta 1e-3, every start polished (as the functional core does)."""
    frame, x, y = epoch
    host = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", strategy="all")
    out = jax.jit(functional.solve, static_argnums=0)(CHINCHILLA, x, y)
    assert int(out.status) == 0
    # Same solver and starts; sums over 240 rather than 256 padded points round differently, and
    # the optimum is determined to about 1e-7 by the stopping rules (see the next test).
    for k, v in host.params.items():
        assert float(out.params[k]) == pytest.approx(v, rel=1e-6), k
    assert float(out.objective) == pytest.approx(host.objective, rel=1e-12)
    assert abs(int(out.n_converged) - host.n_converged) <= 0.02 * host.n_starts


@needs_epoch
def test_jit_of_fit_matches_host_fit_and_scipy(epoch):
    frame, x, y = epoch
    host = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss", starts=GRID)
    params = jax.jit(functional.fit, static_argnums=0)(CHINCHILLA, x, y, init=as_init(CHINCHILLA, GRID))
    # The host fit stops where a step changes the objective by 1e-12 relative, about 1e-7 short of
    # the optimum in the parameters; the functional fit polishes that point with Newton steps.
    for k, v in host.params.items():
        assert float(params[k]) == pytest.approx(v, rel=1e-6), k
    # So its optimum is SciPy's exact-Hessian optimum (polished to machine precision) to rounding.
    u = huber_refit(epoch, np.ones(len(frame)), np.log(frame.loss.to_numpy()), chinchilla_u(params))
    assert np.allclose(chinchilla_u(params), u, rtol=1e-11, atol=1e-13)


@needs_epoch
def test_vmap_over_64_weight_vectors_matches_host_fits(epoch):
    frame, x, y = epoch
    rng = np.random.default_rng(0)
    weights = rng.multinomial(len(frame), np.full(len(frame), 1 / len(frame)), size=64).astype(np.float64)
    starts = GRID[::9]  # 8 starts, for the test's speed: 64 host fits follow
    out = jax.jit(jax.vmap(lambda w: functional.solve(CHINCHILLA, x, y, weights=w, init=as_init(CHINCHILLA, starts))))(
        jnp.asarray(weights)
    )
    assert np.all(np.asarray(out.status) == 0)
    for i, w in enumerate(weights):
        host = sj.fit("chinchilla", frame.assign(w=w), x={"N": "N", "D": "D"}, y="loss", weights="w", starts=starts)
        # Lanes of all 64 problems share one queue here, so sums vectorise differently than in
        # a single fit: agreement to the solver's tolerance, not bitwise.
        for k, v in host.params.items():
            assert float(out.params[k][i]) == pytest.approx(v, rel=1e-5), (i, k)
        assert float(out.objective[i]) == pytest.approx(host.objective, rel=1e-9), i


def test_vmap_over_data_sets_nested_and_with_grad():
    """Problems with their own inputs and observations: one call, nested vmaps, and grad under vmap."""
    rng = np.random.default_rng(0)
    truth = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    n_ = np.exp(rng.uniform(np.log(1e7), np.log(1e10), size=(3, 30)))
    d_ = np.exp(rng.uniform(np.log(1e9), np.log(1e12), size=(3, 30)))
    y_ = np.asarray(CHINCHILLA.predict(truth, {"N": n_, "D": d_})) * np.exp(0.01 * rng.normal(size=(3, 30)))
    start = {"E": 1.5, "A": 400.0, "B": 2000.0, "alpha": 0.3, "beta": 0.3}

    def alpha(n, d, y):
        return functional.fit(CHINCHILLA, {"N": n, "D": d}, y, init=start, loss="squared_log")["alpha"]

    many = jax.jit(jax.vmap(alpha))(n_, d_, y_)
    nested = jax.jit(jax.vmap(jax.vmap(alpha)))(np.stack([n_, n_]), np.stack([d_, d_]), np.stack([y_, 1.01 * y_]))
    grads = jax.jit(jax.vmap(jax.grad(alpha, argnums=2)))(n_, d_, y_)
    for i in range(3):
        host = sj.fit(
            "chinchilla", None, x={"N": n_[i], "D": d_[i]}, y=y_[i], loss="squared_log", starts=pd.DataFrame([start])
        )
        assert float(many[i]) == pytest.approx(host.params["alpha"], rel=1e-6)
        # A common factor on y moves E, A and B, not the exponents.
        assert np.allclose(nested[:, i], many[i], rtol=1e-9)
    one = jax.jit(jax.grad(alpha, argnums=2))(n_[1], d_[1], y_[1])
    assert np.allclose(grads[1], one, rtol=1e-9, atol=1e-15)


# --- implicit derivatives against finite differences of refits -------------------------------------


def chinchilla_u(p) -> np.ndarray:
    """(log E, log A, log B, alpha, beta)."""
    return np.array([np.log(p["E"]), np.log(p["A"]), np.log(p["B"]), p["alpha"], p["beta"]], dtype=np.float64)


def chinchilla_params(u) -> dict:
    return {"E": np.exp(u[0]), "A": np.exp(u[1]), "B": np.exp(u[2]), "alpha": u[3], "beta": u[4]}


def _huber_objective(u, log_n, log_d, weights, log_y):
    """Hoffmann et al.'s objective, written here independently of scalejax."""
    pred = jnp.logaddexp(jnp.logaddexp(u[0], u[1] - u[3] * log_n), u[2] - u[4] * log_d)
    r = jnp.abs(pred - log_y)
    return jnp.sum(weights * jnp.where(r <= DELTA, 0.5 * r**2, DELTA * (r - 0.5 * DELTA)))


_huber_value = jax.jit(_huber_objective)
_huber_grad = jax.jit(jax.grad(_huber_objective))
_huber_hess = jax.jit(jax.hessian(_huber_objective))


def huber_refit(epoch, weights, log_y, u0, log_n=None) -> np.ndarray:
    """SciPy's exact-Hessian trust region from a warm start, then Newton steps to machine precision."""
    frame = epoch[0]
    log_n = np.log(frame.N.to_numpy()) if log_n is None else log_n
    args = (log_n, np.log(frame.D.to_numpy()), weights, log_y)
    out = scipy.optimize.minimize(
        _huber_value, u0, args=args, jac=_huber_grad, hess=_huber_hess, method="trust-exact", options={"gtol": 1e-14}
    )
    u = out.x
    for _ in range(3):
        u = u - np.linalg.solve(_huber_hess(u, *args), _huber_grad(u, *args))
    return np.asarray(u)


def forecast(p) -> dict:
    """What a researcher differentiates: the fitted exponent, and N* and the loss at 1e24 FLOPs."""
    optimum = chinchilla_compute_optimal(p, 1e24)
    return {"alpha": p["alpha"], "N_opt": optimum["N"], "loss_opt": optimum["loss"]}


@needs_epoch
def test_grad_in_weights_and_y_matches_refits_on_real_chinchilla(epoch):
    frame, x, y = epoch
    n = len(frame)
    start = as_init(CHINCHILLA, GRID)

    def fitted(w, y):
        return forecast(functional.fit(CHINCHILLA, x, y, weights=w, init=start))

    w0 = jnp.ones(n)
    values = jax.jit(fitted)(w0, y)
    jac = jax.jit(jax.jacrev(fitted, argnums=(0, 1)))(w0, y)
    d_w, d_y = ({k: v[i] for k, v in jac.items()} for i in (0, 1))
    log_y = np.log(frame.loss.to_numpy())
    u_star = huber_refit(
        epoch, np.ones(n), log_y, chinchilla_u(jax.jit(functional.fit, static_argnums=0)(CHINCHILLA, x, y, init=start))
    )
    r = np.abs(
        np.logaddexp(
            np.logaddexp(u_star[0], u_star[1] - u_star[3] * np.log(frame.N)), u_star[2] - u_star[4] * np.log(frame.D)
        )
        - log_y
    )
    inside = np.flatnonzero(r < DELTA)
    for name, value in values.items():
        assert float(value) == pytest.approx(float(forecast(chinchilla_params(u_star))[name]), rel=1e-6)

    def refit_forecast(weights, log_target):
        return {
            k: float(v) for k, v in forecast(chinchilla_params(huber_refit(epoch, weights, log_target, u_star))).items()
        }

    # Weights: the two most influential runs on N* and one from the middle of the ranking.
    order = np.argsort(-np.abs(np.asarray(d_w["N_opt"])))
    eps = 1e-3
    runs = [*order[:2], order[n // 2]]
    # The functional fit's own warm-started refits, vmapped, must reach the same optima.
    steps = np.concatenate([np.eye(n)[runs] * eps, -np.eye(n)[runs] * eps])
    own = jax.jit(jax.vmap(lambda w: fitted(w, y)))(jnp.asarray(1.0 + steps))
    for j, i in enumerate(runs):
        e = np.zeros(n)
        e[i] = eps
        plus, minus = refit_forecast(1 + e, log_y), refit_forecast(1 - e, log_y)
        for name in values:
            fd = (plus[name] - minus[name]) / (2 * eps)
            assert float(d_w[name][i]) == pytest.approx(fd, rel=1e-5), (name, i)
            fd_own = (float(own[name][j]) - float(own[name][j + len(runs)])) / (2 * eps)
            assert fd_own == pytest.approx(fd, rel=1e-5), (name, i)
    # Observations: only runs inside the Huber band pull on the fit; a step in log y of 1e-6 stays inside it.
    eps = 1e-6
    for i in inside[np.argsort(-np.abs(np.asarray(d_y["loss_opt"])[inside]))[:3]]:
        assert DELTA - r[i] > 10 * eps
        e = np.zeros(n)
        e[i] = eps
        plus, minus = refit_forecast(np.ones(n), log_y + e), refit_forecast(np.ones(n), log_y - e)
        for name in values:
            fd = (plus[name] - minus[name]) / (2 * eps)
            # d/dy = d/dlog y / y
            assert float(d_y[name][i]) * float(y[i]) == pytest.approx(fd, rel=1e-5), (name, i)
    outside = np.setdiff1d(np.arange(n), inside)
    assert np.all(np.asarray(d_y["alpha"])[outside] == 0.0)


@needs_epoch
def test_derivative_in_an_input_matches_refits(epoch):
    """d alpha / d log N of one run, by reverse mode and by forward mode, against refits."""
    frame, x, y = epoch
    start = as_init(CHINCHILLA, GRID)

    def alpha(log_n):
        return functional.fit(CHINCHILLA, {"N": jnp.exp(log_n), "D": x["D"]}, y, init=start)["alpha"]

    log_n = jnp.log(x["N"])
    grad = jax.jit(jax.grad(alpha))(log_n)
    i = int(np.argmax(np.abs(np.asarray(grad))))
    tangent = jnp.zeros_like(log_n).at[i].set(1.0)
    _, forward = jax.jit(lambda t: jax.jvp(alpha, (log_n,), (t,)))(tangent)
    assert float(forward) == pytest.approx(float(grad[i]), rel=1e-10)
    log_y = np.log(frame.loss.to_numpy())
    u0 = chinchilla_u(jax.jit(functional.fit, static_argnums=0)(CHINCHILLA, x, y, init=start))
    eps = 1e-6
    e = np.zeros(len(frame))
    e[i] = eps
    base = np.log(frame.N.to_numpy())
    plus = huber_refit(epoch, np.ones(len(frame)), log_y, u0, log_n=base + e)[3]
    minus = huber_refit(epoch, np.ones(len(frame)), log_y, u0, log_n=base - e)[3]
    assert float(grad[i]) == pytest.approx((plus - minus) / (2 * eps), rel=1e-5)


@sj.law(
    params=[
        sj.Param("E", lower=0.5, upper=4.0, grid=(1.5, 2.5)),
        sj.Param("A", lower=0, grid=(100.0, 1000.0)),
        sj.Param("alpha", lower=0, upper=1, grid=(0.2, 0.5)),
        sj.Param("B", lower=0, grid=(100.0, 3000.0)),
        sj.Param("beta", lower=0, upper=1, grid=(0.2, 0.5)),
    ],
    inputs=["N", "D"],
)
def bounded(p, x):
    """A law written by hand (no log form), with interval-bounded exponents and floor."""
    return p["E"] + p["A"] / x["N"] ** p["alpha"] + p["B"] / x["D"] ** p["beta"]


def _squared_log_objective(theta, log_n, log_d, weights, log_y):
    pred = jnp.log(theta[0] + theta[1] * jnp.exp(-theta[2] * log_n) + theta[3] * jnp.exp(-theta[4] * log_d))
    return 0.5 * jnp.sum(weights * (pred - log_y) ** 2)


_lsq_grad = jax.jit(jax.grad(_squared_log_objective))
_lsq_hess = jax.jit(jax.hessian(_squared_log_objective))


def lsq_refit(frame, weights, log_y, theta0) -> np.ndarray:
    """SciPy least squares on the log loss in the natural parameters (E, A, alpha, B, beta), then Newton steps.

    MINPACK stops about 1e-9 short of the optimum on this ill-conditioned problem, too far for
    finite differences at 1e-5; Newton steps on the exact Hessian take it to machine precision.
    """
    n_, d_ = frame.N.to_numpy(), frame.D.to_numpy()

    def resid(t):
        return np.sqrt(weights) * (np.log(t[0] + t[1] / n_ ** t[2] + t[3] / d_ ** t[4]) - log_y)

    theta = scipy.optimize.least_squares(resid, theta0, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15).x
    args = (np.log(n_), np.log(d_), weights, log_y)
    for _ in range(4):
        theta = theta - np.linalg.solve(_lsq_hess(theta, *args), _lsq_grad(theta, *args))
    return theta


@needs_epoch
def test_grad_on_a_custom_law_matches_least_squares_refits(epoch):
    frame, x, y = epoch
    n = len(frame)
    names = bounded.param_names

    def fitted(w, y):
        p = functional.fit(bounded, x, y, weights=w, loss="squared_log")
        return {"alpha": p["alpha"], "at_1e24": bounded.predict(p, {"N": 1e11, "D": 1e24 / 6e11})}

    w0 = jnp.ones(n)
    values = jax.jit(fitted)(w0, y)
    jac = jax.jit(jax.jacrev(fitted, argnums=(0, 1)))(w0, y)
    d_w, d_y = ({k: v[i] for k, v in jac.items()} for i in (0, 1))
    log_y = np.log(frame.loss.to_numpy())
    p = functional.fit(bounded, x, y, loss="squared_log")
    theta = lsq_refit(frame, np.ones(n), log_y, np.array([float(p[k]) for k in names]))
    assert np.allclose([float(p[k]) for k in names], theta, rtol=1e-7)

    def refit(weights, log_target):
        t = lsq_refit(frame, weights, log_target, theta)
        q = dict(zip(names, t, strict=True))
        return {
            "alpha": q["alpha"],
            "at_1e24": q["E"] + q["A"] / 1e11 ** q["alpha"] + q["B"] / (1e24 / 6e11) ** q["beta"],
        }

    assert float(values["at_1e24"]) == pytest.approx(refit(np.ones(n), log_y)["at_1e24"], rel=1e-8)
    for i in np.argsort(-np.abs(np.asarray(d_w["at_1e24"])))[[0, 1, n // 2]]:
        e = np.zeros(n)
        e[i] = 1e-3
        plus, minus = refit(1 + e, log_y), refit(1 - e, log_y)
        plus_y, minus_y = refit(np.ones(n), log_y + e), refit(np.ones(n), log_y - e)
        for name in values:
            assert float(d_w[name][i]) == pytest.approx((plus[name] - minus[name]) / 2e-3, rel=1e-5), (name, i)
            fd_y = (plus_y[name] - minus_y[name]) / 2e-3
            assert float(d_y[name][i]) * float(y[i]) == pytest.approx(fd_y, rel=1e-5), (name, i)


def test_modes_agree_jvp_jacfwd_grad(example_frame):
    """Forward mode, its transpose and `jacfwd` give one derivative (the custom JVP is linear)."""
    x = {k: jnp.asarray(example_frame[k].to_numpy()) for k in ("N", "D")}
    y = jnp.asarray(example_frame.loss.to_numpy())
    start = {"E": 2.0, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}

    def beta(w):
        return functional.fit("chinchilla", x, y, weights=w, init=start, loss="squared_log")["beta"]

    w = jnp.ones(len(y))
    grad = jax.grad(beta)(w)
    jac = jax.jacfwd(beta)(w)
    direction = jnp.asarray(np.random.default_rng(1).normal(size=len(y)))
    _, along = jax.jvp(beta, (w,), (direction,))
    assert np.allclose(grad, jac, rtol=1e-10, atol=1e-14)
    assert float(along) == pytest.approx(float(grad @ direction), rel=1e-9)
    assert np.all(np.isfinite(grad))


def test_second_derivatives_match_differences_of_gradients(example_frame):
    """Hessians of a fitted quantity (e.g. to differentiate an interval width): both modes, against differences.

    The first derivatives are checked against refits above; here the second derivative
    is checked against central differences of those first derivatives.
    """
    x = {k: jnp.asarray(example_frame[k].to_numpy()) for k in ("N", "D")}
    y = jnp.asarray(example_frame.loss.to_numpy())
    start = {"E": 2.0, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}

    def log_n_opt(w):
        p = functional.fit("chinchilla", x, y, weights=w, init=start, loss="squared_log")
        return jnp.log(chinchilla_compute_optimal(p, 1e24)["N"])

    grad = jax.jit(jax.grad(log_n_opt))
    w = jnp.ones(len(y))
    i = int(jnp.argmax(jnp.abs(grad(w))))
    forward_over_reverse = jax.jit(lambda w: jax.jacfwd(jax.grad(log_n_opt))(w)[i])(w)
    reverse_over_reverse = jax.jit(jax.grad(lambda w: jax.grad(log_n_opt)(w)[i]))(w)
    eps = 1e-3
    fd = np.asarray(grad(w.at[i].add(eps)) - grad(w.at[i].add(-eps))) / (2 * eps)
    big = np.abs(fd) > 1e-3 * np.max(np.abs(fd))
    assert big.sum() >= 5
    assert np.allclose(np.asarray(forward_over_reverse)[big], fd[big], rtol=1e-5)
    assert np.allclose(np.asarray(reverse_over_reverse), np.asarray(forward_over_reverse), rtol=1e-9, atol=1e-15)

    # The optimal objective: envelope-theorem first derivative, second derivative with the optimum's movement.
    def optimal_objective(w):
        return functional.solve("chinchilla", x, y, weights=w, init=start, loss="squared_log").objective

    value_grad = jax.jit(jax.grad(optimal_objective))
    row = jax.jit(lambda w: jax.jacfwd(jax.grad(optimal_objective))(w)[i])(w)
    fd_value = np.asarray(value_grad(w.at[i].add(eps)) - value_grad(w.at[i].add(-eps))) / (2 * eps)
    big = np.abs(fd_value) > 1e-3 * np.max(np.abs(fd_value))
    assert np.allclose(np.asarray(row)[big], fd_value[big], rtol=1e-5)
    residuals = np.log(
        np.asarray(CHINCHILLA.predict(functional.fit("chinchilla", x, y, init=start, loss="squared_log"), x))
    ) - np.log(np.asarray(y))
    assert np.allclose(np.asarray(value_grad(w)), 0.5 * residuals**2, rtol=1e-8, atol=1e-18)  # dF/dw_i = rho(r_i)


# --- where there is no derivative -----------------------------------------------------------------


def test_not_unique_optimum_gives_nan_derivatives_and_says_why(chinchilla_design):
    """All runs at one model size: E + A/N^alpha is one number, so E, A and alpha trade off exactly."""
    one_n = {k: jnp.asarray(v[:6]) for k, v in chinchilla_design.items()}
    assert np.unique(np.asarray(one_n["N"])).size == 1
    truth = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    y = CHINCHILLA.predict(truth, one_n) * jnp.exp(jnp.asarray([0.01, -0.02, 0.015, -0.005, 0.0, 0.01]))
    start = {"E": 1.5, "A": 400.0, "B": 2000.0, "alpha": 0.3, "beta": 0.3}
    squared = functional.solve(CHINCHILLA, one_n, y, init=start, loss="squared_log")
    assert functional.STATUS_NAMES[int(squared.status)] == "singular"

    @jax.jit
    def everything(w, y):
        out = functional.solve(CHINCHILLA, one_n, y, weights=w, init=start)
        grads = jax.grad(lambda w, y: functional.fit(CHINCHILLA, one_n, y, weights=w, init=start)["beta"], (0, 1))(w, y)
        _, along = jax.jvp(lambda y: functional.fit(CHINCHILLA, one_n, y, weights=w, init=start)["E"], (y,), (w,))
        d_objective = jax.grad(lambda y: functional.solve(CHINCHILLA, one_n, y, weights=w, init=start).objective)(y)
        return out, grads, along, d_objective

    out, grads, along, d_objective = everything(jnp.ones(6), y)
    assert functional.STATUS_NAMES[int(out.status)] == "singular"
    assert bool(out.converged)
    # A value is returned (one of the optima: it fits as well as any), its derivatives are NaN.
    assert all(np.isfinite(float(v)) for v in out.params.values())
    assert all(np.all(np.isnan(g)) for g in grads)
    assert np.isnan(float(along))
    # The optimal value is still differentiable (envelope theorem).
    assert np.all(np.isfinite(d_objective))
    # The same law on both model sizes is identified.
    two_n = {k: jnp.asarray(v) for k, v in chinchilla_design.items()}
    y2 = CHINCHILLA.predict(truth, two_n)
    out = functional.solve(CHINCHILLA, two_n, y2, init=start, loss="squared_log")
    assert int(out.status) == 0


def test_no_converged_start_gives_nan_parameters_and_the_failure(example_frame):
    x = {k: jnp.asarray(example_frame[k].to_numpy()) for k in ("N", "D")}
    y = jnp.asarray(example_frame.loss.to_numpy())
    start = {"E": 1.0, "A": 10.0, "B": 10.0, "alpha": 1.5, "beta": 1.5}
    out = functional.solve("chinchilla", x, y, init=start, solver=sj.solvers.SolverConfig(max_steps=2))
    assert functional.STATUS_NAMES[int(out.status)] == "max_steps"
    assert not bool(out.converged) and int(out.n_converged) == 0
    assert all(np.isnan(float(v)) for v in out.params.values())
    config = sj.solvers.SolverConfig(max_steps=2)
    g = jax.grad(lambda y: functional.fit("chinchilla", x, y, init=start, solver=config)["alpha"])(y)
    assert np.all(np.isnan(g))
    # Non-positive observations on a log scale: nothing is finite, and the status says so.
    bad = functional.solve("chinchilla", x, y.at[3].set(-1.0), init=start)
    assert functional.STATUS_NAMES[int(bad.status)] == "nonfinite"


# --- inputs ----------------------------------------------------------------------------------------


def test_starts_single_batch_and_grid_agree(example_frame):
    x = {k: jnp.asarray(example_frame[k].to_numpy()) for k in ("N", "D")}
    y = jnp.asarray(example_frame.loss.to_numpy())
    host = sj.fit("chinchilla", example_frame, x={"N": "N", "D": "D"}, y="loss", loss="squared_log", starts=GRID)
    single = functional.fit("chinchilla", x, y, init=host.params, loss="squared_log")
    batch = functional.fit("chinchilla", x, y, init=as_init(CHINCHILLA, GRID), loss="squared_log")
    for k, v in host.params.items():
        assert float(single[k]) == pytest.approx(v, rel=1e-6)
        # The host fit pads 81 points to 96: sums round differently, far inside the tolerances.
        assert float(batch[k]) == pytest.approx(v, rel=1e-6)
    # vmap over starts given per problem, as a warm start from each problem's own guess
    guesses = {k: jnp.asarray([v, v * 1.01]) for k, v in host.params.items()}
    many = jax.vmap(lambda g: functional.fit("chinchilla", x, y, init=g, loss="squared_log"))(guesses)
    assert np.allclose(many["alpha"], host.params["alpha"], rtol=1e-6)


def test_lbfgs_reaches_the_same_optimum(example_frame):
    x = {k: jnp.asarray(example_frame[k].to_numpy()) for k in ("N", "D")}
    y = jnp.asarray(example_frame.loss.to_numpy())
    start = {"E": 2.0, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}
    lm = functional.fit("chinchilla", x, y, init=start, loss="squared_log")
    lbfgs = functional.solve("chinchilla", x, y, init=start, loss="squared_log", method="lbfgs")
    assert int(lbfgs.status) == 0
    assert float(lbfgs.params["alpha"]) == pytest.approx(float(lm["alpha"]), rel=1e-4)


def test_float32_is_refused_with_the_fix():
    x = {"N": np.array([1e8, 1e9, 1e10]), "D": np.array([1e10, 1e11, 1e12])}
    with jax.enable_x64(False), pytest.raises(sj.ScalejaxError, match="enable_x64"):
        functional.fit("chinchilla", x, np.array([3.0, 2.5, 2.2]))


def test_bad_inputs_fail_at_trace_time_with_one_clear_error():
    x = {"N": jnp.asarray([1e8, 1e9, 1e10]), "D": jnp.asarray([1e10, 1e11, 1e12])}
    y = jnp.asarray([3.0, 2.5, 2.2])
    with pytest.raises(sj.ScalejaxError, match="lacks inputs \\['D'\\]"):
        functional.fit("chinchilla", {"N": x["N"]}, y)
    with pytest.raises(sj.ScalejaxError, match="input 'D' has shape \\(2,\\)"):
        functional.fit("chinchilla", {"N": x["N"], "D": x["D"][:2]}, y)
    with pytest.raises(sj.ScalejaxError, match="weights have shape"):
        functional.fit("chinchilla", x, y, weights=jnp.ones(4))
    with pytest.raises(sj.ScalejaxError, match="unknown loss"):
        functional.fit("chinchilla", x, y, loss="l1")
    with pytest.raises(sj.LawError, match="needs starting values for \\['beta'\\]"):
        functional.fit("chinchilla", x, y, init={"E": 1.0, "A": 1.0, "B": 1.0, "alpha": 0.3})
    with pytest.raises(sj.LawError, match="outside its bounds"):
        functional.fit("chinchilla", x, y, init={"E": -1.0, "A": 1.0, "B": 1.0, "alpha": 0.3, "beta": 0.3})
