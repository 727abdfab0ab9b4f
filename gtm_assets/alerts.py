"""Campaign-quality alerts: picking what to post, Slack messages, delivery with a ledger, redaction.

Posting rule (one post per episode). An *episode* is a run of alert days for one campaign and
signal; it ends on the first evaluated day that is ok or watch. Each episode is posted once:
the first of its alert days whose delivery succeeds. An alert that cleared and came back is a
new episode, so it is posted again. A continuing episode is not re-posted; the digest covers it.

The ledger (`alert_log` table, key campaign_id + signal + alert_day) records every alert day
it has seen: `delivered` (posted: slack_ts, posted_at), `failed` (tried, will be retried on
the next tick while the episode lasts), `pending` (not tried: no channel), `continued` (a
later day of an already-delivered episode). Episode continuity across ticks comes from the
ledger: an alert on day D continues an episode when the ledger holds an alert day D-1 for the
same campaign and signal (or the quality history passed in shows an alert on the previous
evaluated day).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

LEDGER_COLUMNS = [
    "campaign_id", "signal", "alert_day", "episode_start", "severity", "status",
    "attempts", "last_error", "slack_ts", "posted_at",
]
LEDGER_KEY = ["campaign_id", "signal", "alert_day"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
SIGNAL_TITLES = {
    "sql_rate_drop": "SQL rate drop",
    "cost_per_sql_rise": "Cost per SQL rise",
    "bot_traffic": "Bot or bad traffic",
    "budget_capped_winner": "Budget-capped winner",
    "spend_anomaly": "Spend anomaly",
}
SEVERITY_EMOJI = {"info": ":bulb:", "warning": ":warning:", "critical": ":rotating_light:"}

# Environment variables whose values must never reach Slack or a log.
SECRET_ENV_NAMES = (
    "GOOGLE_ADS_DEVELOPER_TOKEN", "GOOGLE_ADS_CLIENT_ID", "GOOGLE_ADS_CLIENT_SECRET",
    "GOOGLE_ADS_REFRESH_TOKEN", "HUBSPOT_ACCESS_TOKEN", "SLACK_BOT_TOKEN",
)
_SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|PRIVATE_KEY)", re.IGNORECASE)
# Shapes of credentials: Slack tokens, HubSpot private-app tokens, Google OAuth access and
# refresh tokens and client secrets, bearer headers, passwords inside URLs.
_TOKEN_PATTERNS = [
    re.compile(r"xox[abposer]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"pat-[a-z]{2}\d-[0-9a-fA-F-]{8,}"),
    re.compile(r"ya29\.[A-Za-z0-9_\-.]+"),
    re.compile(r"1//[A-Za-z0-9_\-]{10,}"),
    re.compile(r"GOCSPX-[A-Za-z0-9_\-]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=:/+]+"),
    re.compile(r"(?i)((?:access_token|refresh_token|client_secret|developer[-_]token|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;]+"),
    re.compile(r"(://[^/\s:@]+:)[^@\s/]+(@)"),
]
REDACTED = "[redacted]"


def secret_values_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of secret-looking environment variables (the named ones plus *TOKEN*/*SECRET*/...)."""
    environ = os.environ if environ is None else environ
    names = set(SECRET_ENV_NAMES) | {n for n in environ if _SECRET_NAME.search(n) or n.startswith("GOOGLE_ADS_")}
    # Short values (e.g. a customer id "1") would redact ordinary text; they are not secrets.
    return [environ[n] for n in names if environ.get(n) and len(environ[n]) >= 6]


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every given secret value and anything shaped like a token replaced by [redacted].

    `secrets` defaults to the values of secret environment variables (secret_values_from_env()).
    """
    if text is None:
        return text
    values = secret_values_from_env() if secrets is None else [s for s in secrets if s]
    out = str(text)
    for value in sorted(set(values), key=len, reverse=True):
        out = out.replace(value, REDACTED)
    for pattern in _TOKEN_PATTERNS:
        groups = pattern.groups
        if groups == 2:
            out = pattern.sub(lambda m: m.group(1) + REDACTED + m.group(2), out)
        elif groups == 1:
            out = pattern.sub(lambda m: m.group(1) + REDACTED, out)
        else:
            out = pattern.sub(REDACTED, out)
    return out


def empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({
        "campaign_id": pd.Series(dtype="str"), "signal": pd.Series(dtype="str"),
        "alert_day": pd.Series(dtype="datetime64[us]"), "episode_start": pd.Series(dtype="datetime64[us]"),
        "severity": pd.Series(dtype="str"), "status": pd.Series(dtype="str"),
        "attempts": pd.Series(dtype="int64"), "last_error": pd.Series(dtype="object"),
        "slack_ts": pd.Series(dtype="object"), "posted_at": pd.Series(dtype="datetime64[us, UTC]"),
    })


def _normalize_ledger(ledger: pd.DataFrame | None) -> pd.DataFrame:
    if ledger is None or len(ledger) == 0:
        return empty_ledger()
    missing = [c for c in LEDGER_COLUMNS if c not in ledger.columns]
    if missing:
        raise ValueError(f"alert ledger lacks column(s) {missing}; expected {LEDGER_COLUMNS} (see alerts.empty_ledger())")
    ledger = ledger.copy()
    ledger["campaign_id"] = ledger["campaign_id"].astype(str)
    for column in ("alert_day", "episode_start"):
        ledger[column] = pd.to_datetime(ledger[column]).dt.normalize().astype("datetime64[us]")
    ledger["attempts"] = pd.to_numeric(ledger["attempts"], errors="coerce").fillna(0).astype("int64")
    return ledger


def merge_ledger(ledger: pd.DataFrame | None, updates: pd.DataFrame) -> pd.DataFrame:
    """Upsert `updates` into `ledger` by (campaign_id, signal, alert_day); the update wins."""
    ledger = _normalize_ledger(ledger)
    updates = _normalize_ledger(updates)
    if len(updates) == 0:
        return ledger
    if len(ledger) == 0:
        merged = updates
    else:
        merged = pd.concat([ledger, updates], ignore_index=True)
    return merged.drop_duplicates(LEDGER_KEY, keep="last").sort_values(LEDGER_KEY, ignore_index=True)[LEDGER_COLUMNS]


def new_alerts(
    quality: pd.DataFrame,
    ledger: pd.DataFrame | None,
    min_severity: str = "info",
    max_age_days: int | None = 3,
) -> pd.DataFrame:
    """Alert rows to post now: one per episode that has no delivered post yet.

    quality: campaign_quality rows (one as-of day or a history). ledger: the alert_log frame
    (may be empty or None). Returns the freshest quality row of each undelivered episode, with
    `alert_day`, `episode_start`, `prior_attempts` and `ledger_status` ('new' or 'failed'),
    plus `continuing`: the ledger rows ('continued') to record for alert days of episodes
    already delivered, in `.attrs["continuing"]`.
    Rows older than `max_age_days` before the newest as_of are ignored (a backfill must not
    post last month's alerts).
    """
    if min_severity not in SEVERITY_RANK:
        raise ValueError(f"min_severity must be one of {list(SEVERITY_RANK)}, got {min_severity!r}")
    missing = [c for c in ("as_of", "campaign_id", "signal", "status", "severity") if c not in quality.columns]
    if missing:
        raise ValueError(f"new_alerts: the quality frame lacks column(s) {missing}")
    ledger = _normalize_ledger(ledger)
    rows = quality.copy()
    rows["campaign_id"] = rows["campaign_id"].astype(str)
    rows["alert_day"] = pd.to_datetime(rows["as_of"]).dt.normalize().astype("datetime64[us]")
    rows["is_alert"] = (rows["status"] == "alert") & (rows["severity"].map(SEVERITY_RANK).fillna(-1) >= SEVERITY_RANK[min_severity])
    rows = rows.sort_values(["campaign_id", "signal", "alert_day"], ignore_index=True)
    group = rows.groupby(["campaign_id", "signal"], sort=False)
    previous_alert = group["is_alert"].shift()
    # The first evaluated day of a key in this frame continues an episode if the ledger holds the day before.
    day_before = rows[["campaign_id", "signal"]].assign(alert_day=rows["alert_day"] - pd.Timedelta(days=1))
    from_ledger = day_before.merge(
        ledger[["campaign_id", "signal", "alert_day", "episode_start"]], on=LEDGER_KEY, how="left"
    )["episode_start"].to_numpy()
    continues = np.where(previous_alert.isna(), pd.notna(from_ledger), previous_alert.fillna(False).astype(bool))
    starts = rows["is_alert"] & ~continues
    rows["episode_start"] = rows["alert_day"].where(starts)
    inherited = pd.Series(from_ledger, index=rows.index).where(previous_alert.isna() & rows["is_alert"])
    rows["episode_start"] = rows["episode_start"].fillna(inherited).astype("datetime64[us]")
    # Carry the start along each run of alert days; a non-alert day breaks the run.
    run_id = (~rows["is_alert"]).astype(int).groupby([rows["campaign_id"], rows["signal"]]).cumsum()
    rows["episode_start"] = rows.groupby(["campaign_id", "signal", run_id])["episode_start"].ffill()
    alerts = rows[rows["is_alert"] & rows["episode_start"].notna()].copy()
    if max_age_days is not None and len(alerts):
        alerts = alerts[alerts["alert_day"] >= rows["alert_day"].max() - pd.Timedelta(days=max_age_days)]

    episode_key = ["campaign_id", "signal", "episode_start"]
    history = ledger.assign(
        delivered=ledger["status"].eq("delivered"), failed=ledger["status"].eq("failed"), prior_attempts=ledger["attempts"]
    ).groupby(episode_key, as_index=False)[["delivered", "failed", "prior_attempts"]].agg(
        {"delivered": "any", "failed": "any", "prior_attempts": "sum"}
    )
    alerts = alerts.merge(history, on=episode_key, how="left")
    alerts["delivered"] = alerts["delivered"].astype("boolean").fillna(False).astype(bool)
    alerts["prior_attempts"] = pd.to_numeric(alerts["prior_attempts"], errors="coerce").fillna(0).astype(int)
    alerts["ledger_status"] = np.where(alerts["failed"].astype("boolean").fillna(False), "failed", "new")
    already = alerts.merge(ledger[LEDGER_KEY], on=LEDGER_KEY, how="left", indicator=True)["_merge"].eq("both").to_numpy()
    continuing = alerts[alerts["delivered"].to_numpy() & ~already]
    to_post = alerts[~alerts["delivered"]].sort_values("alert_day").groupby(episode_key, as_index=False).tail(1)
    result = to_post.drop(columns=["is_alert", "delivered", "failed"]).reset_index(drop=True)
    result.attrs["continuing"] = pd.DataFrame({
        "campaign_id": continuing["campaign_id"], "signal": continuing["signal"],
        "alert_day": continuing["alert_day"], "episode_start": continuing["episode_start"],
        "severity": continuing["severity"], "status": "continued", "attempts": 0,
        "last_error": None, "slack_ts": None, "posted_at": pd.NaT,
    }).reset_index(drop=True)
    return result


def _money(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:,.0f}"


def _value(signal: str, value) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    if signal == "sql_rate_drop":
        return f"{100 * value:.1f}% SQL rate"
    if signal in ("cost_per_sql_rise", "budget_capped_winner"):
        return f"{value:,.0f} per SQL"
    if signal == "bot_traffic":
        return f"{value:,.0f} clicks"
    return f"{value:,.0f} spend"


def _sample(signal: str, value) -> str:
    if value is None or pd.isna(value):
        return ""
    unit = {"sql_rate_drop": "mature leads", "cost_per_sql_rise": "SQLs", "bot_traffic": "leads",
            "budget_capped_winner": "SQLs", "spend_anomaly": "weeks of history"}.get(signal, "")
    return f" (n = {value:,.0f} {unit})"


def format_alert(row: Mapping, ui_base_url: str) -> tuple[str, list[dict]]:
    """(fallback text, Block Kit blocks) for one campaign_quality alert row."""
    signal = row["signal"]
    title = SIGNAL_TITLES.get(signal, signal)
    name = row.get("campaign_name") or row["campaign_id"]
    severity = row.get("severity", "warning")
    as_of = pd.Timestamp(row["as_of"]).date().isoformat()
    window = row.get("window_days")
    window_words = f"last {int(window)} days" if window is not None and pd.notna(window) else "recent"
    comparison = (
        f"{_value(signal, row.get('recent'))}{_sample(signal, row.get('recent_n'))} ({window_words}) vs "
        f"{_value(signal, row.get('baseline'))}{_sample(signal, row.get('baseline_n'))} baseline"
    )
    link = f"{ui_base_url.rstrip('/')}/assets/campaign_quality"
    action = row.get("suggested_action") or ""
    stake = _money(row.get("spend_at_stake"))
    text = f"{SEVERITY_EMOJI.get(severity, '')} {title}: {name} ({as_of}). {comparison}. Spend at stake: {stake}. {action}".strip()
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{title}: {name}"[:150]}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Campaign*\n{name} (`{row['campaign_id']}`)"},
            {"type": "mrkdwn", "text": f"*Severity*\n{SEVERITY_EMOJI.get(severity, '')} {severity}"},
            {"type": "mrkdwn", "text": f"*Recent vs baseline*\n{comparison}"},
            {"type": "mrkdwn", "text": f"*Spend at stake*\n{stake}"},
        ]},
        {"type": "section", "text": {"type": "mrkdwn", "text": str(row.get("evidence") or "")[:2900]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Suggested action:* {action}"[:2900]}},
        {"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"As of {as_of} · <{link}|campaign_quality in Dagster>"},
        ]},
    ]
    return text, blocks


def format_digest(quality: pd.DataFrame, ui_base_url: str | None = None) -> tuple[str, list[dict]]:
    """(text, blocks) summarizing the newest as-of day: alerts and watches by campaign and signal."""
    if len(quality) == 0:
        return "Campaign quality: nothing evaluated.", [{"type": "section", "text": {"type": "mrkdwn", "text": "Campaign quality: nothing evaluated."}}]
    latest = quality[pd.to_datetime(quality["as_of"]) == pd.to_datetime(quality["as_of"]).max()]
    as_of = pd.Timestamp(latest["as_of"].iloc[0]).date().isoformat()
    counts = latest["status"].value_counts()
    headline = (
        f"Campaign quality {as_of}: {int(counts.get('alert', 0))} alert(s), {int(counts.get('watch', 0))} on watch, "
        f"{int(counts.get('ok', 0))} ok across {latest['campaign_id'].nunique()} campaigns."
    )
    flagged = latest[latest["status"].isin(["alert", "watch"])].copy()
    flagged["rank"] = flagged["status"].map({"alert": 0, "watch": 1}) * 10 - flagged["severity"].map(SEVERITY_RANK).fillna(0)
    flagged = flagged.sort_values(["rank", "campaign_id"])
    names = flagged.get("campaign_name", flagged["campaign_id"]).fillna(flagged["campaign_id"])
    lines = (
        "• *" + flagged["status"] + "* " + flagged["signal"].map(SIGNAL_TITLES).fillna(flagged["signal"])
        + " - " + names.astype(str) + " (" + flagged["severity"] + ")"
    ).tolist()
    body = "\n".join(lines[:40]) + (f"\n…and {len(lines) - 40} more" if len(lines) > 40 else "")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": headline}}]
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}})
    if ui_base_url:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"<{ui_base_url.rstrip('/')}/assets/campaign_quality|campaign_quality in Dagster>"}
        ]})
    return headline + ("\n" + body if lines else ""), blocks


def format_run_failure(
    job_name: str, step_key: str | None, error_summary: str, secrets: Iterable[str] | None = None,
    ui_url: str | None = None,
) -> tuple[str, list[dict]]:
    """(text, blocks) for a failed run, with secrets and token-shaped strings removed."""
    summary = redact(error_summary or "", secrets)
    # A stack trace belongs in the Dagster UI; the channel gets its last lines.
    lines = summary.strip().splitlines()
    short = "\n".join(lines[-12:])[:2500]
    where = f"step `{step_key}`" if step_key else "the run"
    text = redact(f":x: Run of {job_name} failed at {where}: {lines[-1] if lines else 'no error message'}", secrets)
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": redact(f":x: *{job_name}* failed at {where}", secrets)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"```{short}```"}},
    ]
    if ui_url:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{ui_url}|Open the run in Dagster>"}]})
    return text, blocks


@dataclass
class DeliveryResult:
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    ledger_rows: pd.DataFrame = field(default_factory=empty_ledger)

    def summary(self) -> str:
        return f"{self.delivered} delivered, {self.failed} failed (retried next tick), {self.skipped} not posted (no channel)"


def _ledger_row(alert: Mapping, status: str, attempts: int, error: str | None, ts: str | None) -> pd.DataFrame:
    return pd.DataFrame({
        "campaign_id": [str(alert["campaign_id"])], "signal": [alert["signal"]],
        "alert_day": [pd.Timestamp(alert["alert_day"])], "episode_start": [pd.Timestamp(alert["episode_start"])],
        "severity": [alert.get("severity")], "status": [status], "attempts": [attempts], "last_error": [error],
        "slack_ts": [ts], "posted_at": [pd.Timestamp.now(tz="UTC") if status == "delivered" else pd.NaT],
    })


def deliver(
    alerts: pd.DataFrame,
    channel,
    ledger_writer: Callable[[pd.DataFrame], None],
    ui_base_url: str = "http://localhost:3000",
    secrets: Iterable[str] | None = None,
) -> DeliveryResult:
    """Post each alert (from new_alerts) and record the outcome in the ledger as it happens.

    A delivered alert is written to the ledger right after its post, so a crash mid-batch
    never re-posts it. A failed post is written as 'failed' and the episode stays undelivered,
    so the next tick's new_alerts offers it again. With a disabled channel (no token) the
    alerts are logged and recorded 'pending': computed and stored, nothing posted.
    Continuing days of delivered episodes (alerts.attrs["continuing"]) are recorded too.
    """
    result = DeliveryResult()
    recorded = []
    continuing = alerts.attrs.get("continuing")
    if continuing is not None and len(continuing):
        ledger_writer(continuing)
        recorded.append(continuing)
    enabled = bool(getattr(channel, "enabled", False)) if channel is not None else False
    token_values = list(secrets) if secrets is not None else None
    for alert in alerts.to_dict("records"):
        text, blocks = format_alert(alert, ui_base_url)
        attempts = int(alert.get("prior_attempts", 0))
        if not enabled:
            log.info("alert not posted (no Slack channel configured): %s", redact(text, token_values))
            row = _ledger_row(alert, "pending", attempts, "no Slack channel configured; logged only", None)
            result.skipped += 1
        else:
            try:
                ts = channel.post(text, blocks=blocks)
            except Exception as error:  # noqa: BLE001 - any failure leaves the alert for the next tick
                message = redact(f"{type(error).__name__}: {error}", token_values)
                log.warning("alert delivery failed, will retry next tick: %s", message)
                row = _ledger_row(alert, "failed", attempts + 1, message, None)
                result.failed += 1
                result.errors.append(message)
            else:
                row = _ledger_row(alert, "delivered", attempts + 1, None, str(ts))
                result.delivered += 1
        ledger_writer(row)
        recorded.append(row)
    if recorded:
        result.ledger_rows = merge_ledger(None, pd.concat(recorded, ignore_index=True))
    return result

