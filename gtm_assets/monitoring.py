"""Alert delivery over the warehouse: read campaign_quality and the alert_log ledger, post what is new.

One code path for the Dagster sensor and `gtm alerts`. The ledger lives in the warehouse (not
in a sensor cursor), so re-materializing a day, restarting the daemon or running `gtm alerts`
by hand never posts an alert twice.
"""

from __future__ import annotations

import logging
import os

import pandas as pd

from gtm_assets import alerts as alert_logic
from gtm_assets.warehouse.store import Warehouse

log = logging.getLogger("gtm_assets.monitoring")
LEDGER_TABLE = "alert_log"


def ui_base_url() -> str:
    return os.environ.get("GTM_UI_BASE_URL", "http://127.0.0.1:3000")


def read_ledger(warehouse: Warehouse) -> pd.DataFrame:
    if not warehouse.table_exists(LEDGER_TABLE):
        return alert_logic.empty_ledger()
    return warehouse.read(LEDGER_TABLE)


def pending_alerts(warehouse: Warehouse, min_severity: str = "info") -> pd.DataFrame:
    """The alerts not yet delivered (one per episode), from the stored campaign_quality."""
    if not warehouse.table_exists("campaign_quality"):
        log.info("campaign_quality has not been materialized yet: nothing to alert on")
        return pd.DataFrame()
    quality = warehouse.read("campaign_quality")
    return alert_logic.new_alerts(quality, read_ledger(warehouse), min_severity=min_severity)


def deliver_new_alerts(warehouse: Warehouse, channel, send: bool = True,
                       min_severity: str = "info") -> tuple[pd.DataFrame, alert_logic.DeliveryResult]:
    """Post the undelivered alerts through `channel`, recording each outcome in alert_log as it happens.

    With send=False nothing is posted and nothing is written: a dry run that lists what would go out.
    """
    alerts = pending_alerts(warehouse, min_severity)
    if alerts.empty:
        return alerts, alert_logic.DeliveryResult()
    if not send:
        return alerts, alert_logic.DeliveryResult(skipped=len(alerts))

    def write_ledger(rows: pd.DataFrame) -> None:
        warehouse.write(LEDGER_TABLE, rows[alert_logic.LEDGER_COLUMNS], key=alert_logic.LEDGER_KEY)

    result = alert_logic.deliver(alerts, channel, write_ledger, ui_base_url=ui_base_url(),
                                 secrets=alert_logic.secret_values_from_env())
    return alerts, result


def run_alerts_once(send: bool) -> int:
    """`gtm alerts [--send]`: the sensor's code path, once, from the shell."""
    from dagster import build_resources

    from gtm_assets.definitions import build_resources as gtm_resources

    resources = gtm_resources()
    with build_resources({"warehouse": resources["warehouse"], "alert_channel": resources["alert_channel"]}) as built:
        alerts, result = deliver_new_alerts(built.warehouse.get(), built.alert_channel, send=send)
    if alerts.empty:
        print("gtm alerts: no new alerts")
        return 0
    print(f"gtm alerts: {len(alerts)} new alert(s)")
    for row in alerts.to_dict("records"):
        text, _ = alert_logic.format_alert(row, ui_base_url())
        print("  - " + alert_logic.redact(text.splitlines()[0], alert_logic.secret_values_from_env()))
    if send:
        print(f"  delivery: {result.summary()}")
    else:
        print("  (dry run: use --send to deliver them)")
    return 1 if result.failed else 0
