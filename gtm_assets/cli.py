"""The `gtm` command: build a date range in-process (recorded in the Dagster instance), or evaluate alerts."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

log = logging.getLogger("gtm_assets.cli")

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
REPO_POSTGRES_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml"


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def prepare_homes() -> tuple[Path, Path]:
    """GTM_HOME and DAGSTER_HOME as set, else .gtm/ and .gtm/dagster, created with the repo's dagster.yaml."""
    gtm_home = Path(os.environ.get("GTM_HOME") or ".gtm").resolve()
    gtm_home.mkdir(parents=True, exist_ok=True)
    os.environ["GTM_HOME"] = str(gtm_home)
    dagster_home = Path(os.environ.get("DAGSTER_HOME") or gtm_home / "dagster").resolve()
    dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    # DAGSTER_PG_HOST set: the instance lives in Postgres (dagster-postgres); otherwise SQLite here.
    on_postgres = bool(os.environ.get("DAGSTER_PG_HOST"))
    if on_postgres:
        os.environ.setdefault("DAGSTER_PG_PORT", "5432")
    source = REPO_POSTGRES_DAGSTER_YAML if on_postgres else REPO_DAGSTER_YAML
    target = dagster_home / "dagster.yaml"
    if not target.exists() and source.exists():
        shutil.copyfile(source, target)
    elif on_postgres and target.exists() and "postgres_db" not in target.read_text():
        raise SystemExit(f"gtm: DAGSTER_PG_HOST is set but {target} is not a Postgres instance configuration; "
                         "delete it (or copy deploy/dagster.yaml there) and re-run")
    return gtm_home, dagster_home


def _root_message(error) -> str:
    """The innermost error's first line: ours ("...check HUBSPOT_ACCESS_TOKEN"), not Dagster's wrapper."""
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip().splitlines()[0] if error is not None and error.message.strip() else "failed"


def run_range(start: date, end: date) -> int:
    """Materialize the ingest partitions start..end and everything downstream; print a summary."""
    from dagster import DagsterInstance

    from gtm_assets.definitions import build_defs, daily_partitions

    first = date.fromisoformat(daily_partitions.start.strftime("%Y-%m-%d"))
    today = datetime.now(timezone.utc).date()
    if start > end:
        print(f"gtm run: --start {start} is after --end {end}", file=sys.stderr)
        return 2
    if start < first:
        print(f"gtm run: --start {start} is before the first partition {first} (set GTM_PARTITIONS_START)",
              file=sys.stderr)
        return 2
    if end >= today:
        print(f"gtm run: --end {end} is not a complete day yet (today is {today} UTC); use {today - timedelta(days=1)}",
              file=sys.stderr)
        return 2

    defs = build_defs()
    job = defs.resolve_job_def("gtm_daily")
    with DagsterInstance.get() as instance:
        return _execute(job, instance, start, end)


def _execute(job, instance, start: date, end: date) -> int:
    from dagster import DagsterEventType

    tags = (
        {"dagster/partition": start.isoformat()} if start == end
        else {"dagster/asset_partition_range_start": start.isoformat(),
              "dagster/asset_partition_range_end": end.isoformat()}
    )
    tags["gtm/trigger"] = "cli"
    print(f"gtm run: {start} .. {end} ({(end - start).days + 1} day(s)), source={os.environ.get('GTM_SOURCE', 'demo')}, "
          f"instance={instance.root_directory}", flush=True)
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False,
                                    partition_key=start.isoformat() if start == end else None)
    elapsed = time.perf_counter() - started

    materialized, checks, failures = [], [], []
    for event in result.all_events:
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.event_specific_data.materialization
            meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
            materialized.append((mat.asset_key.to_user_string(), meta.get("rows", meta.get("rows_written")),
                                 meta.get("table_rows")))
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            checks.append((evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.passed))
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            failures.append((event.step_key, _root_message(event.event_specific_data.error)))

    seen = {}
    for key, rows, table_rows in materialized:
        seen[key] = (rows, table_rows)
    print("\nSummary")
    print(f"  run id     {result.run_id}")
    print(f"  status     {'SUCCESS' if result.success else 'FAILURE'} in {elapsed:.1f}s")
    print(f"  {'asset':<40} {'rows this run':>14} {'rows in table':>14}")
    for key, (rows, table_rows) in sorted(seen.items()):
        print(f"  {key:<40} {str(rows if rows is not None else '-'):>14} {str(table_rows if table_rows is not None else '-'):>14}")
    failed_checks = [c for c in checks if not c[2]]
    print(f"  checks     {len(checks) - len(failed_checks)}/{len(checks)} passed")
    for asset_key, name, _ in failed_checks:
        print(f"    FAILED check {name} on {asset_key}")
    for step, message in failures:
        print(f"  FAILED step {step}: {message}")
    return 0 if result.success and not failures else 1


def alerts(send: bool) -> int:
    from gtm_assets.monitoring import run_alerts_once

    return run_alerts_once(send=send)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gtm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    run = sub.add_parser("run", help="materialize ingest partitions for a date range and everything downstream")
    run.add_argument("--start", type=_parse_day, help="first day (YYYY-MM-DD); default: --end")
    run.add_argument("--end", type=_parse_day, default=yesterday, help="last day (YYYY-MM-DD); default: yesterday (UTC)")
    run.add_argument("--days", type=int, help="alternative to --start: this many days ending on --end")
    al = sub.add_parser("alerts", help="evaluate campaign-quality alerts once (the sensor's code path)")
    al.add_argument("--send", action="store_true", help="deliver the alerts not yet delivered")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    prepare_homes()
    if args.command == "run":
        start = args.start or (args.end - timedelta(days=args.days - 1) if args.days else args.end)
        return run_range(start, args.end)
    return alerts(args.send)


if __name__ == "__main__":
    sys.exit(main())
