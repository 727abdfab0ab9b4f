"""Benchmark of the live sources against the wire-level fakes loaded from the demo world.

1. Wall time of a live ingest run (the seven ingest assets, one single-run backfill) over the
   last N days (default 30) of the demo world, through the real google-ads and
   hubspot-api-client libraries, the warehouse and a Dagster instance; then a one-day
   incremental run on the same warehouse. Requests per API come from the fakes' logs.
2. HubSpot API requests per 10k contacts for a full sync and for a one-day incremental sync
   (contacts, deals and meetings, as the ingest assets ask for them), counted from the HubSpot
   fake's request log on a world scaled to about 10k contacts.

    .venv/bin/python benchmarks/bench_live.py
    .venv/bin/python benchmarks/bench_live.py --days 30 --scale 1 --sync-scale 4
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gtm_assets_tests.fakes.google_ads_server import trust_fake_certificate  # noqa: E402

trust_fake_certificate()  # before any TLS gRPC channel exists in this process

from dagster import DagsterInstance, materialize  # noqa: E402

from gtm_assets.defs.ingest import ingest_assets  # noqa: E402
from gtm_assets.definitions import build_resources  # noqa: E402
from gtm_assets.demo.world import cached_world  # noqa: E402
from gtm_assets.resources.hubspot.live import LiveHubSpot  # noqa: E402
from gtm_assets_tests.fakes.hubspot_server import FakeHubSpot  # noqa: E402
from gtm_assets_tests.fakes.world_loader import load_hubspot, start_world_fakes  # noqa: E402

END = date(2026, 11, 22)


def live_ingest(days: int, scale: float) -> dict:
    world = cached_world(END, scale=scale)
    began = time.perf_counter()
    fakes = start_world_fakes(world)
    load_seconds = time.perf_counter() - began
    start = END - timedelta(days=days - 1)
    with tempfile.TemporaryDirectory(prefix="gtm-bench-live-") as home:
        os.environ.update(fakes.env())
        os.environ.update(GTM_HOME=home, DAGSTER_HOME=home)
        os.environ.pop("GTM_WAREHOUSE_URL", None)
        try:
            with DagsterInstance.ephemeral() as instance:
                began = time.perf_counter()
                result = materialize(ingest_assets, resources=build_resources("live"), instance=instance, tags={
                    "dagster/asset_partition_range_start": start.isoformat(),
                    "dagster/asset_partition_range_end": END.isoformat()})
                full_seconds = time.perf_counter() - began
                assert result.success, "the live ingest run failed"
                rows = {}
                for event in result.get_asset_materialization_events():
                    mat = event.event_specific_data.materialization
                    meta = mat.metadata
                    if "rows" in meta:
                        rows[mat.asset_key.path[-1]] = int(meta["rows"].value)
                grpc_calls, hubspot_calls = len(fakes.google_ads.server.requests), len(fakes.hubspot.requests)
                began = time.perf_counter()
                again = materialize(ingest_assets, resources=build_resources("live"), instance=instance,
                                    partition_key=END.isoformat())
                incremental_seconds = time.perf_counter() - began
                assert again.success, "the incremental live ingest run failed"
        finally:
            fakes.stop()
    return {
        "days": days, "scale": scale, "fake_load_seconds": load_seconds, "full_seconds": full_seconds,
        "incremental_seconds": incremental_seconds, "rows": rows, "google_ads_calls": grpc_calls,
        "hubspot_calls": hubspot_calls,
        "hubspot_incremental_calls": len(fakes.hubspot.requests) - hubspot_calls,
        "google_ads_incremental_calls": len(fakes.google_ads.server.requests) - grpc_calls,
    }


def hubspot_sync_requests(scale: float) -> dict:
    """Requests of a full and of a one-day incremental sync, each by a fresh resource (as each run has)."""
    world = cached_world(END, scale=scale)
    fake = FakeHubSpot(token="pat-bench")
    loaded = load_hubspot(fake, world)
    fake.start()
    day_start = datetime(END.year, END.month, END.day, tzinfo=timezone.utc)
    day_end = day_start + timedelta(days=1)
    counts = {}
    try:
        for mode in ("full", "incremental"):
            source = LiveHubSpot(access_token=fake.token, base_url=fake.base_url)
            before = len(fake.requests)
            began = time.perf_counter()
            contacts = source.contacts(day_start, day_end, full_sync=mode == "full")
            deals = source.deals(day_start, day_end, full_sync=mode == "full")
            meetings = source.engagements(day_start, day_end)
            requests = fake.requests[before:]
            counts[mode] = {
                "requests": len(requests), "seconds": time.perf_counter() - began,
                "contacts": len(contacts), "deals": len(deals), "meetings": len(meetings),
                "by_kind": _kinds(requests),
            }
    finally:
        fake.stop()
    return {"scale": scale, "portal_contacts": loaded["contacts"], "portal_deals": loaded["deals"],
            "portal_meetings": loaded["meetings"], **counts}


def _kinds(requests: list[dict]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for r in requests:
        parts = r["path"].strip("/").split("/")
        kind = f"{r['method']} {'/'.join(parts[2:4])}{'/search' if parts[-1] == 'search' else ''}"
        if parts[1] == "v4":
            kind = f"POST associations {parts[3]}->{parts[4]}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of the live ingest run (default 30)")
    parser.add_argument("--scale", type=float, default=1.0, help="demo world scale of the ingest run")
    parser.add_argument("--sync-scale", type=float, default=4.0,
                        help="demo world scale of the HubSpot sync count (4 = about 10.7k contacts)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    run = live_ingest(args.days, args.scale)
    print(f"live ingest, {run['days']} days, world scale {run['scale']:g} (fakes loaded in {run['fake_load_seconds']:.1f}s)")
    print(f"  single-run backfill  {run['full_seconds']:6.1f} s   Google Ads gRPC calls {run['google_ads_calls']}, "
          f"HubSpot HTTP requests {run['hubspot_calls']} (contacts/deals full sync: first run)")
    print(f"  next day, incremental {run['incremental_seconds']:5.1f} s   Google Ads gRPC calls "
          f"{run['google_ads_incremental_calls']}, HubSpot HTTP requests {run['hubspot_incremental_calls']}")
    print("  rows: " + ", ".join(f"{k} {v}" for k, v in sorted(run["rows"].items())))

    sync = hubspot_sync_requests(args.sync_scale)
    n = sync["portal_contacts"]
    print(f"\nHubSpot sync, world scale {sync['scale']:g}: portal of {n} contacts, {sync['portal_deals']} deals, "
          f"{sync['portal_meetings']} meetings")
    for mode in ("full", "incremental"):
        s = sync[mode]
        print(f"  {mode:<12} {s['requests']:5d} requests = {s['requests'] * 10_000 / n:7.1f} per 10k contacts "
              f"({s['seconds']:.1f}s; {s['contacts']} contacts, {s['deals']} deals, {s['meetings']} meetings fetched)")
        print("               " + ", ".join(f"{k}: {v}" for k, v in sorted(s["by_kind"].items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
