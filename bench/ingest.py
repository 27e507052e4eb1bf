"""Benchmark the whole ingest path (land → read → conform → validate → protect → zones → catalog) on generated data.

    .venv/bin/python bench/ingest.py --rows 100000 1000000

Each size runs `rtv ingest --json` as its own process against a Prefect server (started here unless
PREFECT_API_URL is set) and reports wall time, rows/s and the peak RSS of that process and its children.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from common import VENV_BIN, PeakRss, prefect_server

from tasks.ingest.generate import generate_households, write_households


def run_once(rows: int, bad_rate: float, workdir: Path, api_url: str) -> dict[str, float]:
    """Generate a CSV, ingest it in a fresh data dir, return the measurements."""
    data_file = workdir / f"households-{rows}.csv"
    write_households(generate_households(rows, seed=rows % 9973, bad_rate=bad_rate).frame, data_file)
    env = os.environ | {
        "RTV_DATA_DIR": str(workdir / f"data-{rows}"),
        "RTV_KEY_FILE": str(workdir / "keys.json"),
        "PREFECT_API_URL": api_url,
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [str(VENV_BIN / "rtv"), "ingest", str(data_file), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = PeakRss(process.pid)
    out, err = process.communicate()
    wall = time.monotonic() - started
    peak = sampler.stop()
    if process.returncode != 0:
        raise SystemExit(f"rtv ingest failed ({process.returncode}):\n{err[-3000:]}")
    report = json.loads(out[out.index("{") :])
    assert report["rows_received"] == rows, report
    return {
        "rows": rows,
        "file_mb": round(data_file.stat().st_size / 1e6, 1),
        "wall_s": round(wall, 1),
        "flow_s": report["duration_s"],
        "rows_per_s": round(rows / wall),
        "peak_rss_gb": round(peak / 1e9, 2),
        "accepted": report["rows_accepted"],
        "quarantined": report["rows_quarantined"],
        "timings": report["timings"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--bad-rate", type=float, default=0.02)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtv-bench-") as tmp, prefect_server() as api_url:
        print("| rows | file MB | wall s | flow s | rows/s | peak RSS GB | accepted | quarantined |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for rows in args.rows:
            r = run_once(rows, args.bad_rate, Path(tmp), api_url)
            print(
                f"| {r['rows']:,} | {r['file_mb']} | {r['wall_s']} | {r['flow_s']} | {r['rows_per_s']:,} | "
                f"{r['peak_rss_gb']} | {r['accepted']:,} | {r['quarantined']:,} |",
                flush=True,
            )
            print(f"<!-- flow steps for {rows:,} rows (s): {r['timings']} -->", flush=True)


if __name__ == "__main__":
    main()
