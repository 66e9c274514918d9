"""The global strategy (screen every start, polish the best distinct ones until confirmed) against the exhaustive grid.

The cases are the fits the tests and benchmarks run on ../shared/data, as
`benchmarks/global_strategy.py` lists them; each skips when its data are absent.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import scalejax as sj
from scalejax._objectives import make_loss
from scalejax.solvers import CONVERGED, solve_starts
from scalejax.solvers._global import CONFIRM, FIRST_ROUND

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from global_strategy import DATA, cases, run_case

QUICK = [c for c in cases() if c.quick]


@pytest.mark.parametrize("case", QUICK, ids=[c.name for c in QUICK])
def test_auto_reaches_the_exhaustive_grids_best_objective_on_real_data(case):
    if not (DATA / case.data).exists():
        pytest.skip(f"real data not found at {(DATA / case.data).resolve()} (../shared/data is absent)")
    out = run_case(case, timed=False)
    assert abs(out.best_auto - out.best_all) <= 1e-9 * abs(out.best_all), out
    assert out.polished <= out.n_starts


def _power_problem(n_points=12, noise=0.0, seed=0):
    law = sj.laws.get("power")
    x = np.geomspace(1e6, 1e9, n_points)
    rng = np.random.default_rng(seed)
    y = (2.0 + 300.0 * x**-0.3) * np.exp(noise * rng.normal(size=n_points))
    return law, {"x": x}, np.log(y)


def test_a_well_posed_fit_polishes_one_round_and_reaches_the_truth():
    law, x, logy = _power_problem()
    u0 = law.start_grid()
    assert len(u0) > FIRST_ROUND
    with jax.enable_x64(True):
        sol = solve_starts(law, make_loss("squared_log"), u0, np.ones(12), x, logy)
    assert len(sol.status) == FIRST_ROUND
    np.testing.assert_array_equal(sol.problem, 0)
    assert len(set(sol.start.tolist())) == FIRST_ROUND
    # Each lane is the start it says it is: its solve from that start gives the same optimum.
    best = int(np.argmin(np.where(sol.status == CONVERGED, sol.objective, np.inf)))
    params = law.natural(sol.u[best])
    np.testing.assert_allclose([params["E"], params["A"], params["alpha"]], [2.0, 300.0, 0.3], rtol=1e-6)


def test_duplicated_starts_count_once_towards_confirmation():
    """Twenty copies of the best start are one candidate: round 1 polishes it once, then other distinct starts."""
    law, x, logy = _power_problem(noise=0.01)
    grid = law.start_grid()
    loss = make_loss("squared_log")
    # The start with the lowest objective, computed here in NumPy, is the first a screen picks.
    p = law.natural(grid)
    pred = p["E"][:, None] + p["A"][:, None] * x["x"][None, :] ** -p["alpha"][:, None]
    screened = 0.5 * np.sum((np.log(pred) - logy) ** 2, axis=1)
    u0 = np.vstack([np.repeat(grid[np.argmin(screened)][None], 20, axis=0), grid])
    with jax.enable_x64(True):
        sol = solve_starts(law, loss, u0, np.ones(12), x, logy)
    copies = np.sum(sol.start < 20)
    assert copies == 1, sol.start
    ok = sol.status == CONVERGED
    f_best = sol.objective[ok].min()
    assert np.sum(ok & (sol.objective <= f_best * (1 + 1e-9))) >= CONFIRM


def test_few_starts_and_strategy_all_polish_every_start():
    law, x, logy = _power_problem()
    loss = make_loss("squared_log")
    grid = law.start_grid()
    with jax.enable_x64(True):
        few = solve_starts(law, loss, grid[:5], np.ones(12), x, logy)
        everything = solve_starts(law, loss, grid, np.ones(12), x, logy, strategy="all")
    np.testing.assert_array_equal(few.start, np.arange(5))
    np.testing.assert_array_equal(everything.start, np.arange(len(grid)))
    with pytest.raises(sj.ScalejaxError, match="unknown strategy"):
        solve_starts(law, loss, grid, np.ones(12), x, logy, strategy="best")


def test_a_best_never_confirmed_polishes_every_start():
    """One step per lane (max_steps=1): no lane converges, so no optimum is confirmed and every start runs."""
    law, x, logy = _power_problem(noise=0.01)
    loss = make_loss("squared_log")
    grid = law.start_grid()
    with jax.enable_x64(True):
        sol = solve_starts(law, loss, grid, np.ones(12), x, logy, config=sj.solvers.SolverConfig(max_steps=1))
    assert not np.any(sol.status == CONVERGED)
    np.testing.assert_array_equal(np.sort(sol.start), np.arange(len(grid)))


class _NoScreen:
    distinct_points = 1


def _verdict(objective, status, distinct):
    """`_Rounds.verdict` on one problem of 20 starts, after one round with these lanes."""
    from scalejax.solvers import Solution
    from scalejax.solvers._global import _Rounds

    law = sj.laws.get("power")
    n = len(objective)
    rounds = _Rounds(law, _NoScreen(), np.zeros((20, 3)), np.arange(20.0)[None])
    rounds.polished[0, :n] = True
    rounds.pending = np.asarray(distinct)
    u = np.zeros((n, 3))
    rounds.record(
        Solution(u, np.asarray(objective, float), np.asarray(status), np.ones(n, int), np.arange(n), np.zeros(n, int))
    )
    done, exhaust = rounds.verdict(np.array([0]))
    return bool(done[0]), bool(exhaust[0])


def test_the_confirmation_rule():
    from scalejax.solvers import MAX_STEPS

    c, m = CONVERGED, MAX_STEPS
    # Three distinct starts at the best (to 1e-9): confirmed.
    assert _verdict([1.0, 1.0 + 1e-10, 1.0, 2.0], [c, c, c, c], [True] * 4) == (True, False)
    # Only two of them distinct: not yet.
    assert _verdict([1.0, 1.0, 1.0, 2.0], [c, c, c, c], [True, True, False, True]) == (False, False)
    # 1e-6 apart is not the same optimum.
    assert _verdict([1.0, 1.0 + 1e-6, 1.0, 2.0], [c, c, c, c], [True] * 4) == (False, False)
    # A lane that did not converge went lower: no optimum can be confirmed, polish every start.
    assert _verdict([1.0, 1.0, 1.0, 0.5], [c, c, c, m], [True] * 4) == (False, True)
    # One that stopped higher changes nothing.
    assert _verdict([1.0, 1.0, 1.0, 1.5], [c, c, c, m], [True] * 4) == (True, False)


def test_fit_many_auto_matches_all_group_by_group():
    frame = _tasks(40)
    kwargs = dict(x={"L": "bpb"}, y="acc", by="task", loss="squared")
    auto = sj.fit_many("sigmoid_floor", frame, **kwargs)
    full = sj.fit_many("sigmoid_floor", frame, strategy="all", **kwargs)
    np.testing.assert_allclose(auto["objective"], full["objective"], rtol=1e-9)
    assert (auto["n_starts"] < full["n_starts"]).all()
    assert (full["n_starts"] == sj.laws.get("sigmoid_floor").n_starts).all()


def _tasks(n_tasks, seed=0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    parts = []
    for t in range(n_tasks):
        a, b, k, l0 = rng.uniform(0.4, 0.7), rng.uniform(0.1, 0.3), rng.uniform(-9, -4), rng.uniform(0.9, 1.3)
        loss = np.sort(rng.uniform(0.5, 1.8, rng.integers(8, 41)))
        acc = a / (1 + np.exp(-k * (loss - l0))) + b + 0.01 * rng.normal(size=loss.size)
        parts.append(pd.DataFrame({"task": f"t{t:03d}", "bpb": loss, "acc": np.clip(acc, 1e-3, None)}))
    return pd.concat(parts, ignore_index=True)
