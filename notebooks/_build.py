"""Write the notebooks from the cell sources below: `python notebooks/_build.py`.

The notebooks are committed without outputs; CI executes them with
`SCALEJAX_QUICK=1` (small bootstraps and chains). Edit the cells here, not the
.ipynb files, then rebuild.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

SETUP = """import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import scalejax as sj

QUICK = os.environ.get("SCALEJAX_QUICK") == "1"  # CI runs the notebooks with small settings
SHARED = Path("..").resolve().parent / "shared" / "data"  # the public data beside the project, if present
print("scalejax", sj.__version__, "| quick mode" if QUICK else "", "| shared data:", SHARED.is_dir())"""

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {}

NOTEBOOKS["01_chinchilla_bootstrap"] = [
    (
        "md",
        """# Chinchilla replication with a bootstrap

Fit Hoffmann et al.'s parametric law `L(N, D) = E + A/N^alpha + B/D^beta` with
their protocol (Huber loss on log loss, delta 1e-3, summed; 4,500 starts), then
bootstrap 4,000 resamples of the runs in one vectorised call, and turn the
draws into a compute-optimal allocation with intervals.

Data: Epoch AI's digitised Chinchilla runs from `../shared/data` when present
(240 runs after dropping the 5 highest losses, as Besiroglu et al. 2024 did),
otherwise the embedded synthetic example generated from their refit.""",
    ),
    ("code", SETUP),
    (
        "code",
        """path = SHARED / "chinchilla_epoch" / "svg_extracted_data.csv"
if path.is_file():
    frame, source = sj.datasets.read_epoch_chinchilla(path), "Epoch AI's digitised Chinchilla runs"
else:
    frame, source = sj.datasets.load_example("chinchilla"), "embedded synthetic example"
print(source, len(frame), "runs")
frame.describe().T[["min", "max"]]""",
    ),
    ("md", "## The fit from Hoffmann et al.'s 4,500 starts, all solved in one compiled call"),
    (
        "code",
        """fit = sj.fit("chinchilla", frame, x={"N": "N", "D": "D"}, y="loss")
print(fit)
published = pd.DataFrame(
    {
        "Hoffmann et al. 2022": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
        "Besiroglu et al. 2024": {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658},
    }
)
fit.table().join(published)""",
    ),
    ("md", "## 4,000 resamples at once"),
    (
        "code",
        """boot = sj.bootstrap(fit, n=200 if QUICK else 4000, seed=0)
print(boot, "| resamples rescued by another warm start:", boot.n_rescued)
boot.table()""",
    ),
    (
        "code",
        """samples = boot.samples
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
axes[0].scatter(samples.alpha, samples.beta, s=3, alpha=0.4)
axes[0].set(xlabel="alpha", ylabel="beta", title="bootstrap draws")
axes[1].hist(samples.beta / (samples.alpha + samples.beta), bins=40)
axes[1].set(xlabel="a = beta / (alpha + beta)", title="N* grows as C^a")
fig.tight_layout()""",
    ),
    ("code", "sj.report.plot_fit(boot)"),
    (
        "md",
        """## Compute-optimal allocation with intervals

The closed form of the Chinchilla law (Hoffmann et al., Appendix D), evaluated
for every draw; the central row is the full-data fit.""",
    ),
    (
        "code",
        """budgets = [1e21, 1e22, 1e23, 5.76e23, 1e24, 1e25]
sj.compute_optimal(boot, compute=budgets)""",
    ),
    (
        "code",
        """forecast = boot.predict({"N": [70e9], "D": [1.4e12]})
print(
    f"loss of a 70B-parameter, 1.4T-token run: {forecast.y[0]:.4f} "
    f"(95% interval {forecast.lo[0]:.4f} to {forecast.hi[0]:.4f})"
)""",
    ),
    ("code", "sj.report.plot_compute_optimal(boot)"),
    ("md", "The same in one self-contained HTML report (also `scalejax report CSV ... --out report.html`):"),
    (
        "code",
        """out = sj.write_report(boot, targets={"N": [70e9], "D": [1.4e12]}, out=Path("chinchilla_report.html").resolve())
print("wrote", out.name, f"({out.stat().st_size / 1e6:.1f} MB)")
out.unlink()  # keep the notebook folder clean""",
    ),
]

