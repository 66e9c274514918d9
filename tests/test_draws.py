"""Draws as one value: laws and results are equinox Modules, analyses compile once, point fits give
delta-method intervals inside the bounds, posteriors carry their noise and groups, results round-trip."""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest
from helpers import chinchilla_frame

import scalejax as sj

X = {"N": "N", "D": "D"}
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_COMPILES = [0]


def _listen(event, duration, **kwargs):
    if event == COMPILE_EVENT:
        _COMPILES[0] += 1


jax.monitoring.register_event_duration_secs_listener(_listen)


def compiles_of(fn) -> int:
    """Backend compilations while `fn()` runs."""
    before = _COMPILES[0]
    fn()
    return _COMPILES[0] - before


@pytest.fixture(scope="module")
def example():
    return sj.datasets.load_example("chinchilla")


@pytest.fixture(scope="module")
def boot(example, chinchilla_starts):
    return sj.bootstrap("chinchilla", example, x=X, y="loss", n=200, seed=0, starts=chinchilla_starts)


@pytest.fixture(scope="module")
def second_step():
    rng = np.random.default_rng(0)
    loss = np.linspace(2.0, 3.5, 30)
    frame = pd.DataFrame({"L": loss, "acc": 0.2 + 3.0 * loss**-2.0 * np.exp(0.02 * rng.standard_normal(30))})
    return sj.bootstrap("power", frame, x={"x": "L"}, y="acc", n=200, seed=1)


def test_laws_and_results_are_equinox_modules_compared_by_value(example, boot):
    law = sj.laws.get("chinchilla")
    assert isinstance(law, eqx.Module) and isinstance(law.params[0], eqx.Module)
    fit = boot.fit
    for result in (fit, boot):
        assert isinstance(result, eqx.Module) and isinstance(result, sj.Draws)
    # Laws built the same way are equal (and hash equal), so they share compiled code.
    a = sj.joint("power", groups=["a", "b"], shared=["alpha"])
    b = sj.joint("power", groups=["a", "b"], shared=["alpha"])
    assert a == b and hash(a) == hash(b) and a is not b
    assert sj.laws.bnsl_law(2) == sj.laws.bnsl_law(2)
    assert sj.Param("E", lower=0, grid=(1.0, 2.0)) == sj.Param("E", lower=0.0, grid=[1, 2])
    assert sj.joint("power", groups=["a", "b"], shared=["A"]) != a
    assert sj.Loss("huber", 1e-3) == sj.Loss("huber", 1e-3) != sj.Loss("huber", 1e-2)
    assert sj.SolverConfig(max_steps=10) == sj.SolverConfig(max_steps=10)
    with pytest.raises(sj.ScalejaxError, match="max_steps"):
        sj.SolverConfig(max_steps=0)


def test_second_call_of_every_analysis_compiles_nothing(boot, second_step):
    new = {"N": [7e9, 7e10], "D": [1.4e11, 1.4e12]}
    fit = boot.fit

    def ratio(p):
        return {"ratio": p["alpha"] / p["beta"]}

    calls = {
        "interval": lambda: boot.interval(0.9),
        "table": lambda: boot.table(),
        "map": lambda: boot.map(ratio),
        "derived_interval": lambda: boot.derived_interval(ratio),
        "predict": lambda: boot.predict(new),
        "fit.predict": lambda: fit.predict(new),
        "fit.derived_interval": lambda: fit.derived_interval(ratio),
        "compute_optimal": lambda: sj.compute_optimal(boot, [1e21, 1e24]),
        "compute_optimal(fit)": lambda: sj.compute_optimal(fit, [1e21, 1e24]),
        "extrapolate": lambda: sj.analysis.extrapolate(boot, new),
        "extrapolate(compute)": lambda: sj.analysis.extrapolate(boot, compute=[1e22, 1e23]),
        "tokens_for_loss": lambda: sj.analysis.tokens_for_loss(boot, loss=2.1, N=7e9),
        "chain_predict": lambda: sj.analysis.chain_predict(boot, second_step, new),
    }
    for name, call in calls.items():
        call()
        assert compiles_of(call) == 0, name
    # New values of the same shapes compile nothing either.
    assert compiles_of(lambda: sj.compute_optimal(boot, [3e21, 3e24])) == 0
    assert compiles_of(lambda: boot.predict({"N": [1e9, 2e9], "D": [2e10, 4e10]})) == 0


