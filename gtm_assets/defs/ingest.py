"""Ingest assets: Google Ads and HubSpot pulled through their resources into contract-shaped tables.

Daily partitions with a single-run backfill policy: a 90-day range is one run and one query
per report. Time-series tables replace their partition's rows; entity tables (campaigns,
contacts, deals) upsert by id, since a record modified today may have been created months ago.
Rows that do not fit the contract go to the `quarantine` table with a reason.
"""


import os
from datetime import datetime, timedelta, timezone

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    DailyPartitionsDefinition,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from gtm_assets import contracts
from gtm_assets.resources.google_ads import GoogleAdsSource
from gtm_assets.resources.hubspot import HubSpotSource
from gtm_assets.warehouse.io_manager import WarehouseResource, record_quarantine, table_preview

PARTITIONS_START = os.environ.get("GTM_PARTITIONS_START", "2025-06-01")
daily_partitions = DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=0)
single_run = BackfillPolicy.single_run()


def _conform_and_describe(
    context: AssetExecutionContext,
    frame: pd.DataFrame,
    contract: contracts.TableContract,
    warehouse: WarehouseResource,
    extra_metadata: dict | None = None,
) -> pd.DataFrame:
    good, bad = contracts.conform(frame, contract)
    record_quarantine(context, warehouse, contract.name, bad, contract.key)
    window = context.partition_time_window
    context.log.info(f"{contract.name}: {len(good)} rows for {window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}")
    context.add_output_metadata({
        "rows": len(good),
        "quarantined": len(bad),
        "window": f"{window.start:%Y-%m-%d} to {(window.end - timedelta(days=1)):%Y-%m-%d}",
        "preview": table_preview(good),
        **(extra_metadata or {}),
    })
    return good


def _days(context: AssetExecutionContext):
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


@asset(
    key_prefix="google_ads", group_name="ingest", partitions_def=daily_partitions, backfill_policy=single_run,
    metadata={"primary_key": "campaign_id"}, kinds={"google_ads", "pandas"},
    description=contracts.CAMPAIGNS.description,
)
def campaigns(context: AssetExecutionContext, google_ads: GoogleAdsSource, warehouse: WarehouseResource) -> pd.DataFrame:
    frame = google_ads.campaigns()
    frame["updated_at"] = pd.Timestamp.now(tz="UTC")
    return _conform_and_describe(context, frame, contracts.CAMPAIGNS, warehouse)


@asset(
    key_prefix="google_ads", group_name="ingest", partitions_def=daily_partitions, backfill_policy=single_run,
    metadata={"partition_expr": "date"}, kinds={"google_ads", "pandas"},
    description=contracts.CAMPAIGN_PERFORMANCE.description,
)
def campaign_performance(context: AssetExecutionContext, google_ads: GoogleAdsSource, warehouse: WarehouseResource) -> pd.DataFrame:
    start, end = _days(context)
    frame = google_ads.campaign_performance(start, end)
    good = _conform_and_describe(context, frame, contracts.CAMPAIGN_PERFORMANCE, warehouse)
    context.add_output_metadata({"spend": MetadataValue.float(round(float(good["cost"].sum()), 2)),
                                 "clicks": int(good["clicks"].sum())})
    return good


@asset(
    key_prefix="google_ads", group_name="ingest", partitions_def=daily_partitions, backfill_policy=single_run,
    metadata={"partition_expr": "date"}, kinds={"google_ads", "pandas"},
    description=contracts.AD_PERFORMANCE.description,
)
def ad_performance(context: AssetExecutionContext, google_ads: GoogleAdsSource, warehouse: WarehouseResource) -> pd.DataFrame:
    start, end = _days(context)
    frame = google_ads.ad_performance(start, end)
    good = _conform_and_describe(context, frame, contracts.AD_PERFORMANCE, warehouse)
    context.add_output_metadata({"spend": MetadataValue.float(round(float(good["cost"].sum()), 2))})
    return good


@asset(
    key_prefix="google_ads", group_name="ingest", partitions_def=daily_partitions, backfill_policy=single_run,
    metadata={"partition_expr": "date"}, kinds={"google_ads", "pandas"},
    description=contracts.AD_CLICKS.description + " click_view allows one day per query: one query per day.",
)
def ad_clicks(context: AssetExecutionContext, google_ads: GoogleAdsSource, warehouse: WarehouseResource) -> pd.DataFrame:
    start, end = _days(context)
    days = pd.date_range(start, end, freq="D")
    frames = []
    for i, day in enumerate(days, start=1):
        frames.append(google_ads.ad_clicks(day.date()))
        if i % 10 == 0 or i == len(days):
            context.log.info(f"ad_clicks: {i}/{len(days)} days fetched ({sum(len(f) for f in frames)} clicks)")
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(contracts.AD_CLICKS.columns))
    return _conform_and_describe(context, frame, contracts.AD_CLICKS, warehouse)


