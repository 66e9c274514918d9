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
