"""Two survey rounds of the same households: does the follow-up ingest as fast as the baseline, and do the pages keep up?

    .venv/bin/python bench/rounds.py --households 1000000

Generates a two-round synthetic panel (`tasks.ingest.generate.generate_panel`: most households come back, a few
are missed, some move, new ones join), ingests round 1 then round 2 with `rtv ingest --round R --json` into one
data dir (each its own process, against a Prefect server started for the run), then times the registry queries
(`rtv rounds list`, `rtv progress`) and the Overview, Households, Progress and Follow-up pages with AppTest
(first run, then warm reruns). Targets (issue 13): round 2 within 1.25x of round 1; Progress warm ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import ROOT, VENV_BIN, PeakRss, prefect_server

from tasks.ingest.generate import generate_panel, write_households

APP = str(ROOT / "dashboard" / "app.py")
PAGES = ("overview", "households", "progress", "followups")
ROUND_LABELS = ("2025-baseline", "2026-follow-up")


def ingest(path: Path, survey_round: str, env: dict[str, str]) -> dict[str, object]:
    """`rtv ingest FILE --round R --json` as its own process: wall time, peak RSS and the report."""
    started = time.monotonic()
    process = subprocess.Popen(
        [str(VENV_BIN / "rtv"), "ingest", str(path), "--round", survey_round, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = PeakRss(process.pid)
    out, err = process.communicate()
    wall, peak = time.monotonic() - started, sampler.stop()
    if process.returncode not in (0, 1):  # 1: completed with quarantined rows
        raise SystemExit(f"rtv ingest failed ({process.returncode}):\n{err[-3000:]}")
    report = json.loads(out[out.index("{") :])
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(peak / 1e9, 2), "report": report}


def timed_cli(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds and stdout of one `rtv` command."""
    started = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "rtv"), *args], env=env, capture_output=True, text=True, check=True)
    return round(time.monotonic() - started, 2), done.stdout


def time_pages(env: dict[str, str], warm_runs: int) -> dict[str, dict[str, float]]:
    """AppTest timings of each page in a child process with the bench's environment (first, warm median, worst)."""
    code = f"""
import json, os, statistics, time
from streamlit.testing.v1 import AppTest
out = {{}}
for page in {list(PAGES)!r}:
    path = os.path.join({str(ROOT / "dashboard" / "pages")!r}, page + ".py")
    if not os.path.exists(path):
        continue
    at = AppTest.from_file(path, default_timeout=600)
    at.session_state["user"] = {{"name": "bench", "role": "engineer"}}
    started = time.monotonic(); at.run(); first = time.monotonic() - started
    assert not at.exception, [e.value for e in at.exception]
    warm = []
    for _ in range({warm_runs}):
        started = time.monotonic(); at.run(); warm.append(time.monotonic() - started)
    out[page] = {{"first_s": round(first, 2), "warm_median_s": round(statistics.median(warm), 2),
                 "warm_worst_s": round(max(warm), 2)}}
print(json.dumps(out))
"""
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"page timing failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--bad-rate", type=float, default=0.02)
    parser.add_argument("--warm-runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="use this data dir and keep it (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rtv-bench-rounds-") as tmp, prefect_server() as api_url:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        panel = generate_panel(args.households, 2, seed=11, bad_rate=args.bad_rate)
        paths = []
        for survey_round in panel.rounds:
            paths.append(work / f"{survey_round.label}.csv")
            write_households(survey_round.frame, paths[-1])
        print(
            f"generated {[r.frame.height for r in panel.rounds]} rows in {time.monotonic() - started:.0f} s"
        )
        env = os.environ | {
            "RTV_DATA_DIR": str(work / "data"),
            "RTV_KEY_FILE": str(work / "keys.json"),
            "PREFECT_API_URL": api_url,
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        print("| round | rows | wall s | flow s | peak RSS GB | accepted |")
        print("|---|---:|---:|---:|---:|---:|")
        walls = []
        for path, label in zip(paths, ROUND_LABELS, strict=True):
            r = ingest(path, label, env)
            report = r["report"]
            assert isinstance(report, dict)
            walls.append(float(r["wall_s"]))  # type: ignore[arg-type]
            print(
                f"| {label} | {report['rows_received']:,} | {r['wall_s']} | {report['duration_s']} | "
                f"{r['peak_rss_gb']} | {report['rows_accepted']:,} |",
                flush=True,
            )
            print(f"<!-- flow steps (s): {report.get('timings')} -->", flush=True)
        print(f"\nround 2 / round 1 wall time: {walls[1] / walls[0]:.2f} (target ≤ 1.25)")
        for command in (["rounds", "list", "--json"], ["progress", "--json"]):
            seconds, out = timed_cli(command, env)
            print(f"`rtv {' '.join(command)}`: {seconds} s")
            if command[0] == "progress":
                print(f"  households: {json.loads(out)['households']}")
        pages = time_pages(env, args.warm_runs)
        print("\n| page (AppTest) | first s | warm median s | warm worst s |\n|---|---:|---:|---:|")
        for page, t in pages.items():
            print(f"| {page} | {t['first_s']} | {t['warm_median_s']} | {t['warm_worst_s']} |")
        print(
            f"\nwarm medians: {statistics.fmean(t['warm_median_s'] for t in pages.values()):.2f} s on average"
        )


if __name__ == "__main__":
    main()
