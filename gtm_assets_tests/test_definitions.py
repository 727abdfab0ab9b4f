"""The code location loads, validates, and picks its sources from GTM_SOURCE only."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dagster import AssetKey, DefaultScheduleStatus, Definitions

from gtm_assets.definitions import ConfigurationError, build_defs

CONTRACT_ASSETS = [
    ["google_ads", "campaigns"], ["google_ads", "ad_performance"], ["google_ads", "ad_clicks"],
    ["hubspot", "contacts"], ["hubspot", "deals"], ["hubspot", "engagements"],
]


def test_definitions_load_and_hold_the_contract_assets(gtm_env):
    defs = build_defs()
    Definitions.validate_loadable(defs)
    keys = {key.path[-1] for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {path[-1] for path in CONTRACT_ASSETS} <= keys
    for path in CONTRACT_ASSETS:
        assert defs.resolve_assets_def(AssetKey(path)).partitions_def is not None
    job = defs.resolve_job_def("gtm_daily")
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def("gtm_daily_schedule")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "0 6 * * *" and schedule.execution_timezone == "UTC"


def test_schedule_time_and_timezone_come_from_the_environment(gtm_env, monkeypatch):
    monkeypatch.setenv("GTM_SCHEDULE_CRON", "30 7 * * 1-5")
    monkeypatch.setenv("GTM_SCHEDULE_TIMEZONE", "Europe/Berlin")
    schedule = build_defs().resolve_schedule_def("gtm_daily_schedule")
    assert schedule.cron_schedule == "30 7 * * 1-5" and schedule.execution_timezone == "Europe/Berlin"


def test_schedule_requests_yesterdays_partition(gtm_env):
    from datetime import datetime, timezone

    from dagster import DagsterInstance, build_schedule_context

    defs = build_defs()
    schedule = defs.resolve_schedule_def("gtm_daily_schedule")
    context = build_schedule_context(instance=DagsterInstance.ephemeral(), repository_def=defs.get_repository_def(),
                                     scheduled_execution_time=datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc))
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2026-11-22" and request.run_key == "2026-11-22"


def test_an_unknown_source_is_a_clear_error(gtm_env, monkeypatch):
    monkeypatch.setenv("GTM_SOURCE", "staging")
    with pytest.raises(ConfigurationError, match=r"GTM_SOURCE must be one of \('demo', 'live'\), got 'staging'"):
        build_defs()


def test_dagster_cli_validates_the_code_location(gtm_env):
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "All code locations passed validation" in done.stderr + done.stdout
