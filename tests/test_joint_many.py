"""Joint fits across groups (shared parameters), batched independent fits, and the LR-annealing areas."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import curve_fit

import scalejax as sj

X = np.geomspace(1e6, 1e9, 6)
GROUP_TRUTH = {"c4": (2.0, 300.0), "pile": (1.5, 800.0), "red pajama": (2.5, 100.0)}


def joint_frame(alpha=0.3, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for g, (e, a) in GROUP_TRUTH.items():
        y = (e + a * X**-alpha) * np.exp(noise * rng.normal(size=X.size))
        parts.append(pd.DataFrame({"x": X, "data set": g, "loss": y}))
    return pd.concat(parts, ignore_index=True)


def test_joint_law_shares_the_exponent_and_recovers_every_group():
    law = sj.joint("power", groups=list(GROUP_TRUTH), shared=["alpha"])
    assert law.param_names == ("E_c4", "E_pile", "E_red_pajama", "A_c4", "A_pile", "A_red_pajama", "alpha")
    assert law.inputs == ("x", "group")
    fit = sj.fit(law, joint_frame(), x={"x": "x", "group": "data set"}, y="loss", loss="squared_log")
    assert fit.params["alpha"] == pytest.approx(0.3, rel=1e-8)
    table = law.group_params(fit.params)
    for g, (e, a) in GROUP_TRUTH.items():
        assert table.loc[g, "E"] == pytest.approx(e, rel=1e-8)
        assert table.loc[g, "A"] == pytest.approx(a, rel=1e-8)
    new = pd.DataFrame({"x": [1e12, 1e12], "data set": ["pile", "c4"]})
    np.testing.assert_allclose(fit.predict(new).y, [1.5 + 800 * 1e12**-0.3, 2.0 + 300 * 1e12**-0.3], rtol=1e-8)


def test_joint_exponent_is_the_pooled_estimate_from_noisy_groups():
    """With noise, the shared alpha matches SciPy's curve_fit of the same pooled model."""
    frame = joint_frame(noise=0.01, seed=3)
    law = sj.joint("power", groups=list(GROUP_TRUTH), shared=["alpha"])
    fit = sj.fit(law, frame, x={"x": "x", "group": "data set"}, y="loss", loss="squared_log")
    codes = frame["data set"].map({g: i for i, g in enumerate(GROUP_TRUTH)}).to_numpy()

    def log_model(xc, e0, e1, e2, a0, a1, a2, alpha):
        e, a = np.array([e0, e1, e2])[codes], np.array([a0, a1, a2])[codes]
        return np.log(e + a * xc**-alpha)

    p0 = [2.0, 1.5, 2.5, 300.0, 800.0, 100.0, 0.3]
    popt, _ = curve_fit(log_model, frame["x"].to_numpy(), np.log(frame["loss"].to_numpy()), p0=p0, maxfev=20000)
    ours = [fit.params[k] for k in law.param_names]
    np.testing.assert_allclose(ours, popt, rtol=1e-4)
    assert fit.params["alpha"] == pytest.approx(0.3, abs=0.05)


def test_joint_law_bootstraps_unchanged():
    law = sj.joint("power", groups=list(GROUP_TRUTH), shared=["alpha"])
    frame = joint_frame(noise=0.01, seed=1)
    boot = sj.bootstrap(law, frame, x={"x": "x", "group": "data set"}, y="loss", n=40, seed=0, scheme="bayesian")
    interval = boot.interval(0.95)
    assert list(interval.index) == list(law.param_names)
    assert interval.loc["alpha", "lo"] < boot.fit.params["alpha"] < interval.loc["alpha", "hi"]


def test_joint_rejects_unknown_labels_and_parameters():
    with pytest.raises(sj.LawError, match=r"shared parameters \['gamma'\] are not parameters"):
        sj.joint("power", groups=["a", "b"], shared=["gamma"])
    with pytest.raises(sj.LawError, match="group labels repeat"):
        sj.joint("power", groups=["a", "a"])
    law = sj.joint("power", groups=["c4", "pile"], shared=["alpha"])
    with pytest.raises(sj.DataError, match=r"column 'data set' .* labels not among the joint law's groups \(rows 12"):
        sj.fit(law, joint_frame(), x={"x": "x", "group": "data set"}, y="loss")


# --- batched independent fits ---------------------------------------------------


def sigmoid(p, loss):
    return p["a"] / (1 + np.exp(-p["k"] * (loss - p["L0"]))) + p["b"]


