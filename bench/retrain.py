"""Benchmark retraining on the real RTV file: grouped CV, final fit, held-out scoring, MLflow registration.

    .venv/bin/python bench/retrain.py [--real ../shared/data/rtv/DataScientist_01_Assessment.csv]

Ingests the file into a throw-away data dir (not timed), then times `rtv retrain --force --json` as its own
process twice: the first run also creates the MLflow store, the second compares against a champion.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, VENV_BIN, prefect_server


def timed(args: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "rtv"), *args], env=env, capture_output=True, text=True, check=True)
    return time.monotonic() - started, json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--real", type=Path, default=ROOT.parent / "shared/data/rtv/DataScientist_01_Assessment.csv"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtv-bench-") as tmp, prefect_server() as api_url:
        env = os.environ | {
            "RTV_DATA_DIR": f"{tmp}/data",
            "RTV_KEY_FILE": f"{tmp}/keys.json",
            "PREFECT_API_URL": api_url,
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        timed(["ingest", str(args.real), "--json"], env)
        print("| run | wall s | decision | alias | CV ROC AUC | CV macro-F1 | held-out ROC AUC |")
        print("|---|---:|---|---|---:|---:|---:|")
        for label in ("first (creates the MLflow store)", "second (compared with the champion)"):
            seconds, summary = timed(["retrain", "--force", "--json"], env)
            m, h = summary["metrics"], summary["holdout_metrics"]
            print(
                f"| {label} | {seconds:.1f} | {summary['decision']} | {summary['alias']} | {m['roc_auc']} | "
                f"{m['macro_f1_4class']} | {h['roc_auc']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
