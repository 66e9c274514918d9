"""Floating-point quantised training: the law of Sun et al. (2025) in model size, data, exponent and mantissa bits and block size."""

from __future__ import annotations

import jax.numpy as jnp

from .._law import Law, Param, log_sum_exp


def _fp_quant_log(p, x):
    log_n, log_d = jnp.log(x["N"]), jnp.log(x["D"])
    # The quantisation term D^beta / N^alpha * log2(B) / (gamma (E + 0.5)^delta (M + 0.5)^nu);
    # log(log2 B) is -inf at B = 1 (no block sharing a scale: no term), which logsumexp absorbs.
    quant = (
        p["beta"] * log_d
        - p["alpha"] * log_n
        + jnp.log(jnp.log2(x["B"]))
        - jnp.log(p["gamma"])
        - p["delta"] * jnp.log(x["E"] + 0.5)
        - p["nu"] * jnp.log(x["M"] + 0.5)
    )
    return log_sum_exp(
        jnp.log(p["n"]) - p["alpha"] * log_n,
        jnp.log(p["d"]) - p["beta"] * log_d,
        jnp.log(p["eps"]),
        quant,
    )


fp_quant = Law(
    name="fp_quant",
    fn=lambda p, x: jnp.exp(_fp_quant_log(p, x)),
    log_fn=_fp_quant_log,
    params=(
        Param("n", lower=0, grid=(10.0, 100.0), doc="model-size coefficient"),
        Param("alpha", lower=0, grid=(0.2, 0.4), doc="model-size exponent"),
        Param("d", lower=0, grid=(1e3, 1e5), doc="data coefficient"),
        Param("beta", lower=0, grid=(0.3, 0.5), doc="data exponent"),
        Param("eps", lower=0, grid=(1.0, 2.0), doc="irreducible loss"),
        Param("gamma", lower=0, grid=(1e2, 1e4), doc="scale of the quantisation penalty"),
        Param("delta", lower=0, grid=(1.0, 3.0), doc="exponent of the exponent bits E"),
        Param("nu", lower=0, grid=(1.0, 3.0), doc="exponent of the mantissa bits M"),
    ),
    inputs=("N", "D", "E", "M", "B"),
    # Zero exponent or mantissa bits are valid formats (E + 0.5 > 0); B is the block size (>= 1).
    positive_inputs=("N", "D", "B"),
    equation="L = n/N^alpha + d/D^beta + eps + (D^beta / N^alpha) log2(B) / (gamma (E + 0.5)^delta (M + 0.5)^nu)",
    reference="Sun et al. 2025, 'Scaling Laws for Floating-Point Quantization Training' (the unified law, Section 5)",
)
"""Sun et al.'s law for training in floating point with E exponent and M mantissa bits and scale blocks of B.

A Chinchilla law plus a quantisation penalty that grows with data (`D^beta`,
hence a critical data size beyond which more tokens hurt), falls with model
size, grows with the block size `B` sharing one scaling factor, and falls as a
power of `E + 0.5` and `M + 0.5`.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("fp_quant").inputs
    ('N', 'D', 'E', 'M', 'B')

References:
    Sun et al. 2025, Scaling Laws for Floating-Point Quantization Training (ICML 2025), the unified
    ("Capybara") law. Written from memory of the paper (the search tools returned only its abstract), so
    the equation number is not given; the form (Chinchilla terms plus `D^beta / N^alpha` times
    `log2(B) / (gamma (E + 0.5)^delta (M + 0.5)^nu)`) is as recalled.
"""