class HubSpotSyncConfig(Config):
    full_sync: bool = Field(
        default=False,
        description="Fetch every record instead of those modified in the partition window. "
        "Automatic when the table does not exist yet.",
    )


def _window(context: AssetExecutionContext) -> tuple[datetime, datetime]:
    window = context.partition_time_window
    return window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)


def _full_sync(config: HubSpotSyncConfig, warehouse: WarehouseResource, table: str) -> bool:
    return config.full_sync or not warehouse.get().table_exists(table)


@asset(
    key_prefix="hubspot", group_name="ingest", partitions_def=daily_partitions, backfill_policy=single_run,
    metadata={"primary_key": "contact_id"}, kinds={"hubspot", "pandas"},
    description=contracts.CONTACTS.description + " A partition fetches the contacts modified in its window.",
)
def contacts(context: AssetExecutionContext, config: HubSpotSyncConfig, hubspot: HubSpotSource, warehouse: WarehouseResource) -> pd.DataFrame:
    full = _full_sync(config, warehouse, "contacts")
    frame = hubspot.contacts(*_window(context), full_sync=full)
    return _conform_and_describe(context, frame, contracts.CONTACTS, warehouse, {"sync": "full" if full else "incremental"})


@asset(
    key_prefix="hubspot", group_name="ingest", partitions_def=daily_partitions, backfill_policy=single_run,
    metadata={"primary_key": "deal_id"}, kinds={"hubspot", "pandas"},
    description=contracts.DEALS.description + " A partition fetches the deals modified in its window.",
)
def deals(context: AssetExecutionContext, config: HubSpotSyncConfig, hubspot: HubSpotSource, warehouse: WarehouseResource) -> pd.DataFrame:
    full = _full_sync(config, warehouse, "deals")
    frame = hubspot.deals(*_window(context), full_sync=full)
    return _conform_and_describe(context, frame, contracts.DEALS, warehouse, {"sync": "full" if full else "incremental"})


@asset(
    key_prefix="hubspot", group_name="ingest", partitions_def=daily_partitions, backfill_policy=single_run,
    metadata={"partition_expr": "date"}, kinds={"hubspot", "pandas"},
    description=contracts.ENGAGEMENTS.description,
)
def engagements(context: AssetExecutionContext, hubspot: HubSpotSource, warehouse: WarehouseResource) -> pd.DataFrame:
    frame = hubspot.engagements(*_window(context))
    if "date" not in frame.columns or frame["date"].isna().any():
        frame["date"] = pd.to_datetime(frame["occurred_at"], utc=True, errors="coerce").dt.tz_localize(None).dt.normalize()
    return _conform_and_describe(context, frame, contracts.ENGAGEMENTS, warehouse)


@asset_check(asset=AssetKey(["google_ads", "ad_performance"]), additional_deps=[AssetKey(["google_ads", "campaign_performance"])],
             description="Keyword/ad-group spend adds up to campaign spend per day, to the cent.")
def ad_spend_reconciles_with_campaign_spend(warehouse: WarehouseResource) -> AssetCheckResult:
    diff = warehouse.get().query(
        """
        WITH a AS (SELECT date, campaign_id, SUM(cost) AS cost FROM ad_performance GROUP BY 1, 2),
             c AS (SELECT date, campaign_id, SUM(cost) AS cost FROM campaign_performance GROUP BY 1, 2)
        SELECT COUNT(*) AS mismatched, COALESCE(MAX(ABS(COALESCE(a.cost, 0) - COALESCE(c.cost, 0))), 0) AS worst
        FROM a FULL OUTER JOIN c ON a.date = c.date AND a.campaign_id = c.campaign_id
        WHERE ABS(COALESCE(a.cost, 0) - COALESCE(c.cost, 0)) >= 0.005
        """
    )
    mismatched, worst = int(diff["mismatched"].iloc[0]), float(diff["worst"].iloc[0])
    return AssetCheckResult(passed=mismatched == 0, metadata={"mismatched_days": mismatched, "worst_difference": worst})


@asset_check(asset=AssetKey(["google_ads", "ad_clicks"]), description="Every gclid appears once.")
def gclids_are_unique(warehouse: WarehouseResource) -> AssetCheckResult:
    dup = warehouse.get().query("SELECT COUNT(*) - COUNT(DISTINCT gclid) AS duplicates FROM ad_clicks")
    duplicates = int(dup["duplicates"].iloc[0])
    return AssetCheckResult(passed=duplicates == 0, metadata={"duplicates": duplicates})


ingest_assets = [campaigns, campaign_performance, ad_performance, ad_clicks, contacts, deals, engagements]
ingest_checks = [ad_spend_reconciles_with_campaign_spend, gclids_are_unique]
