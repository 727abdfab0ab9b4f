"""Monitoring: the campaign_quality table and the sensors that turn it (and failed runs) into Slack posts."""

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Config,
    DefaultSensorStatus,
    MetadataValue,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    asset,
    run_failure_sensor,
    sensor,
)
from pydantic import Field

from gtm_assets import alerts as alert_logic
from gtm_assets import monitoring as monitoring_logic
from gtm_assets import quality as quality_logic
from gtm_assets.resources.slack import AlertChannel
from gtm_assets.warehouse.io_manager import WarehouseResource, table_preview
from gtm_assets.warehouse.store import WarehouseError


class CampaignQualityConfig(Config):
    history_days: int = Field(default=35, description="As-of days evaluated each run (each sees only what was known that morning).")


def daily_campaign_facts(cost_per_sql: pd.DataFrame, campaign_performance: pd.DataFrame,
                         campaigns: pd.DataFrame) -> pd.DataFrame:
    """Date x campaign facts the quality signals read: spend and outcomes plus impressions and budget loss."""
    perf = campaign_performance[["date", "campaign_id", "impressions", "search_budget_lost_impression_share"]]
    daily = cost_per_sql[["date", "campaign_id", "campaign_name", "spend", "clicks", "leads", "sqls"]].merge(
        perf, on=["date", "campaign_id"], how="left")
    return daily.merge(campaigns[["campaign_id", "channel"]], on="campaign_id", how="left")


@asset(
    group_name="monitor",
    ins={
        "cost_per_sql": AssetIn(),
        "campaign_performance": AssetIn(key=AssetKey(["google_ads", "campaign_performance"])),
        "campaigns": AssetIn(key=AssetKey(["google_ads", "campaigns"])),
        "enriched_leads": AssetIn(),
    },
    kinds={"pandas"},
    description="As-of date x campaign x signal: sql_rate_drop, cost_per_sql_rise, bot_traffic, "
    "budget_capped_winner, spend_anomaly, each with recent vs baseline numbers, status and severity. "
    "Each as-of day sees only what was known that morning (young leads are judged for their age).",
)
def campaign_quality(
    context: AssetExecutionContext,
    config: CampaignQualityConfig,
    cost_per_sql: pd.DataFrame,
    campaign_performance: pd.DataFrame,
    campaigns: pd.DataFrame,
    enriched_leads: pd.DataFrame,
) -> pd.DataFrame:
    daily = daily_campaign_facts(cost_per_sql, campaign_performance, campaigns)
    paid_leads = enriched_leads[enriched_leads["campaign_id"].notna()][
        ["contact_id", "campaign_id", "lead_at", "sql_at", "email_domain_type"]]
    end = pd.Timestamp(daily["date"].max())
    start = end - pd.Timedelta(days=config.history_days - 1)
    quality = quality_logic.evaluate_range(daily, paid_leads, start, end)
    latest = quality[quality["as_of"] == quality["as_of"].max()]
    flagged = latest[latest["status"] != "ok"]
    context.add_output_metadata({
        "as_of": str(end.date()),
        "alerts_today": int((latest["status"] == "alert").sum()),
        "watch_today": int((latest["status"] == "watch").sum()),
        "flagged_today": MetadataValue.md(
            flagged[["campaign_name", "signal", "status", "severity", "evidence"]].to_markdown(index=False)
            if len(flagged) else "_every campaign ok_"),
        "preview": table_preview(latest),
    })
    return quality


@sensor(
    minimum_interval_seconds=120,
    default_status=DefaultSensorStatus.RUNNING,
    description="Posts each new campaign-quality alert to Slack once (ledger: table alert_log); "
    "failed posts are retried on the next tick.",
)
def campaign_quality_alerts(context: SensorEvaluationContext, warehouse: WarehouseResource,
                            alert_channel: AlertChannel) -> SkipReason:
    try:
        _, result = monitoring_logic.deliver_new_alerts(warehouse.get(), alert_channel)
    except WarehouseError as exc:
        return SkipReason(f"warehouse busy or unavailable, retrying next tick: {exc}")
    return SkipReason(result.summary() if (result.delivered or result.failed or result.skipped) else "no new alerts")


@run_failure_sensor(
    default_status=DefaultSensorStatus.RUNNING,
    description="Posts failed runs (job, step, error summary without secrets) to the alert channel.",
)
def run_failure_to_slack(context: RunFailureSensorContext, alert_channel: AlertChannel) -> None:
    failures = context.get_step_failure_events()
    step = failures[0].step_key if failures else None
    error = (failures[0].event_specific_data.error.to_string() if failures and failures[0].event_specific_data.error
             else (context.failure_event.message or "run failed"))
    ui = f"{monitoring_logic.ui_base_url().rstrip('/')}/runs/{context.dagster_run.run_id}"
    text, blocks = alert_logic.format_run_failure(context.dagster_run.job_name, step, error,
                                                  secrets=alert_logic.secret_values_from_env(), ui_url=ui)
    if alert_channel.enabled:
        alert_channel.post(text, blocks=blocks)
    else:
        context.log.info(f"run failure not posted (no Slack token): {text}")


assets: list = [campaign_quality]
checks: list = []
sensors: list = [campaign_quality_alerts, run_failure_to_slack]
