"""Specifications of alert selection, Slack messages, delivery through the fake Slack, the ledger and redaction."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from gtm_assets.alerts import (
    LEDGER_COLUMNS, deliver, empty_ledger, format_alert, format_digest, format_run_failure, merge_ledger,
    new_alerts, redact,
)
from gtm_assets.resources.slack.live import AlertDeliveryError, LoggingAlertChannel, SlackAlertChannel
from gtm_assets_tests.fakes.slack_server import FakeSlack

TOKEN = "xoxb-test-token"
UI = "http://dagster.example:3000"


def quality_row(day: str, status: str = "alert", campaign: str = "c1", signal: str = "sql_rate_drop",
                severity: str = "warning") -> dict:
    return {
        "as_of": pd.Timestamp(day), "campaign_id": campaign, "campaign_name": f"Brand Search {campaign}",
        "signal": signal, "recent": 0.105, "baseline": 0.284, "status": status, "severity": severity,
        "evidence": "Lag-adjusted SQL rate 10.5% over the last 14 days (9 SQLs from 120 leads) vs 28.4%.",
        "window_days": 14, "recent_n": 85.6, "baseline_n": 402.0, "probability": 0.997, "p_value": None,
        "z": None, "spend_at_stake": 12345.0, "suggested_action": "Check search terms.", "channel": "search",
    }


def quality(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


class Ledger:
    """The alert_log table, in memory: upserted by key like the warehouse does."""

    def __init__(self) -> None:
        self.frame = empty_ledger()

    def write(self, rows: pd.DataFrame) -> None:
        self.frame = merge_ledger(self.frame, rows)


def tick(q: pd.DataFrame, ledger: Ledger, channel, **kwargs):
    return deliver(new_alerts(q, ledger.frame, **kwargs), channel, ledger.write, ui_base_url=UI)


@pytest.fixture
def slack():
    with FakeSlack(tokens=(TOKEN,)) as fake:
        yield fake


def channel_for(fake: FakeSlack, token: str | None = TOKEN) -> SlackAlertChannel:
    return SlackAlertChannel(token=token, channel="#gtm-alerts", base_url=fake.base_url)


def test_alert_message_names_campaign_numbers_stake_action_and_link():
    text, blocks = format_alert(quality_row("2025-03-10"), UI)
    rendered = text + json.dumps(blocks)
    for expected in ("Brand Search c1", "SQL rate drop", "10.5% SQL rate", "28.4% SQL rate", "n = 86 mature leads",
                     "n = 402 mature leads", "last 14 days", "12,345", "Check search terms.", "2025-03-10",
                     f"{UI}/assets/campaign_quality"):
        assert expected in rendered, expected
    assert blocks[0]["type"] == "header" and all(len(json.dumps(b)) < 3000 for b in blocks)


def test_one_post_per_alert_across_repeated_evaluations(slack):
    ledger, channel = Ledger(), channel_for(slack)
    q = quality(quality_row("2025-03-10"), quality_row("2025-03-10", status="ok", campaign="c2"))
    results = [tick(q, ledger, channel) for _ in range(3)]
    assert [r.delivered for r in results] == [1, 0, 0]
    assert len(slack.messages) == 1 and slack.messages[0]["channel"] == "#gtm-alerts"
    logged = ledger.frame.iloc[0]
    assert list(ledger.frame.columns) == LEDGER_COLUMNS
    assert (logged["status"], logged["attempts"], logged["slack_ts"]) == ("delivered", 1, slack.messages[0]["ts"])
    assert pd.notna(logged["posted_at"])


def test_an_ongoing_episode_is_posted_once_and_a_cleared_then_returned_alert_is_new(slack):
    ledger, channel = Ledger(), channel_for(slack)
    days = [("2025-03-10", "alert"), ("2025-03-11", "alert"), ("2025-03-12", "alert"),
            ("2025-03-13", "watch"), ("2025-03-14", "alert"), ("2025-03-15", "alert")]
    posted = [tick(quality(quality_row(day, status)), ledger, channel).delivered for day, status in days]
    assert posted == [1, 0, 0, 0, 1, 0]
    log_rows = ledger.frame.set_index("alert_day")
    assert log_rows.loc["2025-03-12", "status"] == "continued"
    assert log_rows.loc["2025-03-12", "episode_start"] == pd.Timestamp("2025-03-10")
    assert log_rows.loc["2025-03-15", "episode_start"] == pd.Timestamp("2025-03-14")
    assert "2025-03-13" not in log_rows.index.strftime("%Y-%m-%d")


def test_episodes_are_found_within_a_quality_history_too():
    history = quality(*(quality_row(d, s) for d, s in [("2025-03-10", "alert"), ("2025-03-11", "alert"),
                                                     ("2025-03-12", "ok"), ("2025-03-13", "alert")]))
    picked = new_alerts(history, None, max_age_days=None)
    assert sorted(picked["episode_start"].dt.strftime("%m-%d")) == ["03-10", "03-13"]
    # The freshest day of each episode is the one offered, with its numbers.
    assert sorted(picked["alert_day"].dt.strftime("%m-%d")) == ["03-11", "03-13"]
    assert len(new_alerts(history, None, max_age_days=1)) == 1  # a backfill does not post last month


@pytest.mark.parametrize("fault", [dict(status=429, retry_after=30), dict(status=503), dict(status=500)])
def test_rate_limit_or_server_error_leaves_the_alert_pending_and_it_posts_next_tick_exactly_once(slack, fault):
    ledger, channel = Ledger(), channel_for(slack)
    q = quality(quality_row("2025-03-10"))
    slack.fail_next(**fault)
    first = tick(q, ledger, channel)
    assert (first.delivered, first.failed) == (0, 1) and slack.messages == []
    failed = ledger.frame.iloc[0]
    assert failed["status"] == "failed" and failed["attempts"] == 1 and str(fault["status"]) in failed["last_error"]
    assert TOKEN not in failed["last_error"]
    second, third = tick(q, ledger, channel), tick(q, ledger, channel)
    assert (second.delivered, third.delivered) == (1, 0)
    assert len(slack.messages) == 1
    assert ledger.frame.iloc[0]["status"] == "delivered" and ledger.frame.iloc[0]["attempts"] == 2


def test_a_failed_episode_start_is_posted_on_its_next_alert_day(slack):
    ledger, channel = Ledger(), channel_for(slack)
    slack.fail_next(status=503)
    tick(quality(quality_row("2025-03-10")), ledger, channel)
    result = tick(quality(quality_row("2025-03-11")), ledger, channel)
    assert result.delivered == 1 and len(slack.messages) == 1
    delivered = ledger.frame[ledger.frame["status"] == "delivered"].iloc[0]
    assert delivered["episode_start"] == pd.Timestamp("2025-03-10") and delivered["alert_day"] == pd.Timestamp("2025-03-11")


def test_rate_limit_error_carries_retry_after_and_no_token(slack):
    slack.fail_next(status=429, retry_after=7)
    with pytest.raises(AlertDeliveryError) as caught:
        channel_for(slack).post("hello")
    assert caught.value.retry_after == 7 and caught.value.retryable and TOKEN not in str(caught.value)


def test_wrong_token_is_a_clear_permanent_error_without_the_token(slack):
    wrong = "xoxb-wrong-0123456789"
    with pytest.raises(AlertDeliveryError, match="invalid_auth.*SLACK_BOT_TOKEN") as caught:
        channel_for(slack, token=wrong).post("hello")
    assert not caught.value.retryable and wrong not in str(caught.value)
    assert slack.requests[-1]["authorization"] == f"Bearer {wrong}"  # it did reach the wire


def test_unreachable_slack_is_a_delivery_error():
    channel = SlackAlertChannel(token=TOKEN, channel="#x", base_url="http://127.0.0.1:9/api/", timeout_seconds=2)
    with pytest.raises(AlertDeliveryError, match="Could not reach Slack"):
        channel.post("hello")


def test_without_a_token_alerts_are_computed_and_logged_but_nothing_is_posted(slack, caplog):
    ledger, channel = Ledger(), channel_for(slack, token=None)
    assert channel.enabled is False
    with caplog.at_level(logging.INFO, logger="gtm_assets.alerts"):
        result = tick(quality(quality_row("2025-03-10")), ledger, channel)
    assert (result.delivered, result.failed, result.skipped) == (0, 0, 1)
    assert slack.requests == []
    assert "Brand Search c1" in caplog.text
    assert ledger.frame.iloc[0]["status"] == "pending" and ledger.frame.iloc[0]["attempts"] == 0


def test_logging_channel_writes_json_lines(tmp_path):
    path = tmp_path / "alerts.jsonl"
    ledger = Ledger()
    result = tick(quality(quality_row("2025-03-10"), quality_row("2025-03-10", campaign="c2")), ledger,
                  LoggingAlertChannel(path=str(path), channel="#demo"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert result.delivered == 2 and len(lines) == 2
    assert {line["channel"] for line in lines} == {"#demo"} and "Brand Search c2" in lines[1]["text"]


def test_minimum_severity_filters_info_alerts():
    q = quality(quality_row("2025-03-10", signal="budget_capped_winner", severity="info"), quality_row("2025-03-10"))
    assert list(new_alerts(q, None, min_severity="warning")["signal"]) == ["sql_rate_drop"]
    assert len(new_alerts(q, None)) == 2
    with pytest.raises(ValueError, match="min_severity"):
        new_alerts(q, None, min_severity="loud")


def test_digest_counts_statuses_of_the_latest_day():
    q = quality(quality_row("2025-03-09"), quality_row("2025-03-10"), quality_row("2025-03-10", "watch", "c2"),
                quality_row("2025-03-10", "ok", "c3"))
    text, blocks = format_digest(q, UI)
    assert text.startswith("Campaign quality 2025-03-10: 1 alert(s), 1 on watch, 1 ok across 3 campaigns.")
    assert "Brand Search c2" in text and f"{UI}/assets/campaign_quality" in json.dumps(blocks)


def test_redact_removes_env_secrets_and_token_shapes(monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "hs-secret-value-42")
    monkeypatch.setenv("GOOGLE_ADS_CLIENT_SECRET", "plain-client-secret")
    text = ("auth failed for hs-secret-value-42 with plain-client-secret; slack xoxb-123-456-abcDEF "
            "hubspot pat-na1-1234abcd-5678-90ef google ya29.a0AfH6SMB_xyz refresh 1//0gABCDEFGHIJKLmn "
            "header Authorization: Bearer abc.def.ghi and postgresql://gtm:pw123@db/gtm")
    clean = redact(text)
    for secret in ("hs-secret-value-42", "plain-client-secret", "xoxb-123", "pat-na1-1234", "ya29.", "1//0gABC",
                   "abc.def.ghi", "pw123"):
        assert secret not in clean, secret
    assert clean.startswith("auth failed for [redacted] with [redacted]") and "postgresql://gtm:[redacted]@db" in clean


def test_run_failure_message_is_scrubbed_and_short():
    trace = "Traceback...\n" + "\n".join(f"  frame {i}" for i in range(50)) + \
        "\nUnauthorized: token=sk-live-very-secret rejected with Bearer xoxb-9-9-zz"
    text, blocks = format_run_failure("daily_gtm", "hubspot__contacts", trace, secrets=["sk-live-very-secret"])
    rendered = text + json.dumps(blocks)
    assert "daily_gtm" in text and "hubspot__contacts" in rendered and "Unauthorized" in text
    assert "sk-live-very-secret" not in rendered and "xoxb-9-9-zz" not in rendered
    assert "frame 3\n" not in blocks[1]["text"]["text"]  # only the tail of the trace


def test_ledger_with_missing_columns_is_a_clear_error():
    with pytest.raises(ValueError, match=r"alert ledger lacks column\(s\).*empty_ledger"):
        new_alerts(quality(quality_row("2025-03-10")), pd.DataFrame({"campaign_id": ["c1"]}))
