"""Encoder/decoder scaling of neural machine translation: the bivariate law of Ghorbani et al. (2021)."""

from __future__ import annotations

import math

import jax.numpy as jnp

from .._errors import LawError
from .._law import Law, Param, log_sum_exp

# Reference sizes of the encoder and decoder: they only rescale alpha (the reducible loss there).
REF_ENCODER = 1e8
REF_DECODER = 1e8


def nmt_law(ref_encoder: float = REF_ENCODER, ref_decoder: float = REF_DECODER) -> Law:
    """Ghorbani et al.'s bivariate law of translation loss in encoder and decoder size.

        L(N_e, N_d) = alpha (ref_e / N_e)^p_e (ref_d / N_d)^p_d + L_inf

    Encoder and decoder have their own exponents; the total parameter count
    alone does not predict the loss.

    Args:
        ref_encoder: the encoder size the law is normalised by (the paper uses
            its baseline 6L6L model's encoder); it only rescales `alpha`.
        ref_decoder: likewise for the decoder.

    Returns:
        A `Law` with inputs `N_e`, `N_d` and parameters `alpha, p_e, p_d, L_inf`.

    Example:
        >>> import scalejax as sj
        >>> sj.laws.get("nmt").inputs
        ('N_e', 'N_d')

    References:
        Ghorbani et al. 2021, Scaling Laws for Neural Machine Translation (ICLR 2022), eq. (2). Written
        from memory of the paper (the search tools returned only its abstract and a review confirming that
        eq. (2) is the bivariate encoder/decoder law jointly fitted to encoder- and decoder-scaling runs);
        the normalising sizes are not reproduced here.
    """
    for name, value in (("ref_encoder", ref_encoder), ("ref_decoder", ref_decoder)):
        if not (isinstance(value, int | float) and value > 0):
            raise LawError(f"{name} must be a positive number, got {value!r}")
    log_e, log_d = math.log(ref_encoder), math.log(ref_decoder)

    def log_fn(p, x):
        reducible = (
            jnp.log(p["alpha"]) + p["p_e"] * (log_e - jnp.log(x["N_e"])) + p["p_d"] * (log_d - jnp.log(x["N_d"]))
        )
        return log_sum_exp(reducible, jnp.log(p["L_inf"]))

    default = (ref_encoder, ref_decoder) == (REF_ENCODER, REF_DECODER)
    return Law(
        name="nmt" if default else f"nmt[ref_encoder={ref_encoder:g}, ref_decoder={ref_decoder:g}]",
        fn=lambda p, x: jnp.exp(log_fn(p, x)),
        log_fn=log_fn,
        params=(
            Param("alpha", lower=0, grid=(0.1, 1.0, 10.0), doc="reducible loss at the reference sizes"),
            Param("p_e", lower=0, grid=(0.1, 0.3, 0.6), doc="encoder exponent"),
            Param("p_d", lower=0, grid=(0.1, 0.3, 0.6), doc="decoder exponent"),
            Param("L_inf", lower=0, grid=(0.5, 1.5, 3.0), doc="irreducible loss"),
        ),
        inputs=("N_e", "N_d"),
        equation=f"L = alpha ({ref_encoder:g} / N_e)^p_e ({ref_decoder:g} / N_d)^p_d + L_inf",
        reference="Ghorbani et al. 2021, 'Scaling Laws for Neural Machine Translation', eq. (2)",
    )


nmt = nmt_law()
"""Ghorbani et al.'s encoder/decoder law (reference sizes 1e8 and 1e8); see `nmt_law`.

Example:
    >>> import scalejax as sj
    >>> sj.laws.get("nmt").param_names
    ('alpha', 'p_e', 'p_d', 'L_inf')

References:
    Ghorbani et al. 2021, Scaling Laws for Neural Machine Translation, eq. (2).
"""