NOTEBOOKS["02_bayesian_extrapolation"] = [
    (
        "md",
        """# Bayesian extrapolation with a posterior predictive

A posterior over the Chinchilla law's parameters (NumPyro NUTS, Student-t
likelihood on log loss, the law's documented weakly-informative priors),
compared with the bootstrap, and a posterior predictive forecast of a large
run: parameter uncertainty plus the run-to-run noise the likelihood fitted.""",
    ),
    ("code", SETUP),
    (
        "code",
        """path = SHARED / "chinchilla_epoch" / "svg_extracted_data.csv"
frame = sj.datasets.read_epoch_chinchilla(path) if path.is_file() else sj.datasets.load_example("chinchilla")
x = {"N": "N", "D": "D"}
fit = sj.fit("chinchilla", frame, x=x, y="loss")
post = sj.posterior("chinchilla", frame, x=x, y="loss", init=fit, draws=300 if QUICK else 1000, seed=0)
print(post)
{k: v for k, v in post.diagnostics.items() if k in ("rhat_max", "ess_min", "divergences")}""",
    ),
    ("code", "post.table()"),
    (
        "md",
        "## Posterior and bootstrap intervals side by side (95%)",
    ),
    (
        "code",
        """boot = sj.bootstrap(fit, n=200 if QUICK else 4000, seed=0)
both = post.interval(0.95).add_suffix("_posterior").join(boot.interval(0.95).add_suffix("_bootstrap"))
both["median_posterior"] = post.samples.median()
both["fit"] = pd.Series(fit.params)
both""",
    ),
    (
        "code",
        """fig, axes = plt.subplots(1, 5, figsize=(13, 2.8))
for ax, name in zip(axes, fit.law.param_names, strict=True):
    ax.hist(post.samples[name], bins=40, density=True, alpha=0.6, label="posterior")
    ax.hist(boot.samples[name], bins=40, density=True, alpha=0.6, label="bootstrap")
    ax.axvline(fit.params[name], color="k", lw=1)
    ax.set_title(name)
axes[0].legend(fontsize=7)
fig.tight_layout()""",
    ),
    (
        "md",
        """## Forecast with a posterior predictive interval

`predict` gives the median and a 95% interval that adds the fitted noise to
the parameter uncertainty; `extrapolate` separates the two.""",
    ),
    (
        "code",
        """targets = pd.DataFrame({"N": [7e9, 70e9, 400e9], "D": [140e9, 1.4e12, 8e12]})
post.predict(targets)""",
    ),
    ("code", "sj.analysis.extrapolate(post, targets)"),
    ("code", "sj.report.plot_extrapolation(post, targets)"),
]

NOTEBOOKS["03_overtraining_downstream"] = [
    (
        "md",
        """# Over-training and a two-step downstream forecast

Gadre et al. (2024) fit `L(C, M) = E + (a M^eta + b M^-eta) C^-eta` (C = 6ND
FLOPs, M = D/N tokens per parameter) on small models trained far past
Chinchilla-optimal, and predict larger over-trained models. Then a second law
links the loss to downstream top-1 error, `Err(L) = eps - k exp(-gamma L)`,
and the two steps chain, each draw of the first feeding the same draw of the
second, so the forecast's interval carries both steps' uncertainty.

Data: the paper's RedPajama runs from `../shared/data/gadre_overtraining`
when present; otherwise a synthetic table drawn from scalejax's fit to them
(labelled as such).""",
    ),
    ("code", SETUP),
    (
        "code",
        """import numpy as np

root = SHARED / "gadre_overtraining"
if root.is_dir():
    runs = sj.datasets.read_gadre_overtraining(root)
    runs, source = runs[runs.data == "rpj"].reset_index(drop=True), "Gadre et al. 2024, RedPajama runs"
else:  # synthetic stand-in: the laws fitted to those runs, with 0.5% and 1% noise
    rng = np.random.default_rng(0)
    n, m = np.meshgrid([1.1e7, 7.9e7, 1.5e8, 4.1e8, 1.4e9, 6.9e9], [5, 10, 20, 40, 80, 160, 320, 640])
    n, m = n.ravel(), m.ravel()
    c = 6 * n * n * m
    loss = 1.7434 + (169.80 * m**0.12947 + 291.65 * m**-0.12947) * c**-0.12947
    runs = pd.DataFrame({"N": n, "D": n * m, "M": m, "loss": loss * np.exp(rng.normal(0, 0.005, n.size))})
    runs["err"] = (0.7576 - 2.0669 * np.exp(-1.0555 * runs.loss)) * np.exp(rng.normal(0, 0.01, n.size))
    source = "synthetic (laws fitted to Gadre et al.'s RedPajama runs)"
small, big = runs[runs.N < 1e9], runs[runs.N > 1e9]
print(source, "|", len(small), "small models to fit,", len(big), "large ones to predict")""",
    ),
    ("md", "## Step 1: the over-training law, fitted on the small models only"),
    (
        "code",
        """n_boot = 100 if QUICK else 1000
loss_boot = sj.bootstrap("overtrain", small, x={"N": "N", "D": "D"}, y="loss", n=n_boot, seed=0)
print(loss_boot)
forecast = loss_boot.predict(big)  # keeps big's index
table = big[["N", "M", "loss"]].join(forecast)
table["rel_error"] = table.y / table.loss - 1
table["covered"] = (table.lo <= table.loss) & (table.loss <= table.hi)
table""",
    ),
    ("md", "## Step 2: loss to downstream error, and the chained forecast"),
    (
        "code",
        """err_boot = sj.bootstrap("downstream_exp", small, x={"L": "loss"}, y="err", n=n_boot, seed=1)
chained = sj.analysis.chain_predict(loss_boot, err_boot, big[["N", "D"]])
chained.index = big.index
chained.join(big[["loss", "err"]])""",
    ),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(6, 4))
