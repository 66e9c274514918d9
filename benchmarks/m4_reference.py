"""A per-curve NumPy M4 estimator, as Alabdulmohsin et al. (2022) describe theirs: the baseline `revisiting.py` times.

Written here from the paper's description of the estimator and of its
published evaluation (not copied from the authors' code). For one learning
curve of losses `y` at sizes `x`, M4's defining equation

    (y - eps_inf) / (eps_0 - y)^alpha = beta x^c,      c <= 0,

is fitted in log space, minimising `sum_i (log(y_i - eps_inf) - alpha log(eps_0 - y_i) - log beta - c log x_i)^2`,
by alternating two steps:

- given (eps_inf, eps_0), (log beta, -c, alpha) by non-negative least squares
  (the equation is linear in them);
- given those, (eps_inf, eps_0) by projected first-order steps (a tiny step size,
  for the first 100 alternations) and then by projected Newton steps on each
  (its own second derivative), 100 per alternation.

The projection keeps `0 <= eps_inf <= min(y) - 1e-3` and
`max(y) + 1e-3 <= eps_0 <= upper + 1e-3` (no upper limit for log-perplexity).
The alternation stops once beta moves by less than 1e-10 (after the first-order
phase) or after 10,000 alternations. A prediction at `x` solves the defining
equation for `y` between eps_inf and eps_0 by a 10,000-point grid search, as the
published evaluation does.

References:
    Alabdulmohsin, Neyshabur and Zhai 2022, Revisiting Neural Scaling Laws in Language and Vision
    (NeurIPS 2022), Section 4 (the M4 estimator) and the released evaluation protocol.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import nnls

MARGIN = 1e-3


class ReferenceM4:
    """Fit with `fit(x, y)`; then `predict(x)`. Parameters: eps_inf, eps_0, beta, c (<= 0), alpha."""

    def __init__(
        self,
        upper: float | None = None,
        eps_0: float = 1.0,
        *,
        max_alternations: int = 10_000,
        frozen_design: bool = False,
    ):
        self.upper = upper
        self.eps_0_start = eps_0
        self.max_alternations = max_alternations
        # The released code builds the least-squares design once, with eps_0 at its starting value;
        # frozen_design=True does the same (to compare with its published numbers), False uses the current eps_0.
        self.frozen_design = frozen_design

    def _project(self):
        self.eps_inf = min(max(self.eps_inf, self.inf_low), self.inf_high)
        self.eps_0 = max(self.eps_0, self.zero_low)
        if self.zero_high is not None:
            self.eps_0 = min(self.eps_0, self.zero_high)

    def _residual(self):
        log_g = np.log(self.y - self.eps_inf) - self.alpha * np.log(self.eps_0 - self.y)
        return log_g - (np.log(self.beta) + self.c * np.log(self.x))

    def _least_squares(self):
        # log(y - eps_inf) = log beta + (-c)(-log x) + alpha log(eps_0 - y), all three coefficients >= 0.
        eps_0 = self.eps_0_start if self.frozen_design else self.eps_0
        design = np.column_stack([np.ones_like(self.x), -np.log(self.x), np.log(eps_0 - self.y)])
        coef, _ = nnls(design, np.log(self.y - self.eps_inf))
        self.beta, self.c, self.alpha = np.exp(coef[0]), -coef[1], coef[2]

    def _gradient(self):
        r = self._residual()
        return -np.mean(r / (self.y - self.eps_inf)), -self.alpha * np.mean(r / (self.eps_0 - self.y))

    def _curvature(self):
        r = self._residual()
        h_inf = np.mean((1 - r) / (self.y - self.eps_inf) ** 2)
        h_0 = self.alpha * np.mean((self.alpha + r) / (self.eps_0 - self.y) ** 2)
        return h_inf, h_0

    def fit(self, x, y, *, first_order=100, first_order_steps=1000, lr=1e-8, newton_steps=100, newton_lr=0.1):
        order = np.argsort(x)
        self.x, self.y = np.asarray(x, float)[order], np.asarray(y, float)[order]
        self.inf_low, self.inf_high = 0.0, self.y.min() - MARGIN
        self.zero_low = self.y.max() + MARGIN
        self.zero_high = None if self.upper is None else self.upper + MARGIN
        self.eps_inf, self.eps_0, self.beta, self.c, self.alpha = self.inf_high, self.eps_0_start, 1.0, -0.5, 0.0
        self._project()
        previous = self.beta
        for k in range(self.max_alternations):
            self._least_squares()
            if k < first_order:
                for _ in range(first_order_steps):
                    g_inf, g_0 = self._gradient()
                    self.eps_inf -= lr * g_inf
                    self.eps_0 -= lr * g_0
                    self._project()
            else:
                for _ in range(newton_steps):
                    g_inf, g_0 = self._gradient()
                    h_inf, h_0 = self._curvature()
                    if abs(h_inf) > 1e-5:
                        self.eps_inf -= newton_lr * g_inf / h_inf
                    if abs(h_0) > 1e-5:
                        self.eps_0 -= newton_lr * g_0 / h_0
                    self._project()
            moved, previous = abs(self.beta - previous), self.beta
            if moved < 1e-10 and k > first_order + 1:
                break
        return self

    def predict(self, x, grid: int = 10_000) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, float))
        if abs(self.alpha) < 1e-5:
            return self.eps_inf + self.beta * x**self.c
        gap = self.eps_0 - self.eps_inf
        w = np.linspace(0.0, gap, grid)
        out = np.empty_like(x)
        for i, xi in enumerate(x):
            f = self.beta * xi**self.c
            out[i] = w[np.argmin(np.abs(w - f * (gap - w) ** self.alpha))] + self.eps_inf
        return out