def test_a_rebuilt_joint_law_fits_the_same_problem_without_compiling():
    rng = np.random.default_rng(3)
    x = np.geomspace(1e6, 1e9, 12)
    frame = pd.concat(
        [
            pd.DataFrame({"x": x, "y": e + a * x**-0.3 * np.exp(0.01 * rng.standard_normal(12)), "set": g})
            for g, e, a in [("c4", 2.0, 80.0), ("pile", 1.7, 120.0)]
        ],
        ignore_index=True,
    )

    def run():
        law = sj.joint("power", groups=["c4", "pile"], shared=["alpha"])
        return sj.fit(law, frame, x={"x": "x", "group": "set"}, y="y")

    first = run()
    assert compiles_of(run) == 0
    assert abs(first.params["alpha"] - 0.3) < 0.02


def test_point_fit_intervals_are_delta_method_inside_the_bounds():
    frame = chinchilla_frame()
    fit = sj.fit("chinchilla", frame, x=X, y="loss")
    interval = fit.interval(0.95)
    table = fit.table()
    z = 1.959963984540054
    for p in fit.law.params:
        lo, hi, value = interval.loc[p.name, "lo"], interval.loc[p.name, "hi"], fit.params[p.name]
        assert lo < value < hi, p.name  # non-degenerate
        assert p.contains(lo) and p.contains(hi), p.name  # inside the parameter's domain
        # The half-width in the solver's space is z Gauss-Newton standard errors there: for a log-transformed
        # parameter log(hi / lo) / 2z * value is its standard error; for the others (hi - lo) / 2z is.
        width = np.log(hi / lo) * value if p.transform == "lower" else hi - lo
        assert width / (2 * z) == pytest.approx(table.loc[p.name, "stderr"], rel=1e-9), p.name
    # The standard errors are the Gauss-Newton ones computed independently here: s^2 (J^T J)^-1 with J by
    # central differences of the log-scale residuals in the natural parameters.
    names = list(fit.law.param_names)
    theta = np.array([fit.params[k] for k in names])
    n_, d_, logy = frame.N.to_numpy(), frame.D.to_numpy(), np.log(frame.loss.to_numpy())

    def resid(t):
        e, a, b, alpha, beta = t
        return np.log(e + a * n_**-alpha + b * d_**-beta) - logy

    jac = np.empty((len(logy), len(theta)))
    for i in range(len(theta)):
        h = 1e-6 * max(abs(theta[i]), 1e-3)
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        jac[:, i] = (resid(up) - resid(down)) / (2 * h)
    s2 = np.sum(resid(theta) ** 2) / (len(logy) - len(theta))
    se = np.sqrt(np.diag(s2 * np.linalg.inv(jac.T @ jac)))
    np.testing.assert_allclose(table.loc[names, "stderr"].to_numpy(), se, rtol=1e-4)


def test_a_point_fit_report_table_stays_inside_the_domain(example, chinchilla_starts):
    # A design that leaves E poorly determined: its delta-method interval must still be > 0.
    small = example[example.N < 1e9]
    fit = sj.fit("chinchilla", small, x=X, y="loss", starts=chinchilla_starts)
    interval = fit.interval(0.99)
    assert (interval.lo > 0).loc[["E", "A", "B"]].all()


def test_grouped_posterior_predicts_each_group_from_its_own_draws():
    rng = np.random.default_rng(2)
    xs = np.geomspace(1.0, 100.0, 8)
    frame = pd.concat(
        [
            pd.DataFrame({"x": xs, "y": a * xs**-0.45 * np.exp(0.05 * rng.standard_normal(8)), "set": g})
            for g, a in [("d0", 3.0), ("d1", 8.0)]
        ],
        ignore_index=True,
    )
    post = sj.posterior(
        "powerlaw",
        frame,
        x={"x": "x"},
        y="y",
        group="set",
        shared=["alpha"],
        likelihood="gaussian",
        method="laplace",
        draws=400,
    )
    assert isinstance(post, eqx.Module)
    new = np.array([2.0, 50.0])
    samples = post.samples
    for g in ("d0", "d1"):
        # The law evaluated at this group's draws, computed here from the samples.
        expected = samples[f"A_{g}"].to_numpy()[:, None] * new[None, :] ** -samples["alpha"].to_numpy()[:, None]
        joint = post.predict_draws({"x": new, "group": [g, g]})
        alone = post.group(g).predict_draws({"x": new})
        np.testing.assert_allclose(joint, expected, rtol=1e-12)
        np.testing.assert_allclose(alone, expected, rtol=1e-12)
    # The groups differ, as their coefficients do.
    assert post.predict({"x": [2.0], "group": ["d1"]}).y[0] > 2 * post.predict({"x": [2.0], "group": ["d0"]}).y[0]


