"""The code location: every asset, check, job, schedule and sensor, wired to demo or live sources.

GTM_SOURCE (demo|live) is read here and nowhere else; GTM_WAREHOUSE_URL picks the warehouse.
"""



import os
from datetime import timedelta, timezone

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    EnvVar,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    in_process_executor,
    multiprocess_executor,
    schedule,
)

from gtm_assets.defs import leads, marts, monitoring
from gtm_assets.defs.ingest import daily_partitions, ingest_assets, ingest_checks
from gtm_assets.demo.settings import DemoWorldConfig
from gtm_assets.warehouse.io_manager import WarehouseIOManager, WarehouseResource, default_warehouse_url, gtm_home

SOURCES = ("demo", "live")


class ConfigurationError(RuntimeError):
    """The environment asks for something that cannot be set up; the message says what to set."""


def demo_world_config() -> DemoWorldConfig:
    return DemoWorldConfig(
        scale=float(os.environ.get("GTM_DEMO_SCALE", "1")),
        seed=int(os.environ.get("GTM_DEMO_SEED", "7")),
        end_date=os.environ.get("GTM_DEMO_END_DATE") or None,
    )


def source_resources(source: str) -> dict:
    """The resources that reach the outside systems, demo or live."""
    if source == "demo":
        from gtm_assets.resources.enrichment import DemoFirmographics
        from gtm_assets.resources.google_ads import DemoGoogleAds
        from gtm_assets.resources.hubspot import DemoHubSpot

        from gtm_assets.resources.slack.live import LoggingAlertChannel

        world = demo_world_config()
        return {
            "google_ads": DemoGoogleAds(world_config=world),
            "hubspot": DemoHubSpot(world_config=world),
            "firmographics": DemoFirmographics(world_config=world),
            # The demo posts nowhere: alerts go to the log and to a JSON-lines inbox under GTM_HOME.
            "alert_channel": LoggingAlertChannel(path=str(gtm_home() / "alerts.jsonl"), channel="#demo-alerts"),
        }
    if source == "live":
        from gtm_assets.resources.google_ads.live import LiveGoogleAds
        from gtm_assets.resources.hubspot.live import LiveHubSpot

        return {
            "google_ads": LiveGoogleAds(
                developer_token=EnvVar("GOOGLE_ADS_DEVELOPER_TOKEN"),
                client_id=EnvVar("GOOGLE_ADS_CLIENT_ID"),
                client_secret=EnvVar("GOOGLE_ADS_CLIENT_SECRET"),
                refresh_token=EnvVar("GOOGLE_ADS_REFRESH_TOKEN"),
                customer_id=EnvVar("GOOGLE_ADS_CUSTOMER_ID"),
                login_customer_id=os.environ.get("GOOGLE_ADS_LOGIN_CUSTOMER_ID") or None,
                endpoint=os.environ.get("GOOGLE_ADS_ENDPOINT", "googleads.googleapis.com:443"),
                token_uri=os.environ.get("GOOGLE_ADS_TOKEN_URI", "https://oauth2.googleapis.com/token"),
            ),
            "hubspot": LiveHubSpot(
                access_token=EnvVar("HUBSPOT_ACCESS_TOKEN"),
                base_url=os.environ.get("HUBSPOT_API_BASE_URL", "https://api.hubapi.com"),
            ),
            "firmographics": _live_firmographics(),
            "alert_channel": _live_alert_channel(),
        }
    raise ConfigurationError(f"GTM_SOURCE must be one of {SOURCES}, got {source!r}")


def _live_firmographics():
    from gtm_assets.resources.enrichment.live import HttpFirmographics

    return HttpFirmographics(
        base_url=os.environ.get("GTM_ENRICHMENT_BASE_URL", ""),
        api_key=_optional_env("GTM_ENRICHMENT_API_KEY") or "",
    )


def _optional_env(name: str):
    """EnvVar when the variable is set (so the UI shows its name, never its value), else None."""
    return EnvVar(name) if os.environ.get(name) else None


def _live_alert_channel():
    from gtm_assets.resources.slack.live import SlackAlertChannel

    # No token: alerts are still computed, stored and logged; nothing is posted.
    return SlackAlertChannel(
        token=_optional_env("SLACK_BOT_TOKEN"),
        channel=os.environ.get("SLACK_ALERT_CHANNEL") or None,
        base_url=os.environ.get("SLACK_API_BASE_URL", "https://slack.com/api/"),
    )


def build_resources(source: str | None = None, warehouse_url: str | None = None) -> dict:
    """Every resource the assets need: sources (demo or live), the warehouse and its IO manager."""
    source = (source or os.environ.get("GTM_SOURCE") or "demo").strip().lower()
    warehouse = WarehouseResource(url=warehouse_url or default_warehouse_url())
    return {
        **source_resources(source),
        "warehouse": warehouse,
        "io_manager": WarehouseIOManager(warehouse=warehouse),
    }


def build_defs(source: str | None = None, warehouse_url: str | None = None) -> Definitions:
    resources = build_resources(source, warehouse_url)
    warehouse_url = resources["warehouse"].url

    assets = [*ingest_assets, *leads.assets, *marts.assets, *monitoring.assets]
    checks = [*ingest_checks, *leads.checks, *marts.checks, *monitoring.checks]
    daily_job = define_asset_job(
        "gtm_daily",
        selection=AssetSelection.all(),
        description="Ingest one day (or a range, as one run) and rebuild every downstream table.",
    )

    @schedule(
        job=daily_job,
        cron_schedule=os.environ.get("GTM_SCHEDULE_CRON", "0 6 * * *"),
        execution_timezone=os.environ.get("GTM_SCHEDULE_TIMEZONE", "UTC"),
        default_status=DefaultScheduleStatus.RUNNING,
        description="Every morning: yesterday's partition (UTC) and everything downstream.",
    )
    def gtm_daily_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        yesterday = context.scheduled_execution_time.astimezone(timezone.utc).date() - timedelta(days=1)
        key = yesterday.isoformat()
        return RunRequest(run_key=key, partition_key=key)

    # DuckDB allows one writing process per file: run steps in one process. Postgres can take more.
    executor = in_process_executor if warehouse_url.startswith("duckdb") else multiprocess_executor
    return Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[daily_job],
        schedules=[gtm_daily_schedule],
        sensors=monitoring.sensors,
        resources=resources,
        executor=executor,
    )


defs = build_defs()
__all__ = ["build_defs", "build_resources", "daily_partitions", "defs"]
