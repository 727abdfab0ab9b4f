"""`gtm run` with GTM_SOURCE=live against the three wire-level fakes loaded from the demo world.

The live connectors, the ingest assets, the warehouse and the Dagster instance all run for real;
only Google Ads, HubSpot and the enrichment provider are fakes on 127.0.0.1. The warehouse a
live run builds must match what the demo source gives for the same range, except where the
live APIs cannot say the same thing (each exception is asserted, not skipped):
- ad_clicks.clicked_at is the click's date at 00:00 UTC (click_view has no time of day);
- engagements are HubSpot meetings only (no per-event CRM API for page views and the like);
- ad_performance has extra campaign-level remainder rows (ad_group_id NULL) where the demo
  world's campaign impressions/conversions exceed its slots' (see fakes/world_loader.py);
- HubSpot times carry milliseconds, the demo's microseconds.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pandas as pd
import pytest
from dagster import DagsterInstance, DagsterRunStatus, materialize
from dagster._serdes import serialize_value

from gtm_assets.cli import main
from gtm_assets.defs.ingest import ingest_assets
from gtm_assets.definitions import build_resources
from gtm_assets.warehouse.store import Warehouse
from gtm_assets_tests.fakes.google_ads_server import trust_fake_certificate
from gtm_assets_tests.fakes.world_loader import start_world_fakes, touch_contacts

# gRPC reads its TLS roots once per process, at the first secure channel: trust the fake first.
trust_fake_certificate()

START, END = "2026-11-16", "2026-11-22"
INGEST_TABLES = ("campaigns", "campaign_performance", "ad_performance", "ad_clicks", "contacts", "deals",
                 "engagements")


@pytest.fixture
def fakes(world):
    running = start_world_fakes(world)
    yield running
    running.stop()


@pytest.fixture
def live_env(gtm_env, fakes, monkeypatch):
    for name, value in fakes.env().items():
        monkeypatch.setenv(name, value)
    return gtm_env


def _demo_reference(tmp_path) -> Warehouse:
    """The ingest tables the demo source gives for START..END, in a warehouse of their own."""
    url = f"duckdb:///{tmp_path / 'demo_reference.duckdb'}"
    result = materialize(
        ingest_assets, resources=build_resources("demo", warehouse_url=url), instance=DagsterInstance.ephemeral(),
        tags={"dagster/asset_partition_range_start": START, "dagster/asset_partition_range_end": END},
    )
    assert result.success
    return Warehouse(url)


def _only_run(instance: DagsterInstance):
    (run,) = instance.get_runs()
    return run


def _secret_free(texts: dict[str, str], secrets: dict[str, str]) -> None:
    for where, text in texts.items():
        for what, value in secrets.items():
            assert value not in text, f"{what} appears in {where}"


def _root_cause(error):
    """The exception a step raised, under Dagster's DagsterExecutionStepExecutionError wrapper."""
    while error.cause is not None:
        error = error.cause
    return error


def _event_log_text(instance: DagsterInstance, run_id: str) -> str:
    """Every event of the run serialized whole: messages, metadata, errors with their causes."""
    records = instance.all_logs(run_id)
    assert records, "the run left no events"
    return "\n".join(serialize_value(record) for record in records) + serialize_value(instance.get_run_by_id(run_id))


