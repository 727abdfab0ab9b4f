"""Monitoring end to end: campaign_quality on the demo world, the alert sensor and the run-failure
sensor delivering through the real slack-sdk to a local fake Slack, and `gtm alerts`."""

from __future__ import annotations

import json
import shutil

import pytest
from dagster import AssetKey, DagsterInstance, build_run_status_sensor_context, build_sensor_context, job, op

from gtm_assets.cli import main
from gtm_assets.defs.monitoring import campaign_quality_alerts, run_failure_to_slack
from gtm_assets.demo import world as w
from gtm_assets.definitions import build_defs
from gtm_assets.resources.slack.live import SlackAlertChannel
from gtm_assets.warehouse.io_manager import WarehouseResource
from gtm_assets.warehouse.store import Warehouse
from gtm_assets_tests.conftest import END_DATE
from gtm_assets_tests.fakes.slack_server import FakeSlack

TOKEN = "xoxb-1234-5678-monitoringtesttoken"
HEALTHY = {"10001", "10002", "10005", "10009", "10010", "10007"}


@pytest.fixture(scope="module")
def built_demo(tmp_path_factory):
    """The 90-day demo built once; each test gets its own copy of the warehouse."""
    home = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GTM_HOME", str(home))
        mp.setenv("DAGSTER_HOME", str(home / "dagster"))
        mp.setenv("GTM_SOURCE", "demo")
        mp.setenv("GTM_DEMO_END_DATE", END_DATE.isoformat())
        mp.delenv("GTM_WAREHOUSE_URL", raising=False)
        assert main(["run", "--days", "90", "--end", END_DATE.isoformat()]) == 0
    return home / "warehouse.duckdb"


@pytest.fixture
def warehouse_url(built_demo, gtm_env):
    copy = gtm_env / "warehouse.duckdb"
    shutil.copyfile(built_demo, copy)
    return f"duckdb:///{copy}"


@pytest.fixture
def slack():
    with FakeSlack(tokens=(TOKEN,)) as fake:
        yield fake


def _tick(warehouse_url: str, channel) -> str:
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(),
        resources={"warehouse": WarehouseResource(url=warehouse_url), "alert_channel": channel},
    )
    result = campaign_quality_alerts.evaluate_tick(context)
    return result.skip_message or ""


def _channel(fake: FakeSlack, token: str | None = TOKEN) -> SlackAlertChannel:
    return SlackAlertChannel(token=token, channel="#gtm-alerts", base_url=fake.base_url)


def test_demo_flags_the_planted_scenarios_and_leaves_healthy_campaigns_alone(built_demo, world):
    quality = Warehouse(f"duckdb:///{built_demo}").read("campaign_quality")
    alerts = quality[quality["status"] == "alert"]
    latest = alerts[alerts["as_of"] == alerts["as_of"].max()]
    flagged_now = set(zip(latest["campaign_id"], latest["signal"]))
    assert (w.SQL_RATE_COLLAPSE, "sql_rate_drop") in flagged_now
    assert (w.COST_PER_SQL_CLIMB, "cost_per_sql_rise") in flagged_now
    assert (w.BUDGET_CAPPED_WINNER, "budget_capped_winner") in flagged_now
    assert not set(latest["campaign_id"]) & HEALTHY
    burst = world.scenarios.set_index("signal").loc["bot_traffic"]
    bot_days = alerts[(alerts["campaign_id"] == w.BOT_TRAFFIC) & (alerts["signal"] == "bot_traffic")]["as_of"]
    assert len(bot_days) and bot_days.min().date() <= burst["end_date"] and bot_days.min().date() >= burst["start_date"]
    # the evidence is in numbers, with the sample sizes
    collapse = latest[(latest["campaign_id"] == w.SQL_RATE_COLLAPSE) & (latest["signal"] == "sql_rate_drop")].iloc[0]
    assert "SQLs from" in collapse["evidence"] and collapse["recent"] < 0.6 * collapse["baseline"]


