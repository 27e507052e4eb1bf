"""Drift calibration on the real RTV file: false-positive and detection rates of `tasks/monitoring/drift_stats.py`.

    .venv/bin/python bench/drift_calibration.py [--real PATH] [--runs 100] [--sizes 50 100 200 500 2000]

No-drift control: `runs` random samples (without replacement) of the real file, compared with the whole
file and, separately, batches from a 30% split compared with a 70% training split. Shifts: household size
+30%, one district missing, incomes halved, a new district on 10% of rows, and a subtle one (incomes −10%)
to show where sensitivity ends. Also prints the source
document's detector on the same control, and the PSI null quantile against its χ² approximation.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.ingest.conform import conform, score_header  # noqa: E402
from tasks.ingest.readers import ReadCaps, read_table  # noqa: E402
from tasks.monitoring.drift_stats import CALIBRATION, NUMERIC_FEATURES, Calibration, detect, reference_profile  # noqa: E402

INCOMES = ("household_income", "income_consumption_residues_per_day")
Shift = Callable[[pl.DataFrame, int, np.random.Generator], pl.DataFrame]


def load(path: Path) -> pl.DataFrame:
    table = read_table(path.read_bytes(), ReadCaps(), score_header=score_header)
    return conform(table.frames(), typed=table.typed).frame


def sample(frame: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    return frame[rng.choice(frame.height, size=min(n, frame.height), replace=False).tolist()]


SHIFTS: dict[str, Shift] = {
    "none": sample,
    "household size +30%": lambda f, n, rng: sample(f, n, rng).with_columns(
        (pl.col("household_size") * 1.3).round().cast(pl.Int64)
    ),
    "incomes -10% (subtle)": lambda f, n, rng: sample(f, n, rng).with_columns(
        pl.col(c) * 0.9 for c in INCOMES
    ),
    "one district missing": lambda f, n, rng: sample(
        f.filter(pl.col("district") != sorted(f["district"].unique().to_list())[rng.integers(4)]), n, rng
    ),
    "incomes halved": lambda f, n, rng: sample(f, n, rng).with_columns(pl.col(c) * 0.5 for c in INCOMES),
    "new district (10% of rows)": lambda f, n, rng: (
        sample(f, n, rng)
        .with_row_index("_i")
        .with_columns(
            pl.when(pl.col("_i") < n // 10)
            .then(pl.lit("Kisoro"))
            .otherwise(pl.col("district"))
            .alias("district")
        )
        .drop("_i")
    ),
}


def source_document_flags(ref: pl.DataFrame, batch: pl.DataFrame, reasons: Counter[str]) -> bool:
    """The source document's detector as domain.md describes it (any test at 0.05, fixed score cut-offs)."""
    from scipy import stats

    scores, flags = [], []
    for name in NUMERIC_FEATURES:
        r, b = (x[name].cast(pl.Float64).drop_nulls().drop_nans().to_numpy() for x in (ref, batch))
        edges = np.linspace(r.min(), r.max(), 11)
        p = np.histogram(b, edges)[0] / b.size + 1e-6
        q = np.histogram(r, edges)[0] / r.size + 1e-6
        psi = float(np.sum((p - q) * np.log(p / q)))
        ks = stats.ks_2samp(b, r)
        shift = abs(b.mean() - r.mean()) / (r.std() or 1)
        var = abs(np.log((b.var() or 1e-9) / (r.var() or 1e-9)))
        wide = np.linspace(min(r.min(), b.min()), max(r.max(), b.max()), 21)
        overlap = float(
            np.minimum(np.histogram(b, wide)[0] / b.size, np.histogram(r, wide)[0] / r.size).sum()
        )
        fired = {
            "psi>0.2": psi > 0.2,
            "ks p<0.05": ks.pvalue < 0.05,
            "mean shift>2sd": shift > 2,
            "|log var ratio|>0.5": var > 0.5,
            "overlap<0.7": overlap < 0.7,
        }
        reasons.update(k for k, v in fired.items() if v)
        flags.append(any(fired.values()))
        scores.append(
            np.mean([min(psi / 0.3, 1), ks.statistic, min(shift / 3, 1), min(var / 0.7, 1), 1 - overlap])
        )
    r_counts, b_counts = ref["district"].value_counts(), batch["district"].value_counts()
    cats = sorted(set(r_counts["district"]) | set(b_counts["district"]))
    rc = np.array([dict(r_counts.iter_rows()).get(c, 0) for c in cats], float)
    bc = np.array([dict(b_counts.iter_rows()).get(c, 0) for c in cats], float)
    chi = stats.chisquare(bc, rc / rc.sum() * bc.sum() + 1e-9)
    fr, fb = rc / rc.sum(), bc / bc.sum()
    fired = {
        "chi2 p<0.05": chi.pvalue < 0.05,
        "frequency change>0.1": np.abs(fr - fb).mean() > 0.1,
        "new or missing category": bool((rc == 0).any() or (bc == 0).any()),
        "JS>0.1": float(stats.entropy((fr + fb) / 2) - (stats.entropy(fr) + stats.entropy(fb)) / 2) > 0.1,
        "mean score>0.05": np.mean(scores) > 0.05,
        "max score>0.25": max(scores) > 0.25,
    }
    reasons.update(k for k, v in fired.items() if v)
    return bool(any(flags) or any(fired.values()))