ax.scatter(small.loss, small.err, s=12, label="small models (fitted)")
ax.scatter(big.loss, big.err, s=30, marker="s", label="large models (held out)")
ax.errorbar(
    chained.mid,
    chained.y,
    xerr=[chained.mid - chained.mid_lo, chained.mid_hi - chained.mid],
    yerr=[chained.y - chained.lo, chained.hi - chained.y],
    fmt="none",
    ecolor="k",
    label="two-step forecast, 95%",
)
grid = np.linspace(runs.loss.min() * 0.97, runs.loss.max(), 100)
ax.plot(grid, err_boot.fit.predict({"L": grid}).y, color="grey", lw=1)
ax.set(xlabel="C4 validation loss", ylabel="mean top-1 error", title="loss -> downstream error")
ax.legend(fontsize=8)""",
    ),
]

NOTEBOOKS["04_custom_law_joint_fit"] = [
    (
        "md",
        """# A law of your own, and a joint fit across data sets

A custom law is a plain JAX function with declared parameters: no
derivatives by hand. Here: a power law in compute with an irreducible floor,
fitted to three data sets that share the exponent, as one problem, against
three separate fits.""",
    ),
    ("code", SETUP),
    (
        "code",
        """import jax.numpy as jnp
import numpy as np


@sj.law(
    params=[
        sj.Param("E", lower=0, grid=(0.5, 2.0), doc="irreducible loss"),
        sj.Param("A", lower=0, grid=(10.0, 1e3), doc="scale"),
        sj.Param("alpha", lower=0, upper=2, grid=(0.1, 0.3), doc="compute exponent"),
    ],
    inputs=["C"],
    equation="L(C) = E + A C^-alpha",
)
def compute_law(p, x):
    return p["E"] + p["A"] * jnp.exp(-p["alpha"] * jnp.log(x["C"]))


# Three data sets with one true exponent (0.15) and their own floors and scales.
rng = np.random.default_rng(0)
truth = {"web": (1.8, 60.0), "code": (0.9, 40.0), "books": (2.2, 90.0)}
rows = []
for name, (e, a) in truth.items():
    c = np.geomspace(1e17, 1e21, 6 if name == "books" else 12)  # books: few, noisy runs
    noise = 0.03 if name == "books" else 0.01
    rows.append(pd.DataFrame({"set": name, "C": c, "loss": (e + a * c**-0.15) * np.exp(rng.normal(0, noise, c.size))}))
frame = pd.concat(rows, ignore_index=True)
frame.groupby("set").size()""",
    ),
    ("md", "## Separate fits: one batched call over the three data sets"),
    (
        "code",
        """separate = sj.fit_many(compute_law, frame, x={"C": "C"}, y="loss", by="set")
separate""",
    ),
    ("md", "## Joint fit: the exponent shared, the rest per data set"),
    (
        "code",
        """joint = sj.joint(compute_law, groups=["web", "code", "books"], shared=["alpha"])
