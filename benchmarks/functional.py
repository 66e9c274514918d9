"""The functional fit under vmap and grad, against what a user would run otherwise (real Chinchilla data).

1. Many weight vectors (a bootstrap written by hand): `jax.vmap(functional.fit)` in one call,
   against a Python loop of `sj.fit` and a Python loop of a jitted `functional.fit`.
2. Every run's derivative of N*(1e24): one `jax.grad` through the implicit-function theorem,
   against central finite differences of refits (2n refits, themselves vmapped).

Usage: python benchmarks/functional.py [--weights 64] [--starts 72]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import scalejax as sj
from scalejax import functional

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chinchilla_epoch" / "svg_extracted_data.csv"
GRID = np.array(list(itertools.product((1.0, 3.0), (100.0, 5000.0), (100.0, 5000.0), (0.2, 0.4, 0.6), (0.2, 0.4, 0.6))))


def timed(fn, repeat=1):
    """Wall seconds of `fn()` (best of `repeat`), blocking on JAX results, and its value."""
    best, out = np.inf, None
    for _ in range(repeat):
        tick = time.perf_counter()
        out = jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - tick)
    return best, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=int, default=64, help="weight vectors (bootstrap resamples)")
    parser.add_argument("--starts", type=int, default=72, help="starts per fit (from a 72-point grid)")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    frame = sj.datasets.read_epoch_chinchilla(DATA)
    law = sj.laws.get("chinchilla")
    starts = GRID[np.linspace(0, len(GRID) - 1, args.starts).astype(int)]
    x = {k: jnp.asarray(frame[k].to_numpy()) for k in ("N", "D")}
    y = jnp.asarray(frame.loss.to_numpy())
    n = len(frame)
    init = {k: jnp.asarray(starts[:, i]) for i, k in enumerate(law.param_names)}
    weights = np.random.default_rng(0).multinomial(n, np.full(n, 1 / n), size=args.weights).astype(np.float64)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
        f"jax {jax.__version__}; {n} runs, {args.weights} weight vectors x {args.starts} starts"
    )

    # 1. Many weight vectors.
    def host_loop():
        return [
            sj.fit(law, frame.assign(w=w), x={"N": "N", "D": "D"}, y="loss", weights="w", starts=starts, progress=False)
            for w in weights
        ]

    one = jax.jit(lambda w: functional.fit(law, x, y, weights=w, init=init))
    many = jax.jit(jax.vmap(lambda w: functional.fit(law, x, y, weights=w, init=init)))
    t_host, host = timed(host_loop)
    t_one_first, _ = timed(lambda: one(jnp.asarray(weights[0])))
    t_loop, _ = timed(lambda: [one(jnp.asarray(w)) for w in weights])
    t_vmap_first, out = timed(lambda: many(jnp.asarray(weights)))
    t_vmap, out = timed(lambda: many(jnp.asarray(weights)), repeat=2)
    gap = max(abs(float(out[k][i]) / h.params[k] - 1) for i, h in enumerate(host) for k in law.param_names)
    print("\n| many fits | s | ratio to vmap |\n|---|---:|---:|")
    print(f"| Python loop of sj.fit | {t_host:.2f} | {t_host / t_vmap:.1f}x |")
    print(
        f"| Python loop of jit(functional.fit) (compiled once: {t_one_first:.1f} s first call) | {t_loop:.2f} | {t_loop / t_vmap:.1f}x |"
    )
    print(
        f"| jax.vmap(functional.fit), one call (first call incl. compilation {t_vmap_first:.1f} s) | {t_vmap:.2f} | 1.0x |"
    )
    print(f"largest relative difference from sj.fit over all parameters and weight vectors: {gap:.1e}")

    # 2. Every run's derivative of N*(1e24).
    best = {k: float(v) for k, v in functional.fit(law, x, y, init=init).items()}

    def log_n_opt(w):
        p = functional.fit(law, x, y, weights=w, init=best)
        return jnp.log(sj.analysis.chinchilla_compute_optimal(p, 1e24)["N"])

    grad = jax.jit(jax.grad(log_n_opt))
    refits = jax.jit(jax.vmap(log_n_opt))
    eps = 1e-3
    steps = np.concatenate([np.eye(n) * eps, -np.eye(n) * eps])

    def finite_differences():
        q = refits(jnp.asarray(1.0 + steps))
        return (q[:n] - q[n:]) / (2 * eps)

    t_grad_first, g = timed(lambda: grad(jnp.ones(n)))
    t_grad, g = timed(lambda: grad(jnp.ones(n)), repeat=3)
    t_fd_first, fd = timed(finite_differences)
    t_fd, fd = timed(finite_differences)
    big = np.abs(np.asarray(fd)) > 1e-3 * np.max(np.abs(np.asarray(fd)))
    agree = np.max(np.abs(np.asarray(g)[big] / np.asarray(fd)[big] - 1))
    print(f"\n| d log N*(1e24) / d w_i for all {n} runs | s | ratio to grad |\n|---|---:|---:|")
    print(f"| jax.grad (implicit function), first call incl. compilation | {t_grad_first:.2f} | |")
    print(f"| jax.grad (implicit function), warm | {t_grad:.3f} | 1x |")
    print(
        f"| central differences of {2 * n} refits, vmapped, warm (first {t_fd_first:.1f} s) | {t_fd:.2f} | {t_fd / t_grad:.0f}x |"
    )
    print(f"largest relative difference between the two (|d| > 1e-3 of the largest): {agree:.1e}")
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
