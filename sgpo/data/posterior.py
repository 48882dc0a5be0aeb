"""A Beta posterior of every query's success rate, and the closed forms the selection rules need.

Model: query q's rollouts succeed independently with probability p_q ~ Beta(a_q, b_q).

Prior (empirical Bayes). The profile gives s_q successes in k samples per query. A Beta(alpha0,
beta0) is fitted to the spread of s_q over the dataset by the beta-binomial method of moments:
with m = mean(s_q / k) and v = var(s_q / k),

    v = m (1 - m) (1 + (k - 1) rho) / k,   rho = 1 / (alpha0 + beta0 + 1)

so rho = (k v / (m (1 - m)) - 1) / (k - 1), clipped to [1 / (max_strength + 1), 1 - 1e-3], and
alpha0 = m (1 / rho - 1), beta0 = (1 - m) (1 / rho - 1). Each query then starts at the posterior
after its own profile: a_q = alpha0 + s_q, b_q = beta0 + k - s_q. Shrinking toward the
dataset's distribution is what keeps a 0/8 query from being believed unsolvable for sure.

Update: every rollout of q with reward r in [0, 1] adds r to a_q and 1 - r to b_q.

Decay (drift): the policy changes, so old evidence counts less. After every training step the
evidence beyond the prior shrinks by lambda = 2 ** (-1 / half_life_steps) for every query:

    a_q <- alpha0 + lambda (a_q - alpha0),   b_q <- beta0 + lambda (b_q - beta0)

so an observation made h steps ago weighs 2 ** (-h / half_life_steps), the profile's own samples
included (after half_life_steps steps they count as k / 2). half_life_steps = None keeps every
observation at full weight.

Refitted prior (``refit_prior``, optional). The dataset's distribution of p moves as the policy learns,
and without a profile there is nothing to fit it to at the start. With refit_prior, after every step
(after the decay) the prior is fitted again to each query's evidence so far, s_q = a_q - alpha0
successes in n_q = a_q + b_q - alpha0 - beta0 rollouts (decayed, so fractional), by maximizing the
beta-binomial marginal likelihood (fit_beta_prior_ml)

    L(alpha0, beta0) = sum_q [ln B(alpha0 + s_q, beta0 + n_q - s_q) - ln B(alpha0, beta0)].

Not the moments: how many rollouts a query got depends on its earlier outcomes here (a degenerate
screen stops the group; the posterior picks the queries), which biases a moment fit, while the
likelihood depends on the data only through the observed counts. Strength alpha0 + beta0 is kept
within [MIN_REFIT_STRENGTH, max_prior_strength]. The evidence is kept and moved onto the new prior:
a_q = alpha0' + s_q, b_q = beta0' + n_q - s_q. Until MIN_REFIT_QUERIES queries hold evidence the
prior stays.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln

log = logging.getLogger(__name__)


MIN_REFIT_QUERIES = 16  # queries with evidence a refitted prior needs (fewer: keep the prior)
# A refitted prior weaker than this would make every query not yet seen look degenerate (P(mixed)
# ~ strength): the walk would then pass them over and reach them only through revisits.
MIN_REFIT_STRENGTH = 0.5


def fit_beta_prior(successes: np.ndarray, k: int, max_strength: float = 64.0) -> tuple[float, float]:
    """Beta(alpha0, beta0) fitted to ``successes`` [Q] out of ``k`` each (method of moments, above).

    Without evidence (k = 0 or Q = 0) the prior is Beta(1, 1). alpha0 + beta0 <= max_strength.
    """
    s = np.asarray(successes, dtype=float)
    if k <= 0 or s.size == 0:
        return 1.0, 1.0
    rates = s / k
    m = float(np.clip(rates.mean(), 1e-3, 1 - 1e-3))
    if k == 1:  # one sample per query says nothing about the spread: a flat-ish prior at the mean
        return 2.0 * m, 2.0 * (1.0 - m)
    rho = (k * float(rates.var()) / (m * (1.0 - m)) - 1.0) / (k - 1)
    rho = float(np.clip(rho, 1.0 / (max_strength + 1.0), 1.0 - 1e-3))
    strength = 1.0 / rho - 1.0
    return m * strength, (1.0 - m) * strength


def beta_binomial_loglik(alpha0: float, beta0: float, successes: np.ndarray, trials: np.ndarray) -> float:
    """sum_q [ln B(alpha0 + s_q, beta0 + n_q - s_q) - ln B(alpha0, beta0)] over s [Q], n [Q] (fractional
    counts allowed; the binomial coefficients, free of the prior, are left out)."""
    s, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    return float(np.sum(betaln(alpha0 + s, beta0 + n - s) - betaln(alpha0, beta0)))


def fit_beta_prior_ml(successes: np.ndarray, trials: np.ndarray, *, init: tuple[float, float] = (1.0, 1.0),
                      min_strength: float = MIN_REFIT_STRENGTH, max_strength: float = 64.0) -> tuple[float, float]:
    """Beta(alpha0, beta0) of most beta-binomial marginal likelihood (beta_binomial_loglik) for
    ``successes`` [Q] in ``trials`` [Q], over m = alpha0 / (alpha0 + beta0) in [1e-3, 1 - 1e-3] and
    strength alpha0 + beta0 in [min_strength, max_strength]: L-BFGS-B on (logit m, ln strength) from
    ``init``. Queries without trials add nothing. Raises ValueError when no query has any.
    """
    s, n = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    use = n > 0
    if not use.any():
        raise ValueError("no query has a rollout: nothing to fit a prior to")
    s, n = s[use], n[use]
    lo, hi = math.log(min(min_strength, max_strength)), math.log(max_strength)
    m_lo, m_hi = math.log(1e-3 / (1 - 1e-3)), math.log((1 - 1e-3) / 1e-3)

    def unpack(x: np.ndarray) -> tuple[float, float]:
        m, strength = 1.0 / (1.0 + math.exp(-x[0])), math.exp(x[1])
        return m * strength, (1.0 - m) * strength

    a0, b0 = init
    m0 = min(max(a0 / (a0 + b0), 1e-3), 1 - 1e-3)
    x0 = np.array([math.log(m0 / (1 - m0)), min(max(math.log(a0 + b0), lo), hi)])
    res = minimize(lambda x: -beta_binomial_loglik(*unpack(x), s, n), x0, method="L-BFGS-B",
                   bounds=[(m_lo, m_hi), (lo, hi)])
    return unpack(res.x)


def beta_binomial_pmf(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """P(s successes in n rollouts) under p ~ Beta(a, b): [Q, n + 1] for a, b of shape [Q].

    P(0) = prod_{i<n} (b + i) / (a + b + i); P(s + 1) / P(s) = (n - s)(a + s) / ((s + 1)(b + n - s - 1)).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = np.zeros((a.size, n + 1))
    p = prob_all_fail(a, b, n)
    out[:, 0] = p
    for s in range(n):
        p = p * (n - s) * (a + s) / ((s + 1) * (b + n - s - 1))
        out[:, s + 1] = p
    return out


