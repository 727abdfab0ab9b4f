"""Alert channels: Slack (slack_sdk WebClient, chat.postMessage) and a log/JSON-lines channel for demo or no-token runs."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from urllib.error import URLError

from pydantic import Field
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from gtm_assets.alerts import redact
from gtm_assets.resources.slack.base import AlertChannel

log = logging.getLogger(__name__)


class AlertDeliveryError(RuntimeError):
    """A message could not be posted now; the caller leaves it pending and retries on the next tick.

    `retry_after` is Slack's Retry-After in seconds for a 429, else None. `retryable` is False
    for errors a retry will not fix (invalid_auth, channel_not_found, ...).
    """

    def __init__(self, message: str, *, status: int | None = None, error: str | None = None,
                 retry_after: float | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.retry_after = retry_after
        self.retryable = retryable


# Slack error codes a later retry will not fix: configuration must change first.
_PERMANENT_ERRORS = {
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
    "channel_not_found", "not_in_channel", "is_archived", "missing_scope", "invalid_blocks",
    "msg_too_long", "no_text",
}


class SlackAlertChannel(AlertChannel):
    """Posts alerts with slack_sdk's WebClient. Disabled (posts nothing) when no token is set.

    The client keeps slack_sdk's default retry handler (one retry on a connection error) and
    deliberately no rate-limit retry handler: a sensor tick must not sleep through a Retry-After;
    the 429 becomes an AlertDeliveryError and the alert is retried on the next tick.
    """

    token: str | None = Field(default=None, description="Slack bot token (xoxb-...); set from SLACK_BOT_TOKEN.")
    channel: str | None = Field(default=None, description="Default channel id or name; set from SLACK_ALERT_CHANNEL.")
    base_url: str = Field(default="https://slack.com/api/", description="Slack Web API base; SLACK_API_BASE_URL.")
    timeout_seconds: int = Field(default=10, description="HTTP timeout per call, seconds.")

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def _client(self) -> WebClient:
        base = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        return WebClient(token=self.token, base_url=base, timeout=self.timeout_seconds)

    def _fail(self, what: str, error: Exception) -> AlertDeliveryError:
        secrets = [self.token] if self.token else []
        if isinstance(error, SlackApiError):
            response = error.response
            status = getattr(response, "status_code", None)
            data = response.data if isinstance(getattr(response, "data", None), dict) else {}
            code = data.get("error")
            headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
            if status == 429:
                raw = headers.get("retry-after")
                raw = raw[0] if isinstance(raw, list) else raw
                retry_after = float(raw) if raw not in (None, "") else None
                return AlertDeliveryError(
                    f"Slack rate-limited {what} (HTTP 429); retry after {retry_after or 'a while'} s, on the next tick",
                    status=429, error="ratelimited", retry_after=retry_after,
                )
            if status is not None and status >= 500:
                return AlertDeliveryError(f"Slack server error on {what} (HTTP {status}); will retry on the next tick",
                                          status=status, error=code)
            permanent = code in _PERMANENT_ERRORS
            fix = " Check SLACK_BOT_TOKEN, the bot's scopes (chat:write) and that it is in the channel." if permanent else ""
            return AlertDeliveryError(
                redact(f"Slack rejected {what}: {code or 'unknown error'} (HTTP {status}).{fix}", secrets),
                status=status, error=code, retryable=not permanent,
            )
        if isinstance(error, (URLError, OSError, SlackClientError)):
            return AlertDeliveryError(
                redact(f"Could not reach Slack at {self.base_url} for {what}: {type(error).__name__}: {error}", secrets)
            )
        return AlertDeliveryError(redact(f"Unexpected error on {what}: {type(error).__name__}: {error}", secrets))

    def post(self, text: str, blocks: list[dict] | None = None, channel: str | None = None) -> str:
        if not self.enabled:
            raise AlertDeliveryError("Slack is not configured: set SLACK_BOT_TOKEN to post alerts", retryable=False)
        target = channel or self.channel
        if not target:
            raise AlertDeliveryError("No Slack channel: set SLACK_ALERT_CHANNEL or pass channel=", retryable=False)
        try:
            response = self._client().chat_postMessage(channel=target, text=text, blocks=blocks)
        except Exception as error:  # noqa: BLE001 - every failure becomes one clear, token-free error
            raise self._fail("chat.postMessage", error) from None
        return str(response["ts"])

    def upload_chart(self, png_bytes: bytes, title: str, channel: str | None = None) -> str:
        """Upload a PNG chart to the channel (files.getUploadURLExternal + completeUploadExternal); returns the file id."""
        if not self.enabled:
            raise AlertDeliveryError("Slack is not configured: set SLACK_BOT_TOKEN to upload charts", retryable=False)
        try:
            response = self._client().files_upload_v2(
                channel=channel or self.channel, content=png_bytes, filename=f"{title}.png", title=title,
            )
        except Exception as error:  # noqa: BLE001
            raise self._fail("files.upload", error) from None
        return str(response["file"]["id"])


class LoggingAlertChannel(AlertChannel):
    """Writes alerts to the log and, if `path` is set, to a JSON-lines file. For demo and no-token runs."""

    path: str | None = Field(default=None, description="JSON-lines file to append messages to (optional).")
    channel: str | None = Field(default=None, description="Channel name recorded with each message.")

    @property
    def enabled(self) -> bool:
        return True

    def post(self, text: str, blocks: list[dict] | None = None, channel: str | None = None) -> str:
        ts = f"{time.time():.6f}"
        log.info("alert [%s]: %s", channel or self.channel or "log", redact(text))
        if self.path:
            target = Path(self.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"ts": ts, "channel": channel or self.channel, "text": text, "blocks": blocks}) + "\n")
        return ts
