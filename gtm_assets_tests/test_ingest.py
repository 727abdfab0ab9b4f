"""Ingest assets on the demo world, through the real warehouse IO manager and a real Dagster instance."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from gtm_assets import contracts
from gtm_assets.defs.ingest import ingest_assets
from gtm_assets.definitions import build_resources
from gtm_assets.warehouse.store import Warehouse

RANGE = ("2026-11-16", "2026-11-22")


def _range_tags(start: str, end: str) -> dict:
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def _ingest(instance, resources, start=RANGE[0], end=RANGE[1]):
    if start == end:
        return materialize(ingest_assets, resources=resources, instance=instance, partition_key=start)
    return materialize(ingest_assets, resources=resources, instance=instance, tags=_range_tags(start, end))


@pytest.fixture
def ingested(gtm_env):
    instance = DagsterInstance.get()
    resources = build_resources()
    result = _ingest(instance, resources)
    assert result.success
    return instance, resources, result, resources["warehouse"].get()


def _fingerprint(warehouse: Warehouse) -> dict:
    return {
        "ad_clicks": warehouse.query("SELECT COUNT(*) n, COUNT(DISTINCT gclid) d FROM ad_clicks").iloc[0].tolist(),
        "campaign_performance": warehouse.query("SELECT COUNT(*) n, ROUND(SUM(cost), 2) s FROM campaign_performance").iloc[0].tolist(),
        "ad_performance": warehouse.query("SELECT COUNT(*) n, ROUND(SUM(cost), 2) s FROM ad_performance").iloc[0].tolist(),
        "contacts": warehouse.query("SELECT COUNT(*) n, COUNT(DISTINCT contact_id) d FROM contacts").iloc[0].tolist(),
        "deals": warehouse.query("SELECT COUNT(*) n, ROUND(SUM(amount), 2) s FROM deals").iloc[0].tolist(),
        "engagements": warehouse.query("SELECT COUNT(*) n, COUNT(DISTINCT engagement_id) d FROM engagements").iloc[0].tolist(),
        "campaigns": warehouse.query("SELECT COUNT(*) n FROM campaigns").iloc[0].tolist(),
    }


def test_every_ingest_table_lands_with_the_contract_columns(ingested, world):
    instance, _, result, warehouse = ingested
    for name, contract in contracts.INGEST_CONTRACTS.items():
        table = warehouse.read(name)
        assert set(contract.columns) <= set(table.columns), name
        assert len(table) > 0, name
    start, end = pd.Timestamp(RANGE[0]), pd.Timestamp(RANGE[1])
    in_range = world.clicks[(world.clicks["date"] >= start) & (world.clicks["date"] <= end)]
    clicks = warehouse.read("ad_clicks")
    assert len(clicks) == len(in_range) and set(clicks["gclid"]) == set(in_range["gclid"])
    perf = warehouse.read("campaign_performance")
    assert len(perf) == 7 * len(world.campaigns)
    assert perf["cost"].sum() == pytest.approx(
        world.campaign_performance.query("@start <= date <= @end")["cost"].sum(), abs=0.01)
    # money in currency units, ids as text, times in UTC
    assert perf["cost"].dtype == "float64" and str(clicks["clicked_at"].dt.tz) == "UTC"
    assert pd.api.types.is_string_dtype(clicks["campaign_id"])
    # metadata for the UI: row counts and a preview on every ingest materialization
    for asset in ingest_assets:
        mat = instance.get_latest_materialization_event(asset.key).asset_materialization
        assert mat.metadata["rows"].value >= 0 and "preview" in mat.metadata and "table_rows" in mat.metadata


def test_the_first_contact_sync_is_full_and_the_next_incremental(ingested, world):
    instance, resources, _, warehouse = ingested
    assert warehouse.row_count("contacts") == len(world.contacts)  # table was empty: full sync
    first = instance.get_latest_materialization_event(AssetKey(["hubspot", "contacts"])).asset_materialization
    assert first.metadata["sync"].value == "full"
    assert _ingest(instance, resources, "2026-11-21", "2026-11-21").success
    second = instance.get_latest_materialization_event(AssetKey(["hubspot", "contacts"])).asset_materialization
    assert second.metadata["sync"].value == "incremental"
    day = pd.Timestamp("2026-11-21", tz="UTC")
    modified_that_day = world.contacts[(world.contacts["last_modified_at"] >= day)
                                       & (world.contacts["last_modified_at"] < day + pd.Timedelta(days=1))]
    assert second.metadata["rows"].value == len(modified_that_day) > 0
    assert warehouse.row_count("contacts") == len(world.contacts)  # upserted, not appended


def test_rerunning_a_partition_is_idempotent(ingested):
    instance, resources, _, warehouse = ingested
    before = _fingerprint(warehouse)
    for _ in range(2):
        assert _ingest(instance, resources, "2026-11-20", "2026-11-20").success
    assert _fingerprint(warehouse) == before
    assert _ingest(instance, resources).success  # and the whole range again
    assert _fingerprint(warehouse) == before


def test_conform_quarantines_bad_rows_with_a_reason_and_keeps_good_ones():
    frame = pd.DataFrame({
        "deal_id": ["1", "2", None, "4"],
        "contact_id": ["a", "b", "c", "d"],
        "amount": ["1000", "12.5", "5", "lots"],
        "stage": ["closedwon"] * 4,
        "created_at": ["2026-01-01T00:00:00Z", "not a date", "2026-01-02", "2026-01-03"],
        "closed_at": [None, None, None, None],
        "is_won": ["true", "false", "true", "maybe"],
    })
    good, bad = contracts.conform(frame, contracts.DEALS)
    assert good["deal_id"].tolist() == ["1"]
    assert good["amount"].tolist() == [1000.0] and bool(good["is_won"].iloc[0]) is True
    reasons = dict(zip(bad["deal_id"].fillna("<none>"), bad["reason"]))
    assert reasons["2"] == "created_at: unparseable timestamp value"
    assert reasons["<none>"] == "deal_id: missing"
    assert "amount: unparseable float value" in reasons["4"] and "is_won: unparseable bool value" in reasons["4"]
    records = contracts.quarantine_records("deals", bad, contracts.DEALS.key)
    assert len(records) == 3 and set(records["source_table"]) == {"deals"}
    assert records["record_key"].is_unique  # a keyless record gets a content key, never ""
    keyless = records.loc[bad["deal_id"].isna().to_numpy(), "record_key"].iloc[0]
    assert keyless.startswith("sha1:")
    again = contracts.quarantine_records("deals", bad[bad["deal_id"].isna()], contracts.DEALS.key)
    assert again["record_key"].iloc[0] == keyless  # the same bad record maps to the same row on a re-run


def test_rows_a_connector_flagged_are_quarantined_with_its_reason():
    frame = pd.DataFrame({
        "contact_id": ["1", "2"], "email": ["a@b.com", None], "company": ["A", "B"], "domain": ["b.com", None],
        "lifecycle_stage": ["lead", "lead"], "created_at": ["2026-01-01", "2026-01-02"], "gclid": [None, None],
        "utm_source": [None, None], "utm_medium": [None, None], "utm_campaign": [None, None],
        "quarantine_reason": [None, "email: missing"],
    })
    good, bad = contracts.conform(frame, contracts.CONTACTS)
    assert good["contact_id"].tolist() == ["1"] and "quarantine_reason" not in good.columns
    assert bad["reason"].tolist() == ["email: missing"]


def test_a_source_missing_a_contract_column_is_a_clear_error():
    with pytest.raises(contracts.ContractError, match=r"lacks contract column\(s\) \['gclid'\]"):
        contracts.conform(pd.DataFrame({"clicked_at": [], "date": [], "campaign_id": [], "ad_group_id": [],
                                        "keyword": []}), contracts.AD_CLICKS)