n_boot = 100 if QUICK else 1000
boot = sj.bootstrap(joint, frame, x={"C": "C", "group": "set"}, y="loss", n=n_boot, seed=0, scheme="rows")
joint.group_params(boot.fit.params)""",
    ),
    (
        "code",
        """books = frame[frame.set == "books"]
alone = sj.bootstrap(compute_law, books, x={"C": "C"}, y="loss", n=n_boot, seed=0)
pd.DataFrame(
    {
        "books alone": alone.interval(0.95).loc["alpha"],
        "joint (shared)": boot.interval(0.95).loc["alpha"],
    }
).T.assign(width=lambda t: t.hi - t.lo, truth=0.15)""",
    ),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(6, 4))
grid = np.geomspace(1e17, 1e22, 100)
for name, group in frame.groupby("set"):
    ax.scatter(group.C, group.loss, s=14, label=name)
    band = boot.predict({"C": grid, "group": [name] * grid.size})
    ax.plot(grid, band.y)
    ax.fill_between(grid, band.lo, band.hi, alpha=0.2)
ax.set(xscale="log", xlabel="compute C (FLOPs)", ylabel="loss", title="joint fit, shared exponent, 95% bands")
ax.legend()""",
    ),
]

NOTEBOOKS["05_experiment_design"] = [
    (
        "md",
        """# Which run next? Experiment design from the draws

Given a fitted law and its uncertainty, rank candidate new runs by how much
each would shrink the interval of a quantity we care about, per FLOP spent,
and pick the next few under a budget.

Here the target is the loss forecast for a 70B-parameter, 1.4T-token run, and
the candidates are runs at a few model sizes and token counts.""",
    ),
    ("code", SETUP),
    (
        "code",
        """frame = sj.datasets.load_example("chinchilla")
small = frame[frame.C < frame.C.quantile(0.6)]  # pretend only the cheaper runs exist yet
fit = sj.fit("chinchilla", small, x={"N": "N", "D": "D"}, y="loss")
boot = sj.bootstrap(fit, n=100 if QUICK else 1000, seed=1)
target = {"N": 70e9, "D": 1.4e12}
print(len(small), "runs;", boot)
boot.predict({"N": [target["N"]], "D": [target["D"]]})""",
    ),
    (
        "code",
        """import numpy as np

n_grid, d_grid = np.meshgrid(np.geomspace(2e8, 1e10, 6), np.geomspace(5e9, 4e11, 6))
candidates = pd.DataFrame({"N": n_grid.ravel(), "D": d_grid.ravel()})
plan = sj.analysis.design(boot, candidates, target, budget=5e21)
print(f"interval width now {plan.attrs['width_now']:.4f}; FLOPs spent by the picks {plan.attrs['spent']:.3g}")
plan.head(8)""",
    ),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(5.5, 4))
sc = ax.scatter(plan.N, plan.D, c=np.log10(plan.reduction_per_flop.clip(lower=1e-300)), cmap="viridis")
picked = plan[plan.pick > 0]
ax.scatter(picked.N, picked.D, s=160, facecolors="none", edgecolors="red", label="picked")
ax.scatter(small.N, small.D, s=8, c="grey", label="existing runs")
ax.set(xscale="log", yscale="log", xlabel="N", ylabel="D", title="log10 width reduction per FLOP")
fig.colorbar(sc)
ax.legend(loc="lower right")""",
    ),
    (
        "md",
        """## Which existing runs drive the forecast?

The implicit-function derivative of the forecast with respect to each run's
weight: how far the forecast moves if that run counted a little more.""",
    ),
    ("code", """sj.analysis.influence(fit, target).head(10)"""),
]


NOTEBOOKS["06_differentiable_fits"] = [
    (
        "md",
        """# Differentiable fits: every run's pull on a forecast, and where to put the next runs

`scalejax.functional.fit(law, x, y, weights=..., init=...)` is a law fit written
as a pure JAX function: it runs under `jax.jit`, `jax.vmap` and `jax.grad`, and its
derivatives with respect to the inputs, the observed losses and the run weights come
from the implicit-function theorem at the optimum (one small linear solve, however
many solver steps the fit took).

