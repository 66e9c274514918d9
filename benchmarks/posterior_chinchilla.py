"""Posterior of the Chinchilla law on the real data (240 runs): wall time including compilation, and ESS per second.

Runs, in one process and in this order:
  1. `scalejax.posterior` with its defaults (Student-t likelihood, NUTS with a dense mass
     matrix, 4 chains x 1,000 draws, 500 warmup, sequential chains) as the first call of the
     process: the Huber point fit (500 of the 4,500 grid starts), every compilation and the sampling;
  2. the same call again (another seed): everything compiled; and with init= a fit (sampling only);
  3. `chain_method="vectorized"`, first call (its sampler compiles; the point fit is reused) and again;
  4. `method="laplace"` (no sampling);
  5. the baseline a NumPyro user would write: `numpyro.infer.MCMC` with NUTS (dense mass) on the
     same log density in the same unconstrained parameters, started at the posterior mode, 4 chains
     x 1,000 draws with 500 warmup, but without whitening by the Laplace approximation.

Usage: python benchmarks/posterior_chinchilla.py [--skip-baseline]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import scalejax as sj
from scalejax import bayes

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "chinchilla_epoch" / "svg_extracted_data.csv"
X = {"N": "N", "D": "D"}


def _row(name: str, seconds: float, post) -> str:
    d = post.diagnostics
    return (
        f"| {name} | {seconds:.1f} | {d['ess_min']:.0f} | {d['ess_min'] / seconds:.0f} | {d['rhat_max']:.4f} | "
        f"{d['divergences']} | {d.get('mean_tree_steps', float('nan')):.1f} |"
    )


def _baseline(frame, post) -> tuple[float, dict]:
    """numpyro.infer.MCMC on the same density, no whitening: what a user writes by hand."""
    import jax.numpy as jnp
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
    from numpyro.infer import MCMC, NUTS

    law = sj.laws.get("chinchilla")
    data = sj.Data.from_frame(frame, x=X, y="loss", law=law)
    layout = bayes._make_layout(law, "student_t", ("all",), set(), set(), {}, 0.0)
    mode = np.array(list(post.diagnostics["mode"].values()))
    start = time.perf_counter()
    with jax.enable_x64(True):
        arrays = {
            "x": {k: jnp.asarray(v) for k, v in data.x.items()},
            "weights": jnp.asarray(data.weights),
            "codes": jnp.zeros(data.n, dtype=jnp.int64),
            "y": jnp.asarray(np.log(data.y)),
        }
        kernel = NUTS(potential_fn=lambda t: -layout.log_density(t, arrays), dense_mass=True)
        mcmc = MCMC(
            kernel, num_warmup=500, num_samples=1000, num_chains=4, chain_method="sequential", progress_bar=False
        )
        mcmc.run(
            jax.random.PRNGKey(0),
            init_params=jnp.asarray(np.repeat(mode[None], 4, axis=0)),
            extra_fields=("diverging", "num_steps"),
        )
        z = np.asarray(mcmc.get_samples(group_by_chain=True))
        extra = mcmc.get_extra_fields()
    seconds = time.perf_counter() - start
    ess = [float(effective_sample_size(z[..., i])) for i in range(z.shape[-1])]
    rhat = [float(split_gelman_rubin(z[..., i])) for i in range(z.shape[-1])]
    return seconds, {
        "ess_min": min(ess),
        "rhat_max": max(rhat),
        "divergences": int(np.sum(extra["diverging"])),
        "mean_tree_steps": float(np.mean(extra["num_steps"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-baseline", action="store_true", help="skip the unwhitened numpyro.infer.MCMC baseline")
    args = parser.parse_args()
    if not DATA.is_file():
        sys.exit(f"real Chinchilla data not found at {DATA.resolve()}")
    frame = sj.datasets.read_epoch_chinchilla(DATA)
    print(
        f"{len(frame)} runs; {platform.python_version()}, jax {jax.__version__}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f} at start"
    )
    rows = ["| run | seconds | ESS min | ESS min / s | R-hat max | divergences | mean leapfrog steps |"]
    rows.append("|---|---:|---:|---:|---:|---:|---:|")

    start = time.perf_counter()
    post = sj.posterior("chinchilla", frame, x=X, y="loss", seed=0)
    rows.append(
        _row("posterior, defaults, first call (Huber fit + compile + sample)", time.perf_counter() - start, post)
    )
    start = time.perf_counter()
    post = sj.posterior("chinchilla", frame, x=X, y="loss", seed=1)
    rows.append(_row("posterior, defaults, again (compiled)", time.perf_counter() - start, post))
    start = time.perf_counter()
    point = sj.fit("chinchilla", frame, x=X, y="loss")
    fit_seconds = time.perf_counter() - start
    print(
        f"Huber objective: full 4,500-start grid {point.objective:.12g}; the posterior's 500-start point fit "
        f"{post.fit.objective:.12g}"
    )
    start = time.perf_counter()
    seq = sj.posterior("chinchilla", frame, x=X, y="loss", seed=2, init=point)
    rows.append(_row("posterior, defaults, init=fit, again (sampling only)", time.perf_counter() - start, seq))
    for seed, label in ((0, "first call (sampler compiles)"), (1, "again")):
        start = time.perf_counter()
        vec = sj.posterior("chinchilla", frame, x=X, y="loss", seed=seed, chain_method="vectorized", init=point)
        rows.append(_row(f"chain_method='vectorized', init=fit, {label}", time.perf_counter() - start, vec))
    start = time.perf_counter()
    sj.posterior("chinchilla", frame, x=X, y="loss", method="laplace", init=point)
    lap_seconds = time.perf_counter() - start
    print(f"Huber point fit alone (full 4,500-start grid, compiled): {fit_seconds:.1f} s")
    print(f"method='laplace', init=fit: {lap_seconds:.2f} s (4,000 independent draws)")
    if not args.skip_baseline:
        seconds, diag = _baseline(frame, post)

        class _Stub:
            diagnostics = diag

        rows.append(_row("numpyro.infer.MCMC, NUTS dense, same density, no whitening", seconds, _Stub))
    print("\n".join(rows))
    table = post.table()
    print(table.to_string(float_format=lambda v: f"{v:.5g}"))
    print(f"load {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
