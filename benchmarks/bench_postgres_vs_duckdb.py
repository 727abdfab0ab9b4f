"""Wall time of the 90-day demo pipeline (`gtm run`) on DuckDB + SQLite vs Postgres for the warehouse and the instance.

Usage:  .venv/bin/python benchmarks/bench_postgres_vs_duckdb.py [--postgres-url postgresql://postgres@127.0.0.1:5432/test]
        [--days 90] [--end 2026-11-22] [--repeat 1]
Each configuration runs `gtm run` in a fresh process with fresh homes (and fresh Postgres
databases, dropped afterwards), so the figures include process start and model training,
exactly what a user's `make demo` pays.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
GTM = Path(sys.executable).parent / "gtm"


def run_once(label: str, env: dict[str, str], start: date, end: date) -> tuple[float, float | None]:
    """Wall seconds of the whole command and the run's own seconds (from the summary)."""
    started = time.perf_counter()
    result = subprocess.run([str(GTM), "run", "--start", start.isoformat(), "--end", end.isoformat()],
                            cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise SystemExit(f"{label}: gtm run failed (exit {result.returncode}):\n{tail}")
    found = re.search(r"status\s+SUCCESS in ([0-9.]+)s", result.stdout)
    return wall, float(found.group(1)) if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=os.environ.get("GTM_TEST_POSTGRES_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 22))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    start = args.end - timedelta(days=args.days - 1)

    import psycopg

    admin = args.postgres_url
    pg = urlparse(admin)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("GTM_", "DAGSTER_"))}
    base_env.update(GTM_SOURCE="demo", GTM_DEMO_END_DATE=args.end.isoformat())
    rows = []
    for repeat in range(args.repeat):
        for label in ("duckdb warehouse + sqlite instance", "postgres warehouse + postgres instance"):
            with tempfile.TemporaryDirectory(prefix="gtm_bench_") as home:
                env = {**base_env, "GTM_HOME": home, "DAGSTER_HOME": f"{home}/dagster"}
                databases = []
                if label.startswith("postgres"):
                    suffix = uuid.uuid4().hex[:8]
                    databases = [f"gtm_bench_wh_{suffix}", f"gtm_bench_dagster_{suffix}"]
                    with psycopg.connect(admin, autocommit=True) as conn:
                        for name in databases:
                            conn.execute(f'CREATE DATABASE "{name}"')
                    Path(home, "dagster").mkdir(parents=True)
                    Path(home, "dagster", "dagster.yaml").write_text((REPO / "deploy" / "dagster.yaml").read_text())
                    env.update(
                        GTM_WAREHOUSE_URL=admin.rsplit("/", 1)[0] + f"/{databases[0]}",
                        DAGSTER_PG_HOST=pg.hostname or "127.0.0.1", DAGSTER_PG_PORT=str(pg.port or 5432),
                        DAGSTER_PG_USERNAME=pg.username or "postgres", DAGSTER_PG_PASSWORD=pg.password or "",
                        DAGSTER_PG_DB=databases[1],
                    )
                try:
                    wall, run_seconds = run_once(label, env, start, args.end)
                finally:
                    if databases:
                        with psycopg.connect(admin, autocommit=True) as conn:
                            for name in databases:
                                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            rows.append((label, repeat + 1, wall, run_seconds))
            print(f"{label:<40} run {repeat + 1}: {wall:7.1f}s wall, {run_seconds or float('nan'):7.1f}s in the run",
                  flush=True)
    print(f"\n{args.days}-day demo ({start} .. {args.end}) on {os.cpu_count()} CPU(s)")
    for label in dict.fromkeys(r[0] for r in rows):
        walls = sorted(r[2] for r in rows if r[0] == label)
        print(f"  {label:<40} best {walls[0]:7.1f}s  median {walls[len(walls) // 2]:7.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