This notebook uses it to ask two questions of the Chinchilla runs:
1. How does the compute-optimal model size `N*` at 1e24 FLOPs, and the loss it
   reaches, move when one run counts a little more, or its loss is a little higher?
2. At a fixed budget per run, which model sizes should the next three runs have so
   that the interval of `N*` shrinks most? We answer it by differentiating the
   expected interval width with respect to the sizes.""",
    ),
    ("code", SETUP),
    (
        "code",
        """import jax
import jax.numpy as jnp
import numpy as np
import optax

# The functional core needs float64 and, being a pure function, cannot switch it on itself.
jax.config.update("jax_enable_x64", True)

path = SHARED / "chinchilla_epoch" / "svg_extracted_data.csv"
if path.is_file():
    frame, source = sj.datasets.read_epoch_chinchilla(path), "Epoch AI's digitised Chinchilla runs"
else:
    frame, source = sj.datasets.load_example("chinchilla"), "embedded synthetic example"
print(source, len(frame), "runs")
law = sj.laws.get("chinchilla")
x = {"N": jnp.asarray(frame.N.to_numpy()), "D": jnp.asarray(frame.D.to_numpy())}
y = jnp.asarray(frame.loss.to_numpy())""",
    ),
    (
        "md",
        """## One fit, as a JAX function

From Hoffmann et al.'s 4,500-start grid with their Huber loss (delta 1e-3 on log
loss, summed), the defaults of both entry points: the same solver, so the same
optimum as `sj.fit`, to its stopping tolerance. `solve` returns the status and
objective beside the parameters (`fit` returns only the parameters).""",
    ),
    (
        "code",
        """out = jax.jit(sj.functional.solve, static_argnums=0)(law, x, y)
print(sj.functional.STATUS_NAMES[int(out.status)], "|", int(out.n_converged), "starts converged")
host = sj.fit(law, frame, x={"N": "N", "D": "D"}, y="loss", progress=False)
best = {k: float(v) for k, v in out.params.items()}
pd.DataFrame({"functional.solve": best, "sj.fit": host.params}).T[list(law.param_names)]""",
    ),
    (
        "md",
        """## How each run moves the 1e24-FLOP forecast