def test_each_alert_is_posted_once_across_ticks_and_rematerialization(warehouse_url, slack, monkeypatch):
    first = _tick(warehouse_url, _channel(slack))
    posted = len(slack.messages)
    assert posted >= 3 and "delivered" in first
    texts = " ".join(m.get("text", "") for m in slack.messages)
    assert "Search - Generic CRM" in texts and "campaign_quality" in json.dumps(slack.messages)
    assert TOKEN not in json.dumps(slack.messages)
    assert _tick(warehouse_url, _channel(slack)) == "no new alerts"
    # re-materialize the day's quality table: still nothing new to post
    monkeypatch.setenv("GTM_WAREHOUSE_URL", warehouse_url)
    defs = build_defs()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=DagsterInstance.ephemeral(), asset_selection=[AssetKey("campaign_quality")])
    assert result.success
    assert _tick(warehouse_url, _channel(slack)) == "no new alerts"
    assert len(slack.messages) == posted
    ledger = Warehouse(warehouse_url).read("alert_log")
    assert (ledger["status"] == "delivered").sum() == posted
    assert not ledger.duplicated(["campaign_id", "signal", "alert_day"]).any()


@pytest.mark.parametrize("fault", [{"status": 429, "retry_after": 1}, {"status": 503}])
def test_a_slack_failure_is_retried_on_the_next_tick_and_nothing_is_lost(warehouse_url, slack, fault):
    slack.fail_next(**fault)
    first = _tick(warehouse_url, _channel(slack))
    assert "failed" in first
    after_first = len(slack.messages)
    _tick(warehouse_url, _channel(slack))
    ledger = Warehouse(warehouse_url).read("alert_log")
    delivered = ledger[ledger["status"] == "delivered"]
    assert len(slack.messages) == after_first + 1 == len(delivered)
    texts = [m["text"] for m in slack.messages]
    assert len(texts) == len(set(texts))  # the retried alert was posted exactly once
    assert _tick(warehouse_url, _channel(slack)) == "no new alerts"


def test_without_a_token_alerts_are_stored_and_logged_then_posted_once_a_token_exists(warehouse_url, slack):
    message = _tick(warehouse_url, _channel(slack, token=None))
    assert slack.messages == [] and "not posted (no channel)" in message
    ledger = Warehouse(warehouse_url).read("alert_log")
    assert len(ledger) and set(ledger["status"]) == {"pending"}
    _tick(warehouse_url, _channel(slack))
    assert len(slack.messages) == len(ledger)


def test_failed_runs_are_posted_without_secrets(slack, monkeypatch):
    secret = "pat-na1-0f3c2b1a-this-is-secret"
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", secret)

    @op
    def fetch_contacts():
        raise RuntimeError(f"HubSpot refused token {secret}: 401")

    @job
    def hubspot_sync():
        fetch_contacts()

    instance = DagsterInstance.ephemeral()
    result = hubspot_sync.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = build_run_status_sensor_context(
        sensor_name="run_failure_to_slack", dagster_instance=instance, dagster_run=result.dagster_run,
        dagster_event=failure, resources={"alert_channel": _channel(slack)},
    ).for_run_failure()
    run_failure_to_slack(context)
    assert len(slack.messages) == 1
    body = json.dumps(slack.messages[0])
    assert "hubspot_sync" in body and "fetch_contacts" in body and "401" in body
    assert secret not in body and TOKEN not in body


def test_gtm_alerts_lists_then_sends_once(warehouse_url, gtm_env, capsys, monkeypatch):
    monkeypatch.setenv("GTM_WAREHOUSE_URL", warehouse_url)
    assert main(["alerts"]) == 0
    dry = capsys.readouterr().out
    assert "new alert(s)" in dry and "dry run" in dry
    assert not Warehouse(warehouse_url).table_exists("alert_log")
    assert main(["alerts", "--send"]) == 0
    assert "delivered" in capsys.readouterr().out
    inbox = [json.loads(line) for line in (gtm_env / "alerts.jsonl").read_text().splitlines()]
    assert inbox and all("text" in m for m in inbox)
    assert main(["alerts", "--send"]) == 0
    assert "no new alerts" in capsys.readouterr().out