def rate(
    reference: pl.DataFrame,
    pool: pl.DataFrame,
    shift: Shift,
    n: int,
    runs: int,
    seed: int,
    calibration: Calibration,
) -> int:
    ref = reference_profile(reference, calibration=calibration)
    rng = np.random.default_rng(seed)
    return sum(detect(ref, shift(pool, n, rng), calibration).drift for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--real", type=Path, default=ROOT.parent / "shared/data/rtv/DataScientist_01_Assessment.csv"
    )
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500, 2000])
    parser.add_argument(
        "--alpha", type=float, default=CALIBRATION.alpha, help="try another family-wise alpha"
    )
    parser.add_argument("--min-psi", type=float, default=CALIBRATION.min_psi, help="try another PSI floor")
    args = parser.parse_args()
    calibration = Calibration(alpha=args.alpha, min_psi=args.min_psi)
    frame = load(args.real)
    order = np.random.default_rng(7).permutation(frame.height)
    cut = int(frame.height * 0.7)
    train, held = frame[order[:cut].tolist()], frame[order[cut:].tolist()]
    print(f"calibration: {calibration}\n")
    print(f"Flagged batches out of {args.runs} (reference = the whole file; pool = the whole file)\n")
    print("| scenario | " + " | ".join(f"n={n}" for n in args.sizes) + " |")
    print("|---|" + "---:|" * len(args.sizes))
    started = time.monotonic()
    for name, shift in SHIFTS.items():
        cells = [rate(frame, frame, shift, n, args.runs, i, calibration) for i, n in enumerate(args.sizes)]
        print(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
    print(
        f"\n({time.monotonic() - started:.1f} s)\n\nTraining split (70%) as reference, batches from the other 30%:\n"
    )
    sizes = [n for n in args.sizes if n <= held.height]
    print("| scenario | " + " | ".join(f"n={n}" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name, shift in SHIFTS.items():
        cells = [rate(train, held, shift, n, args.runs, i, calibration) for i, n in enumerate(sizes)]
        print(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
    rng = np.random.default_rng(3)
    reasons: Counter[str] = Counter()
    source = sum(source_document_flags(frame, sample(frame, 500, rng), reasons) for _ in range(args.runs))
    print(
        f"\nSource document's detector, no-drift control (n=500): {source}/{args.runs} flagged; criteria that "
        f"fired (feature-batches): {dict(reasons.most_common())}"
    )
    ref, psis = reference_profile(frame, calibration=calibration), {name: [] for name in NUMERIC_FEATURES}
    for _ in range(1000):
        result = detect(ref, sample(frame, 500, rng), calibration)
        for name in psis:
            psis[name].append(result.features[name]["psi"])
    from scipy import stats

    print("\nPSI null at n=500: empirical 99th percentile vs (1/n + 1/m)·χ²(k−1) 99th percentile")
    for name, values in psis.items():
        k = int(np.count_nonzero(ref.bin_counts[name]))
        approx = (1 / 500 + 1 / frame.height) * stats.chi2.ppf(0.99, k - 1)
        print(f"| {name} | {np.quantile(values, 0.99):.4f} | {approx:.4f} | bins {k} |")


if __name__ == "__main__":
    main()
