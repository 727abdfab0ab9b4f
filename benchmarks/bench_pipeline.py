"""Benchmark: `gtm run` over the 90-day demo world at several scales, and world generation alone.

Reports wall time, peak memory (max RSS of the child process) and rows per second (rows
landed in the warehouse / wall time). Each scale runs in a fresh GTM_HOME and DAGSTER_HOME.

    .venv/bin/python benchmarks/bench_pipeline.py --scales 1 10 [--generate-only 100]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

END = date(2026, 11, 22)
START = END - timedelta(days=89)


def run_pipeline(scale: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"gtm-bench-x{scale:g}-") as home:
        env = {**os.environ, "GTM_HOME": home, "DAGSTER_HOME": str(Path(home) / "dagster"),
               "GTM_DEMO_SCALE": str(scale), "GTM_DEMO_END_DATE": END.isoformat(), "GTM_SOURCE": "demo"}
        env.pop("GTM_WAREHOUSE_URL", None)
        script = (
            "import resource, sys, time\n"
            "from gtm_assets.cli import main\n"
            "t = time.perf_counter()\n"
            f"code = main(['run', '--start', '{START}', '--end', '{END}'])\n"
            "print('BENCH', time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code)\n"
        )
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        line = next((l for l in done.stdout.splitlines() if l.startswith("BENCH")), None)
        if line is None or not line.endswith(" 0"):
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
            raise SystemExit(f"gtm run at scale {scale} failed")
        _, inner, maxrss_kb, _ = line.split()
        import duckdb

        con = duckdb.connect(str(Path(home) / "warehouse.duckdb"), read_only=True)
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        rows = {t: con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}
        con.close()
    total = sum(rows.values())
    return {"scale": scale, "wall_s": round(wall, 1), "run_s": round(float(inner), 1),
            "peak_rss_mb": round(int(maxrss_kb) / 1024), "rows": total,
            "rows_per_s": round(total / float(inner)), "clicks": rows.get("ad_clicks"), "contacts": rows.get("contacts")}


def generate_only(scale: float) -> dict:
    script = (
        "import resource, time\nfrom datetime import date\nfrom gtm_assets.demo.world import generate_world\n"
        "t = time.perf_counter()\n"
        f"w = generate_world(date({END.year}, {END.month}, {END.day}), scale={scale})\n"
        "s = w.summary()\n"
        "print('BENCH', time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, s['clicks'], s['contacts'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    _, seconds, maxrss_kb, clicks, contacts = next(l for l in done.stdout.splitlines() if l.startswith("BENCH")).split()
    return {"scale": scale, "generate_s": round(float(seconds), 1), "peak_rss_mb": round(int(maxrss_kb) / 1024),
            "clicks": int(clicks), "contacts": int(contacts), "clicks_per_s": round(int(clicks) / float(seconds))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="*", default=[1, 10])
    parser.add_argument("--generate-only", type=float, nargs="*", default=[100])
    args = parser.parse_args()
    results = [run_pipeline(s) for s in args.scales]
    generated = [generate_only(s) for s in args.generate_only]
    print("gtm run, 90 days of the demo world (all assets)")
    print(f"{'scale':>6} {'wall s':>8} {'run s':>7} {'peak MB':>8} {'rows':>10} {'rows/s':>9} {'clicks':>9} {'contacts':>9}")
    for r in results:
        print(f"{r['scale']:>6g} {r['wall_s']:>8} {r['run_s']:>7} {r['peak_rss_mb']:>8} {r['rows']:>10} "
              f"{r['rows_per_s']:>9} {r['clicks']:>9} {r['contacts']:>9}")
    if generated:
        print("\ndemo world generation only")
        for g in generated:
            print(f"  x{g['scale']:g}: {g['generate_s']} s, peak {g['peak_rss_mb']} MB, "
                  f"{g['clicks']} clicks, {g['contacts']} contacts, {g['clicks_per_s']} clicks/s")
    print(json.dumps({"pipeline": results, "generation": generated}))


if __name__ == "__main__":
    main()