def task_frame(n_tasks, seed=0, noise=0.0):
    rng = np.random.default_rng(seed)
    truths, parts = {}, []
    for t in range(n_tasks):
        p = {
            "a": rng.uniform(0.4, 0.7),
            "b": rng.uniform(0.1, 0.3),
            "k": rng.uniform(-9, -4),
            "L0": rng.uniform(0.9, 1.3),
        }
        loss = np.sort(rng.uniform(0.5, 1.8, rng.integers(8, 30)))
        acc = sigmoid(p, loss) + noise * rng.normal(size=loss.size)
        # sigmoid_floor's convention (Bhagia et al.): b is the top, a < 0 the drop to the floor, k > 0.
        p = {"a": -p["a"], "b": p["a"] + p["b"], "k": -p["k"], "L0": p["L0"]}
        truths[f"task{t:03d}"] = p
        parts.append(pd.DataFrame({"task": f"task{t:03d}", "bpb": loss, "acc": acc}))
    return truths, pd.concat(parts, ignore_index=True)


def test_fit_many_recovers_each_task_from_ragged_groups():
    truths, frame = task_frame(12)
    table = sj.fit_many("sigmoid_floor", frame, x={"L": "bpb"}, y="acc", by="task", loss="squared")
    assert list(table.index) == sorted(truths)
    assert (table["status"] == "converged").all()
    assert table["n_points"].to_dict() == frame.groupby("task").size().to_dict()
    for task, p in truths.items():
        for k, v in p.items():
            assert table.loc[task, k] == pytest.approx(v, rel=1e-6), (task, k)


def test_fit_many_matches_scipy_per_task_with_noise():
    truths, frame = task_frame(5, seed=2, noise=0.01)
    table = sj.fit_many("sigmoid_floor", frame, x={"L": "bpb"}, y="acc", by="task", loss="squared")
    for task, group in frame.groupby("task"):
        p0 = [truths[task][k] for k in ("a", "b", "k", "L0")]
        popt, _ = curve_fit(
            lambda x, a, b, k, l0: a / (1 + np.exp(-k * (x - l0))) + b, group["bpb"], group["acc"], p0=p0, maxfev=20000
        )
        ours = table.loc[task, ["a", "b", "k", "L0"]].to_numpy(dtype=float)
        # Same least-squares optimum; the objective is flat along some directions, so compare predictions too.
        np.testing.assert_allclose(ours, popt, rtol=2e-3)


def test_fit_many_names_groups_too_small_to_fit():
    _, frame = task_frame(3)
    frame = pd.concat([frame, pd.DataFrame({"task": ["tiny"] * 2, "bpb": [1.0, 1.2], "acc": [0.3, 0.25]})])
    with pytest.raises(sj.DataError, match=r"1 groups of column 'task' have fewer weighted points .* 'tiny' \(2\)"):
        sj.fit_many("sigmoid_floor", frame, x={"L": "bpb"}, y="acc", by="task", loss="squared")


# --- learning-rate annealing ------------------------------------------------------


def areas_reference(lr, decay=0.999):
    s1, s2, m = np.cumsum(lr), np.zeros_like(lr), 0.0
    total = 0.0
    for i in range(lr.size):
        m = decay * m + ((lr[i - 1] if i else lr[0]) - lr[i])
        total += m
        s2[i] = total
    return s1, s2


def schedules(steps=2000, peak=2e-3):
    s = np.arange(1, steps + 1)
    cosine = peak * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * s / steps)))
    wsd = np.where(s < 0.8 * steps, peak, peak * (1 - 0.9 * (s - 0.8 * steps) / (0.2 * steps)))
    return cosine, wsd


def test_annealing_areas_match_a_python_loop():
    cosine, wsd = schedules()
    for lr in (cosine, wsd):
        ours = sj.laws.annealing_areas(lr)
        for a, b in zip(ours, areas_reference(lr), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_lr_annealing_fit_on_one_schedule_predicts_another():
    truth = {"L0": 2.2, "A": 0.6, "alpha": 0.45, "C": 0.3}
    cosine, wsd = schedules()

    def curve(lr):
        s1, s2 = areas_reference(lr)
        return s1, s2, truth["L0"] + truth["A"] * s1 ** -truth["alpha"] - truth["C"] * s2

    s1, s2, y = curve(cosine)
    keep = slice(50, None, 10)  # skip the first steps, thin the curve
    fit = sj.fit("lr_annealing", x={"S1": s1[keep], "S2": s2[keep]}, y=y[keep], loss="squared_log")
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-5), k
    w1, w2, wy = curve(wsd)
    np.testing.assert_allclose(fit.predict({"S1": w1, "S2": w2}).y[50:], wy[50:], rtol=1e-6)


def test_fit_many_does_not_call_equal_rows_of_different_tasks_duplicates():
    """Two tasks measured at the same points with the same values are different runs (no DataWarning)."""
    truths, frame = task_frame(1)
    twin = frame.assign(task="twin")
    table = sj.fit_many("sigmoid_floor", pd.concat([frame, twin]), x={"L": "bpb"}, y="acc", by="task", loss="squared")
    assert table.loc["twin", "a"] == pytest.approx(truths["task000"]["a"], rel=1e-6)
