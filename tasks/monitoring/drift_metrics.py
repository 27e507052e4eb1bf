"""Per-feature drift metrics on plain arrays: KS and PSI for numbers, chi-square, JS and PSI for categories.

Each returns its figures and, under `_tests`, what its p-values need: (distribution, statistic, parameter).
PSI and JS get p-values from their second-order null, PSI ≈ 8·JS ≈ (1/n + 1/m)·χ²(k−1).
"""

from __future__ import annotations

from typing import Literal, TypedDict

import numpy as np
from scipy import stats

PValue = Literal["ks_p", "psi_p", "chi2_p", "js_p"]
Kind = Literal["input", "programme"]  # input drift can trigger a retrain; programme change is only reported
Test = tuple[str, float, float]  # (distribution, statistic, parameter): what `p_values` needs for one p-value


class FeatureDrift(TypedDict, total=False):
    """One monitored feature's drift figures (stored and printed); the keys present depend on its kind."""

    psi: float
    ks: float  # numbers only
    ks_p: float  # Holm-adjusted, like every *_p
    psi_p: float
    chi2: float  # categories only, like js, new and missing
    chi2_p: float
    js: float  # bits
    js_p: float
    rows: int
    new: list[str]  # categories the reference never saw
    missing: list[str]  # reference categories absent from the batch
    skipped: str  # why the feature was not tested (too few values); then only `kind`, `flag` accompany it
    kind: Kind
    flag: bool  # input drift: a significant test and PSI ≥ the floor (always False for programme columns)
    changed: bool  # programme columns only: the same rule met, reported as programme change
    _tests: dict[PValue, Test]  # the metric functions' hand-over to `detect`, which removes it


def smoothed(counts: np.ndarray, s: float) -> np.ndarray:
    """Proportions with `s` pseudo-counts per cell, so no cell is empty."""
    proportions: np.ndarray = (counts + s) / (counts.sum() + s * counts.size)
    return proportions


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index, sum (p − q)·ln(p/q)."""
    return float(np.sum((p - q) * np.log(p / q)))


def numeric(
    r: np.ndarray, edges: np.ndarray, ref_counts: np.ndarray, batch: np.ndarray, smoothing: float
) -> FeatureDrift:
    """KS and PSI of sorted batch values against sorted reference values and its decile bins; tests in `_tests`."""
    n, m = batch.size, r.size
    grid = np.concatenate([r, batch])
    d = float(
        np.max(np.abs(np.searchsorted(r, grid, "right") / m - np.searchsorted(batch, grid, "right") / n))
    )
    counts = np.bincount(np.searchsorted(edges, batch, side="left"), minlength=ref_counts.size)
    index = psi(smoothed(counts, smoothing), smoothed(ref_counts, smoothing))
    df = max(int(np.count_nonzero(ref_counts)) - 1, 1)
    return {
        "psi": round(index, 4),
        "ks": round(d, 4),
        "rows": n,
        "_tests": {"ks_p": ("ks", d, round(n * m / (n + m))), "psi_p": ("chi2", index / (1 / n + 1 / m), df)},
    }


def categorical(known: dict[str, int], batch: dict[str, int], smoothing: float) -> FeatureDrift:
    """Chi-square (2×K homogeneity), JS divergence (bits) and PSI of category counts; tests in `_tests`."""
    names = sorted(set(known) | set(batch))
    r = np.array([known.get(c, 0) for c in names], dtype=float)
    x = np.array([batch.get(c, 0) for c in names], dtype=float)
    n, m = x.sum(), r.sum()
    p, q = smoothed(x, smoothing), smoothed(r, smoothing)
    mid = (p + q) / 2
    js = float(0.5 * np.sum(p * np.log(p / mid)) + 0.5 * np.sum(q * np.log(q / mid)))  # nats
    df = max(len(names) - 1, 1)
    observed = np.vstack([x, r])
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    chi2 = float(np.sum((observed - expected) ** 2 / expected))  # Pearson 2×K homogeneity
    return {
        "psi": round(psi(p, q), 4),
        "chi2": round(chi2, 2),
        "js": round(js / np.log(2), 4),
        "rows": int(n),
        "new": [c for c in names if c not in known],
        "missing": [c for c in names if c not in batch],
        "_tests": {"chi2_p": ("chi2", chi2, df), "js_p": ("chi2", 8 * js / (1 / n + 1 / m), df)},
    }


def p_values(tests: list[Test]) -> list[float]:
    """Upper-tail p-values, one vectorised scipy call per distribution (scalar calls dominated the run time)."""
    p = np.ones(len(tests))
    for dist, sf in (("ks", stats.kstwo.sf), ("chi2", stats.chi2.sf)):
        idx = [i for i, t in enumerate(tests) if t[0] == dist]
        if idx:
            p[idx] = sf(np.array([tests[i][1] for i in idx]), np.array([tests[i][2] for i in idx]))
    return p.tolist()


def holm(p_values: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error control, no independence assumed)."""
    order = np.argsort(p_values)
    k = len(p_values)
    adjusted = np.empty(k)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted.tolist()