def test_live_run_reproduces_the_demo_tables_and_leaks_no_secret(live_env, fakes, world, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    code = main(["run", "--start", START, "--end", END])
    out, err = capsys.readouterr()
    instance = DagsterInstance.get()
    run = _only_run(instance)
    assert code == 0, out + err
    assert run.status == DagsterRunStatus.SUCCESS and "status     SUCCESS" in out
    assert run.tags["dagster/asset_partition_range_end"] == END

    live = Warehouse(f"duckdb:///{live_env / 'warehouse.duckdb'}")
    demo = _demo_reference(tmp_path)
    tables = {name: (live.read(name), demo.read(name)) for name in INGEST_TABLES}

    campaigns, demo_campaigns = tables["campaigns"]
    columns = ["campaign_id", "campaign_name", "channel", "status", "daily_budget"]
    pd.testing.assert_frame_equal(campaigns[columns].sort_values("campaign_id", ignore_index=True),
                                  demo_campaigns[columns].sort_values("campaign_id", ignore_index=True),
                                  check_dtype=False)

    perf, demo_perf = (t.set_index(["date", "campaign_id"]).sort_index() for t in tables["campaign_performance"])
    assert len(perf) == len(demo_perf) == 7 * len(world.campaigns)
    for column in ("impressions", "clicks"):
        assert perf[column].tolist() == demo_perf[column].tolist(), column
    for column in ("cost", "conversions", "daily_budget", "search_budget_lost_impression_share"):
        pd.testing.assert_series_equal(perf[column], demo_perf[column], check_dtype=False, atol=1e-6, obj=column)

    ads, demo_ads = tables["ad_performance"]
    remainder = ads["ad_group_id"].isna()
    grain = ["date", "campaign_id", "ad_group_id", "keyword"]
    slots = ads[~remainder].sort_values(grain, ignore_index=True)
    pd.testing.assert_frame_equal(
        slots[grain + ["impressions", "clicks", "cost"]],
        demo_ads.sort_values(grain, ignore_index=True)[grain + ["impressions", "clicks", "cost"]],
        check_dtype=False, atol=1e-6)
    # remainder rows hold only what the demo's campaign row has beyond its slots: never spend or clicks
    assert remainder.sum() > 0 and ads.loc[remainder, "cost"].sum() == 0 and ads.loc[remainder, "clicks"].sum() == 0
    assert ads["cost"].sum() == pytest.approx(perf["cost"].sum(), abs=1e-6)
    assert ads["clicks"].sum() == demo_ads["clicks"].sum() == perf["clicks"].sum()

    clicks, demo_clicks = (t.set_index("gclid").sort_index() for t in tables["ad_clicks"])
    assert len(clicks) == len(demo_clicks) > 1000 and set(clicks.index) == set(demo_clicks.index)
    for column in ("campaign_id", "ad_group_id", "keyword", "date"):
        pd.testing.assert_series_equal(clicks[column], demo_clicks[column], check_dtype=False, obj=column)
    # documented difference: click_view has no time of day, so clicked_at is the day at 00:00 UTC
    pd.testing.assert_series_equal(clicks["clicked_at"], demo_clicks["clicked_at"].dt.floor("D"),
                                   check_dtype=False, obj="clicked_at")

    contacts, demo_contacts = (t.set_index("contact_id").sort_index() for t in tables["contacts"])
    assert len(contacts) == len(demo_contacts) == len(world.contacts)  # first run: full sync
    assert set(contacts.index) == set(world.contacts["contact_id"])
    for column in ("email", "company", "domain", "lifecycle_stage", "gclid", "utm_source", "utm_medium",
                   "utm_campaign"):
        pd.testing.assert_series_equal(contacts[column], demo_contacts[column], check_dtype=False, obj=column)
    for column in ("created_at", "sql_at", "customer_at"):
        drift = (contacts[column] - demo_contacts[column]).abs()
        assert (drift.dropna() < pd.Timedelta(milliseconds=1)).all(), column
        assert contacts[column].isna().tolist() == demo_contacts[column].isna().tolist(), column

    deals, demo_deals = (t.set_index("deal_id").sort_index() for t in tables["deals"])
    assert list(deals.index) == list(demo_deals.index)
    for column in ("contact_id", "amount", "stage", "is_won"):
        pd.testing.assert_series_equal(deals[column], demo_deals[column], check_dtype=False, obj=column)
    # open deals carry an expected close date in HubSpot; it must not become closed_at
    assert deals["closed_at"].isna().tolist() == demo_deals["closed_at"].isna().tolist()
    assert deals["closed_at"].isna().sum() > 0

    meetings, demo_engagements = tables["engagements"]
    demo_meetings = demo_engagements[demo_engagements["event_type"] == "meeting"]
    assert set(meetings["event_type"]) == {"meeting"} and set(demo_engagements["event_type"]) > {"meeting"}
    assert len(meetings) == len(demo_meetings) > 0
    live_pairs = sorted(zip(meetings["engagement_id"], meetings["contact_id"], meetings["date"]))
    assert live_pairs == sorted(zip(demo_meetings["engagement_id"], demo_meetings["contact_id"], demo_meetings["date"]))

    # enrichment ran through the live provider: each business domain asked once, facts as the register
    asked = fakes.enrichment.domains_requested()
    assert asked and len(asked) == len(set(asked))
    enriched = live.read("enriched_leads").dropna(subset=["company_size"])
    register = world.companies.drop_duplicates("domain").set_index("domain")
    assert len(enriched) > 0
    facts = ["company_size", "industry", "country", "tech_stack"]
    assert enriched[facts].to_numpy().tolist() == register.loc[enriched["domain"], facts].to_numpy().tolist()

    secrets = fakes.secrets()
    assert any(name.startswith("access token") for name in secrets)  # an OAuth token was issued and is checked
    _secret_free({"log records": caplog.text, "stdout": out, "stderr": err,
                  "Dagster event log": _event_log_text(instance, run.run_id)}, secrets)


def test_rejected_credentials_fail_the_run_naming_the_variables_never_the_values(live_env, fakes, monkeypatch,
                                                                               caplog, capsys):
    caplog.set_level(logging.DEBUG)
    wrong = {"HUBSPOT_ACCESS_TOKEN": "pat-na1-wrong-0d9e8f7a6b", "GOOGLE_ADS_REFRESH_TOKEN": "1//wrong-refresh-77c1",
             "GTM_ENRICHMENT_API_KEY": "enr-wrong-5544"}
    for name, value in wrong.items():
        monkeypatch.setenv(name, value)
    code = main(["run", "--start", END, "--end", END])
    out, err = capsys.readouterr()
    instance = DagsterInstance.get()
    run = _only_run(instance)
    assert code == 1 and run.status == DagsterRunStatus.FAILURE
    failures = {e.step_key: _root_cause(e.dagster_event.event_specific_data.error) for e in instance.all_logs(run.run_id)
                if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_FAILURE"}
    assert {"hubspot__contacts", "google_ads__campaigns"} <= set(failures) and "FAILED step hubspot__contacts" in out
    assert "HubSpotAuthError" in failures["hubspot__contacts"].cls_name
    assert "check HUBSPOT_ACCESS_TOKEN" in failures["hubspot__contacts"].message
    assert "GoogleAdsAuthError" in failures["google_ads__campaigns"].cls_name
    assert "GOOGLE_ADS_REFRESH_TOKEN" in failures["google_ads__campaigns"].message
    _secret_free({"log records": caplog.text, "stdout": out, "stderr": err,
                  "failure messages": "\n".join(f.to_string() for f in failures.values()),
                  "Dagster event log": _event_log_text(instance, run.run_id)},
                 {**fakes.secrets(), **{f"wrong {k}": v for k, v in wrong.items()}})


def _ingest_live(day: str) -> None:
    """The ingest assets alone for one day, live: the downstream tables play no part in syncing."""
    result = materialize(ingest_assets, resources=build_resources("live"), instance=DagsterInstance.get(),
                         partition_key=day)
    assert result.success


def test_second_run_syncs_only_the_hubspot_records_changed_since(live_env, fakes, world):
    first_day, second_day = "2026-11-21", "2026-11-22"
    _ingest_live(first_day)
    hubspot = fakes.hubspot
    first_run_requests = len(hubspot.requests)
    assert hubspot.requests_to("GET", "/crm/v3/objects/contacts"), "first run: a full sync (no table yet)"

    # a sales rep qualifies three older contacts during the second day
    touched = world.contacts.sort_values("created_at")["contact_id"].head(3).tolist()
    edited_at = pd.Timestamp(second_day, tz="UTC") + pd.Timedelta(hours=10)
    touch_contacts(hubspot, touched, edited_at, lifecyclestage="salesqualifiedlead")
    _ingest_live(second_day)

    second = hubspot.requests[first_run_requests:]
    assert not [r for r in second if r["method"] == "GET" and r["path"].startswith("/crm/v3/objects/")]
    searches = [r for r in second if r["path"] == "/crm/v3/objects/contacts/search"]
    window = (datetime(2026, 11, 22, tzinfo=timezone.utc), datetime(2026, 11, 23, tzinfo=timezone.utc))
    expected_ids = set(world.contacts.loc[
        (world.contacts["last_modified_at"] >= window[0]) & (world.contacts["last_modified_at"] < window[1]),
        "contact_id"]) | set(touched)
    assert {tuple(f["value"] for f in r["body"]["filterGroups"][0]["filters"]) for r in searches} == {
        tuple(str(int(t.timestamp() * 1000)) for t in window)}
    returned = [i for r in searches for i in r["result_ids"]]
    assert sorted(returned) == sorted(expected_ids)
    # pages of 200: the requests the changed records need, not one per stored contact
    assert len(searches) == max(1, -(-len(expected_ids) // 200)) < len(world.contacts) / 100

    stored = Warehouse(f"duckdb:///{live_env / 'warehouse.duckdb'}").read("contacts").set_index("contact_id")
    assert len(stored) == len(world.contacts)  # upserted, not appended
    assert set(stored.loc[touched, "lifecycle_stage"]) == {"salesqualifiedlead"}
    assert (stored.loc[touched, "last_modified_at"] == edited_at).all()
    assert [r["path"] for r in second if r["path"].startswith("/crm/v3/objects/deals")] == [
        "/crm/v3/objects/deals/search"]  # deals too: one search of the day's changes, no listing