`forecast(w, y)` refits the law with run weights `w` and losses `y` (warm-started at
the optimum) and returns `log N*` and the loss at the compute-optimal split of 1e24
FLOPs. One `jax.jacrev` gives the derivative of both with respect to every run's
weight and every run's loss.""",
    ),
    (
        "code",
        """def forecast(w, y):
    p = sj.functional.fit(law, x, y, weights=w, init=best)
    optimum = sj.analysis.chinchilla_compute_optimal(p, 1e24)
    return {"log_N": jnp.log(optimum["N"]), "loss": optimum["loss"]}


ones = jnp.ones(len(y))
value = jax.jit(forecast)(ones, y)
jac = jax.jit(jax.jacrev(forecast, argnums=(0, 1)))(ones, y)
runs = frame.assign(
    d_logN_d_w=np.asarray(jac["log_N"][0]),
    d_loss_d_w=np.asarray(jac["loss"][0]),
    d_logN_d_logy=np.asarray(jac["log_N"][1] * y),  # d / d log y = y d / dy
    d_loss_d_logy=np.asarray(jac["loss"][1] * y),
)
print(f"N* = {np.exp(float(value['log_N'])):.3g} parameters, loss {float(value['loss']):.4f} at 1e24 FLOPs")
inside = int((runs.d_logN_d_logy != 0).sum())
print(
    f"{inside} of {len(runs)} runs move the fit through their loss: only residuals inside the Huber band "
    "(|r| < 1e-3) have a slope; the others pull with a fixed force, through their weight only."
)
pulls = runs.d_logN_d_w
print(
    f"{(pulls > 0).sum()} runs raise N* when counted more, {(pulls < 0).sum()} lower it; the pulls sum to "
    f"{pulls.sum():.1e} (scaling every weight by one factor leaves the fit unchanged)"
)
runs.reindex(runs.d_logN_d_w.abs().sort_values(ascending=False).index).head(10)""",
    ),
    (
        "code",
        """fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for ax, column, title in [
    (axes[0], "d_logN_d_w", "d log N*(1e24) / d weight"),
    (axes[1], "d_loss_d_w", "d loss*(1e24) / d weight"),
]:
    limit = runs[column].abs().max()
    sc = ax.scatter(runs.C, runs.loss, c=runs[column], cmap="coolwarm", vmin=-limit, vmax=limit, s=14)
    ax.set(xscale="log", xlabel="training FLOPs", ylabel="final loss", title=title)
    fig.colorbar(sc, ax=ax)
fig.tight_layout()""",
    ),
    (
        "md",
        """The runs with the largest models pull hardest on the extrapolation, most of
them towards a smaller `N*`.

## The linearisation against a refit

Dropping the run with the largest pull, to first order, changes `log N*` by
`-d log N* / d w`; the refit (the same function at weight 0) says how far that
linearisation carries.""",
    ),
    (
        "code",
        """top = int(np.argmax(np.abs(runs.d_logN_d_w.to_numpy())))
dropped = jax.jit(forecast)(ones.at[top].set(0.0), y)
pd.DataFrame(
    {
        "first order": [float(value["log_N"] - jac["log_N"][0][top]), float(value["loss"] - jac["loss"][0][top])],
        "refit without the run": [float(dropped["log_N"]), float(dropped["loss"])],
        "with it": [float(value["log_N"]), float(value["loss"])],
    },
    index=["log N*", "loss*"],
)""",
    ),
    (
        "md",
        """## Derivatives and resampling

The same derivatives give a bootstrap's spread without resampling: for multinomial
resampling weights the variance of a smooth statistic is about `sum_i (dq / dw_i)^2`
(Efron's infinitesimal jackknife). `jax.vmap` over the weight vectors runs the actual
bootstrap as one compiled call, to compare. With squared log loss the two agree; with
Hoffmann et al.'s Huber loss the linearisation overstates the spread: a resample moves
runs across the narrow Huber band, so the optimum is not smooth in the weights at that
scale.""",
    ),
    (
        "code",
        """n_resamples = 200 if QUICK else 2000
resamples = np.random.default_rng(0).multinomial(len(y), np.full(len(y), 1 / len(y)), size=n_resamples)
resamples = resamples.astype(np.float64)
rows = {}
for loss in ("huber", "squared_log"):

    def log_n_opt(w, loss=loss):
        p = sj.functional.fit(law, x, y, weights=w, init=best, loss=loss)
        return jnp.log(sj.analysis.chinchilla_compute_optimal(p, 1e24)["N"])

    grad = jax.jit(jax.grad(log_n_opt))(ones)
    boot = jax.jit(jax.vmap(log_n_opt))(jnp.asarray(resamples))
    rows[loss] = {
        "infinitesimal jackknife sd": float(jnp.sqrt(jnp.sum(grad**2))),
        "bootstrap sd": float(jnp.std(boot)),
        "resamples": len(resamples),
    }
pd.DataFrame(rows).T""",
    ),
    (
        "md",
        """## Where to put the next runs: differentiate the expected interval width

Suppose the next three runs get a budget of `C_new` FLOPs each (the largest run so
far); only their model sizes `N_j` are free (`D_j = C_new / (6 N_j)`). If their losses
land on the current fit, the fit does not move, but the interval of
`q = log N*(1e24)` narrows. To first order in noise of standard deviation `sigma` on
each run's log loss, `q` moves by `sum_i (dq / d log y_i) eps_i`, so the 95% interval
is `2 z sigma ||dq / d log y||`, with the gradient taken from the fit on the data plus
the new runs. That width is a JAX function of the sizes (its gradient differentiates
through the fit's derivatives: second derivatives of the fit, also exact), so Adam
can choose the sizes. We use squared log loss here, for which this is the usual
sandwich (delta-method) width, and keep each `N_j` between 1e8 and 1e11.""",
    ),
    (
        "code",
        """squared = jax.jit(sj.functional.solve, static_argnums=0, static_argnames="loss")(
    law, x, y, init=best, loss="squared_log"
)
p_sq = {k: float(v) for k, v in squared.params.items()}
residuals = np.log(np.asarray(law.predict(p_sq, x))) - np.log(frame.loss.to_numpy())
sigma = float(np.sqrt(np.sum(residuals**2) / (len(y) - len(law.param_names))))
C_new, Z = float(frame.C.max()), 1.959963984540054
LOG_LO, LOG_HI = np.log(1e8), np.log(1e11)


def sizes(s):
    return jnp.exp(LOG_LO + (LOG_HI - LOG_LO) * jax.nn.sigmoid(s))


def width(n_new):
    d_new = C_new / (6 * n_new)
    x_all = {"N": jnp.concatenate([x["N"], n_new]), "D": jnp.concatenate([x["D"], d_new])}
    log_y_all = jnp.log(jnp.concatenate([y, law.predict(p_sq, {"N": n_new, "D": d_new})]))

    def q(log_y):
        p = sj.functional.fit(law, x_all, jnp.exp(log_y), init=p_sq, loss="squared_log")
        return jnp.log(sj.analysis.chinchilla_compute_optimal(p, 1e24)["N"])

    return 2 * Z * sigma * jnp.linalg.norm(jax.grad(q)(log_y_all))


n_opt_now = float(sj.analysis.chinchilla_compute_optimal(p_sq, C_new)["N"])
print(f"sigma (log loss) = {sigma:.4f}; C_new = {C_new:.3g} FLOPs; compute-optimal N there = {n_opt_now:.3g}")
print(f"95% width of log N*(1e24) now: {float(width(jnp.zeros(0))):.4f}")""",
    ),
    (
        "code",
        """optimizer = optax.adam(0.3)


@jax.jit
def step(s, state):
    value, grad = jax.value_and_grad(lambda s: width(sizes(s)))(s)
    updates, state = optimizer.update(grad, state)
    return optax.apply_updates(s, updates), state, value


s = jnp.asarray([-1.0, 0.0, 1.0])  # three runs, spread over the range to start
state = optimizer.init(s)
history = []
for _ in range(30 if QUICK else 150):
    s, state, w = step(s, state)
    history.append(float(w))
chosen = np.sort(np.asarray(sizes(s)))
comparison = pd.Series(
    {
        "now (no new runs)": float(width(jnp.zeros(0))),
        "3 runs at the compute-optimal N": float(width(jnp.full(3, n_opt_now))),
        "3 runs spread evenly in log N": float(width(jnp.geomspace(1e8, 1e11, 3))),
        "3 runs at the sizes Adam chose": float(width(jnp.asarray(chosen))),
    },
    name="95% width of log N*(1e24)",
)
print("chosen sizes:", ", ".join(f"{n:.3g}" for n in chosen))
comparison.to_frame()""",
    ),
    (
        "md",
        """A run at the compute-optimal size adds nothing measurable: the existing runs already
pin the loss near the optimum. What pins `N*` is curvature along the isoFLOP line,
so the chosen runs sit far from the optimum on both sides.

As a check, the width after one new run, scanned over sizes, against
`sj.analysis.design`, which computes the same quantity on the host by a different
route (Gauss-Newton information and a Sherman-Morrison update, no refit); the two
differ only by the residual-curvature terms of the exact Hessian.""",
    ),
    (
        "code",
        """scan = np.geomspace(1e8, 1e11, 25 if QUICK else 60)
one_run = np.asarray(jax.jit(jax.vmap(lambda n: width(n[None])))(jnp.asarray(scan)))
fit_sq = sj.fit(
    law, frame, x={"N": "N", "D": "D"}, y="loss", loss="squared_log", starts=pd.DataFrame([p_sq]), progress=False
)
plan = sj.analysis.design(
    fit_sq,
    pd.DataFrame({"N": scan, "D": C_new / (6 * scan)}),
    lambda p: jnp.log(sj.analysis.chinchilla_compute_optimal(p, 1e24)["N"]),
    noise=sigma,
    k=1,
).sort_values("N")
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].plot(scan, one_run, label="functional: ||d q / d log y||, refit with the run")
axes[0].plot(plan.N, plan.width_after, "--", label="sj.analysis.design (Gauss-Newton)")
axes[0].axvline(n_opt_now, color="grey", lw=0.8, label="compute-optimal N at C_new")
for n in chosen:
    axes[0].axvline(n, color="red", lw=0.8)
axes[0].set(xscale="log", xlabel="N of one new run at C_new", ylabel="95% width of log N*(1e24)")
axes[0].legend(fontsize=7)
axes[1].plot(history)
axes[1].set(xlabel="Adam step", ylabel="width with 3 new runs", title="gradient-based design")
fig.tight_layout()""",
    ),
]


def build(name: str, cells: list[tuple[str, str]]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src) for kind, src in cells
    ]
    nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        build(name, cells)
        print("wrote", name)