def prob_all_fail(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """E[(1 - p)^n] = B(a, b + n) / B(a, b) = prod_{i<n} (b + i) / (a + b + i): [Q]."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    out = np.ones(a.size)
    for i in range(n):
        out = out * (b + i) / (a + b + i)
    return out


def prob_mixed(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """E[P_mix(n)] = 1 - E[p^n] - E[(1 - p)^n]: the chance that n rollouts hold both outcomes, [Q]."""
    if n < 2:
        return np.zeros(np.asarray(a).size)
    return 1.0 - prob_all_fail(b, a, n) - prob_all_fail(a, b, n)


def advantage_mass(n: int, normalize_std: bool = True) -> np.ndarray:
    """sum_i |A_i| of a group of n with s = 0..n successes, [n + 1], as sgpo.algos.advantages computes A.

    Centred rewards sum to 2 s (n - s) / n in absolute value; divided by the unbiased std
    sqrt(s (n - s) / (n (n - 1))) that is 2 sqrt(s (n - s) (n - 1) / n). Zero for s in {0, n}.
    """
    s = np.arange(n + 1, dtype=float)
    if not normalize_std:
        return 2.0 * s * (n - s) / n
    return 2.0 * np.sqrt(s * (n - s) * (n - 1) / n)


class BetaPosterior:
    """Beta(a_q, b_q) for Q queries: prior from a profile, updated by rollouts, decayed per step.

    Identical on every DDP rank as long as every rank makes the same ``update`` and ``decay``
    calls (the module shares every rank's observations), and it travels in checkpoints.
    """

    def __init__(self, successes: np.ndarray, k: int, *, half_life_steps: float | None,
                 max_prior_strength: float = 64.0, refit_prior: bool = False) -> None:
        s = np.asarray(successes, dtype=float)
        if half_life_steps is not None and half_life_steps <= 0:
            raise ValueError(f"selection.half_life_steps={half_life_steps}: must be > 0 (or null: no decay)")
        self.max_prior_strength, self.refit_prior = float(max_prior_strength), bool(refit_prior)
        self.alpha0, self.beta0 = fit_beta_prior(s, k, max_prior_strength)
        self.a = self.alpha0 + s
        self.b = self.beta0 + (k - s)
        self.decay_factor = 1.0 if half_life_steps is None else 2.0 ** (-1.0 / float(half_life_steps))

    def __len__(self) -> int:
        return self.a.size

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean success rate [Q]."""
        return self.a / (self.a + self.b)

    def update(self, query: int, successes: float, rollouts: float) -> None:
        """Add a group's summed reward ``successes`` over ``rollouts`` rollouts of ``query``."""
        if successes < 0 or successes > rollouts:
            raise ValueError(f"query {query}: {successes:g} successes in {rollouts:g} rollouts")
        self.a[query] += successes
        self.b[query] += rollouts - successes

    def decay(self) -> None:
        """One step of forgetting: the evidence beyond the prior times ``decay_factor``."""
        if self.decay_factor < 1.0:
            self.a = self.alpha0 + self.decay_factor * (self.a - self.alpha0)
            self.b = self.beta0 + self.decay_factor * (self.b - self.beta0)

    def end_step(self) -> None:
        """Between training steps: forget (``decay``), then refit the prior when ``refit_prior``."""
        self.decay()
        if self.refit_prior:
            self.refit()

    def refit(self) -> bool:
        """Fit the prior again to the evidence so far (fit_beta_prior_ml, from the current prior) and
        move the evidence onto it (module docstring); False (nothing changed) while fewer than
        MIN_REFIT_QUERIES queries hold evidence."""
        s, f = self.a - self.alpha0, self.b - self.beta0
        n = s + f
        if int((n > 0).sum()) < MIN_REFIT_QUERIES:
            return False
        self.alpha0, self.beta0 = fit_beta_prior_ml(s, n, init=(self.alpha0, self.beta0),
                                                    max_strength=self.max_prior_strength)
        self.a, self.b = self.alpha0 + s, self.beta0 + f
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"alpha0": self.alpha0, "beta0": self.beta0, "a": self.a.tolist(), "b": self.b.tolist(),
                "decay_factor": self.decay_factor, "refit_prior": self.refit_prior,
                "max_prior_strength": self.max_prior_strength}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        a, b = np.asarray(state["a"], dtype=float), np.asarray(state["b"], dtype=float)
        if a.shape != self.a.shape or b.shape != self.b.shape:
            raise ValueError(f"posterior state for {a.size} queries; this run has {self.a.size}")
        saved = float(state.get("decay_factor", self.decay_factor))
        if abs(saved - self.decay_factor) > 1e-12:  # a resumed run follows its own config; say so
            log.warning("resuming a posterior saved with decay factor %.6f per step under %.6f "
                        "(selection.half_life_steps changed)", saved, self.decay_factor)
        for key, now in (("refit_prior", self.refit_prior), ("max_prior_strength", self.max_prior_strength)):
            if key in state and state[key] != now:  # checkpoints from before these were saved: nothing to compare
                log.warning("resuming a posterior saved with selection.%s=%s under %s", key, state[key], now)
        self.alpha0, self.beta0, self.a, self.b = float(state["alpha0"]), float(state["beta0"]), a, b