def test_posterior_predictive_uses_its_own_noise_draws():
    rng = np.random.default_rng(4)
    xs = np.geomspace(1.0, 100.0, 20)
    frame = pd.DataFrame({"x": xs, "y": 5.0 * xs**-0.4 * np.exp(0.01 * rng.standard_normal(20))})
    # The prior pins sigma near 0.3 whatever the data say (they scatter by 0.01).
    post = sj.posterior(
        "powerlaw",
        frame,
        x={"x": "x"},
        y="y",
        likelihood="gaussian",
        method="laplace",
        draws=2000,
        priors={"sigma": dist.LogNormal(np.log(0.3), 0.01)},
    )
    assert np.median(post.noise["sigma"]) == pytest.approx(0.3, rel=0.05)
    huber_scale = sj.fit("powerlaw", frame, x={"x": "x"}, y="y").noise["sigma"][0]
    assert huber_scale < 0.02
    own = sj.analysis.extrapolate(post, {"x": [200.0]})
    with_fit_scale = sj.analysis.extrapolate(post, {"x": [200.0]}, noise=huber_scale)
    width = np.log(own.y_pred_hi / own.y_pred_lo)[0]
    # The parameter uncertainty plus the posterior's own noise, sigma = 0.3, in quadrature (log scale).
    sd_param = np.log(own.y_hi / own.y_lo)[0] / (2 * 1.96)
    assert width == pytest.approx(2 * 1.96 * np.sqrt(sd_param**2 + 0.3**2), rel=0.05)
    assert width > 2 * np.log(with_fit_scale.y_pred_hi / with_fit_scale.y_pred_lo)[0]
    pred = post.predict({"x": [200.0]})
    assert np.log(pred.pred_hi / pred.pred_lo)[0] == pytest.approx(width, rel=0.1)


def test_every_result_round_trips_exactly(boot, tmp_path):
    fit = boot.fit
    xs = np.geomspace(1.0, 100.0, 10)
    frame = pd.DataFrame({"x": xs, "y": 5.0 * xs**-0.4 * np.exp(0.02 * np.sin(xs))})
    # A scale log-linear in x: the likelihood's slope and the noise model travel with the posterior.
    post = sj.posterior("powerlaw", frame, x={"x": "x"}, y="y", method="laplace", draws=300, noise="log_linear")
    assert post.noise_model.kind == "log_linear" and "sigma_slope" in post.noise
    plain = sj.Draws(fit.law, boot.u[:10], noise={"sigma": np.full(10, 0.01)}, stats={"note": "made by hand"})
    # Calibrations carried by the draws (computed once, then saved with them), and each resample's noise.
    calibrated = boot.calibrated()
    assert calibrated.calibration is not None and calibrated.calibration == fit.calibrated().calibration
    assert np.ptp(boot.noise["sigma"]) > 0 and boot.noise_model == fit.noise_model
    for result in (fit, boot, post, plain, calibrated, fit.calibrated()):
        back = sj.load(sj.save(result, tmp_path / f"{type(result).__name__}.npz"))
        assert type(back) is type(result)
        assert back == result, type(result).__name__
        # Field by field, for a clear failure.
        for field in result.__dataclass_fields__:
            assert (
                eqx.tree_equal(getattr(back, field), getattr(result, field))
                or field in ("data", "fit", "solution")
                or (sj._draws._tree_equal(getattr(back, field), getattr(result, field)))
            ), field
    assert sj.load(sj.save(boot, tmp_path / "b.npz")).n_rescued == boot.n_rescued
    np.testing.assert_array_equal(sj.load(tmp_path / "b.npz").warm_starts, boot.warm_starts)
    back = sj.load(sj.save(calibrated, tmp_path / "c.npz"))
    pd.testing.assert_frame_equal(back.calibration.errors, calibrated.calibration.errors, check_dtype=False)
    pd.testing.assert_frame_equal(back.calibration.folds, calibrated.calibration.folds, check_dtype=False)
    new = {"N": [7e10], "D": [1.4e12]}
    pd.testing.assert_frame_equal(back.predict(new), calibrated.predict(new))


def test_public_names_and_no_module_shadowing():
    import importlib

    assert importlib.import_module("scalejax._fit").fit is sj.fit
    assert callable(sj.fit) and callable(sj.bootstrap) and callable(sj.law)
    namespace: dict = {}
    exec("from scalejax.analysis import *", namespace)
    assert set(sj.analysis.__all__) <= set(namespace)
    assert {"backtest", "chain_predict", "compute_optimal", "extrapolate", "influence"} <= set(namespace)
    assert sj.__version__
