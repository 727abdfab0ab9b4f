"""The live Google Ads source: GAQL over the official google-ads client, with bounded retries.

Everything except the dagster resource class at the bottom is plain Python, unit-testable
without dagster: customer-id normalization, the GAQL of each report, turning streamed rows
into frames, the spend allocation of ad_performance and the retry loop.

Choices worth knowing (also for the README):
- One GAQL query per report and date range through GoogleAdsService.search_stream; click_view
  allows a single day per query, so ad_clicks issues one query per day.
- The client library does not retry. RESOURCE_EXHAUSTED, UNAVAILABLE and INTERNAL (raised as
  google.api_core exceptions, also mid-stream) are retried with exponential backoff by running
  the whole query again; rows of a failed attempt are discarded, so a retry never duplicates.
  A GoogleAdsException (bad query, authentication, permission) is not retried: it becomes a
  GoogleAdsRequestError carrying the request id and error codes, never a credential.
- Money: *_micros / 1e6 in account currency.
- campaign_performance.search_budget_lost_impression_share is a proto3 `optional double`, so
  presence is known: absent -> NULL. Google only defines it for campaigns serving on the
  Search network (Search, Shopping); for other channel types any value (typically 0) is not a
  "no budget loss" signal and is reported as NULL. A present 0 on Search/Shopping stays 0.
  daily_budget there is the campaign's current budget (GAQL has no budget history).
- ad_performance keeps campaign-level spend whole (DOMAIN.md: keyword reports miss Display,
  Video and Performance Max). Per date it emits (1) keyword_view rows for keywords,
  (2) per ad group, a row with keyword NULL holding the ad group's metrics minus its keywords'
  (the whole ad group when it has no keywords: Display, Video; spend not matched to a keyword
  in Search), (3) per campaign, a row with ad_group_id and keyword NULL holding the campaign's
  metrics minus its ad groups' (Performance Max, which has asset groups, not ad groups).
  Remainder rows appear only where some metric is left over. So sum(cost) over ad_performance
  equals campaign_performance cost per date and campaign, to the micro.
- ad_clicks.clicked_at: click_view has no time of day (no hour segment for clicks), so it is
  the click's date (account time zone) at 00:00 UTC: a day-resolution stamp, not a click time.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import grpc
import numpy as np
import pandas as pd
from google.api_core import exceptions as api_exceptions
from pydantic import PrivateAttr

from gtm_assets.resources.google_ads.base import GoogleAdsSource

logger = logging.getLogger("gtm_assets.google_ads")

# The newest API version google-ads 34 ships (its _VALID_API_VERSIONS lists v26 first).
API_VERSION = "v26"
DEFAULT_ENDPOINT = "googleads.googleapis.com:443"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"

CHANNEL_LABELS = {
    "SEARCH": "Search", "DISPLAY": "Display", "SHOPPING": "Shopping", "HOTEL": "Hotel",
    "VIDEO": "YouTube", "MULTI_CHANNEL": "App", "LOCAL": "Local", "SMART": "Smart",
    "PERFORMANCE_MAX": "Performance Max", "LOCAL_SERVICES": "Local Services", "TRAVEL": "Travel",
    "DEMAND_GEN": "Demand Gen",
}
# Channel types whose campaigns serve on the Search network, where search impression share exists.
SEARCH_NETWORK_CHANNELS = frozenset({"SEARCH", "SHOPPING"})

RETRYABLE_ERRORS = (
    api_exceptions.ResourceExhausted, api_exceptions.ServiceUnavailable, api_exceptions.InternalServerError,
)
RETRYABLE_GRPC_CODES = frozenset({
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
})
MAX_BACKOFF_SECONDS = 60.0
METRICS = ("impressions", "clicks", "cost_micros", "conversions")


class GoogleAdsError(RuntimeError):
    """A Google Ads read failed; the message says why and what to check, never a secret."""


class GoogleAdsRequestError(GoogleAdsError):
    """Google Ads rejected a request (GoogleAdsException): not retried."""

    def __init__(self, message: str, request_id: str | None, error_codes: list[str]):
        super().__init__(message)
        self.request_id = request_id
        self.error_codes = error_codes


class GoogleAdsUnavailableError(GoogleAdsError):
    """Google Ads stayed overloaded or unavailable for every attempt."""


class GoogleAdsAuthError(GoogleAdsError):
    """The OAuth refresh of the access token failed."""


# ---------------------------------------------------------------- customer ids
_CUSTOMER_ID_RE = re.compile(r"^\d{3}-?\d{3}-?\d{4}$")


def normalize_customer_id(value: str | int | None, setting: str = "GOOGLE_ADS_CUSTOMER_ID") -> str:
    """'123-456-7890' or '1234567890' -> '1234567890'; anything else is a clear ValueError."""
    text = "" if value is None else str(value).strip()
    if not _CUSTOMER_ID_RE.match(text):
        raise ValueError(
            f"{setting} must be a 10-digit Google Ads customer id like 123-456-7890 or 1234567890, "
            f"got {text!r}; copy it from the top of the Google Ads UI"
        )
    return text.replace("-", "")


# ---------------------------------------------------------------- the reports' GAQL
@dataclass(frozen=True)
class Report:
    """One GAQL query: output column -> GAQL field, from a resource, over a date filter."""

    name: str
    resource: str
    fields: dict[str, str]

    def query(self, start: date | None = None, end: date | None = None) -> str:
        select = ", ".join(self.fields.values())
        gaql = f"SELECT {select} FROM {self.resource}"
        if start is not None and end is not None:
            if end < start:
                raise ValueError(f"{self.name}: end {end} is before start {start}")
            gaql += (
                f" WHERE segments.date = '{start.isoformat()}'" if start == end
                else f" WHERE segments.date BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'"
            )
        return gaql


_METRIC_FIELDS = {
    "impressions": "metrics.impressions", "clicks": "metrics.clicks",
    "cost_micros": "metrics.cost_micros", "conversions": "metrics.conversions",
}
CAMPAIGNS_REPORT = Report("campaigns", "campaign", {
    "campaign_id": "campaign.id", "campaign_name": "campaign.name", "status": "campaign.status",
    "advertising_channel_type": "campaign.advertising_channel_type",
    "budget_micros": "campaign_budget.amount_micros",
})
CAMPAIGN_PERFORMANCE_REPORT = Report("campaign_performance", "campaign", {
    "date": "segments.date", "campaign_id": "campaign.id",
    "advertising_channel_type": "campaign.advertising_channel_type",
    **_METRIC_FIELDS, "budget_micros": "campaign_budget.amount_micros",
    "search_budget_lost_impression_share": "metrics.search_budget_lost_impression_share",
})
AD_GROUP_PERFORMANCE_REPORT = Report("ad_group_performance", "ad_group", {
    "date": "segments.date", "campaign_id": "campaign.id", "ad_group_id": "ad_group.id", **_METRIC_FIELDS,
})
KEYWORD_PERFORMANCE_REPORT = Report("keyword_performance", "keyword_view", {
    "date": "segments.date", "campaign_id": "campaign.id", "ad_group_id": "ad_group.id",
    "criterion_id": "ad_group_criterion.criterion_id", "keyword": "ad_group_criterion.keyword.text",
    "match_type": "ad_group_criterion.keyword.match_type", **_METRIC_FIELDS,
})
CLICKS_REPORT = Report("ad_clicks", "click_view", {
    "gclid": "click_view.gclid", "date": "segments.date", "campaign_id": "campaign.id",
    "ad_group_id": "ad_group.id", "keyword": "click_view.keyword_info.text",
    "match_type": "click_view.keyword_info.match_type",
})


# ---------------------------------------------------------------- streamed rows -> columns
def _accessor(descriptor, path: str) -> Callable[[Any], Any]:
    """A getter for one GAQL field on a raw GoogleAdsRow: None when the field is not present
    (proto3 optional fields and unset messages), enum values as their names."""
    parts = path.split(".")
    parents, leaf_name = parts[:-1], parts[-1]
    for part in parents:
        descriptor = descriptor.fields_by_name[part].message_type
    leaf = descriptor.fields_by_name[leaf_name]
    enum_names = {v.number: v.name for v in leaf.enum_type.values} if leaf.enum_type is not None else None
    has_presence = leaf.has_presence

    def get(row):
        message = row
        for part in parents:
            if not message.HasField(part):
                return None
            message = getattr(message, part)
        if has_presence and not message.HasField(leaf_name):
            return None
        value = getattr(message, leaf_name)
        return enum_names.get(value, str(value)) if enum_names is not None else value

    return get


def rows_to_columns(report: Report, rows: list) -> pd.DataFrame:
    """Raw GoogleAdsRow messages -> one column per report field (object dtype, None when absent)."""
    if not rows:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in report.fields})
    descriptor = rows[0].DESCRIPTOR
    return pd.DataFrame({
        column: pd.Series([get(row) for row in rows], dtype="object")
        for column, get in ((c, _accessor(descriptor, p)) for c, p in report.fields.items())
    })


def _ids(series: pd.Series) -> pd.Series:
    return series.map(lambda v: None if v is None or v == 0 else str(v)).astype("str")


def _dates(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, format="%Y-%m-%d").astype("datetime64[us]")


def _money(micros: pd.Series) -> pd.Series:
    return pd.to_numeric(micros, errors="coerce").astype("float64") / 1e6


def _metric(series: pd.Series, dtype: str) -> pd.Series:
    # A metric Google leaves unset on a row is zero activity, not unknown.
    return pd.to_numeric(series, errors="coerce").fillna(0).astype(dtype)


_METRIC_TYPES = {"impressions": "int64", "clicks": "int64", "cost_micros": "int64", "conversions": "float64"}


def campaigns_frame(raw: pd.DataFrame) -> pd.DataFrame:
    channel_type = raw["advertising_channel_type"].astype("str")
    return pd.DataFrame({
        "campaign_id": _ids(raw["campaign_id"]),
        "campaign_name": raw["campaign_name"].astype("str"),
        "channel": channel_type.map(lambda t: CHANNEL_LABELS.get(t, t.replace("_", " ").title())).astype("str"),
        "status": raw["status"].astype("str"),
        "daily_budget": _money(raw["budget_micros"]),
        "advertising_channel_type": channel_type,
    })


def campaign_performance_frame(raw: pd.DataFrame) -> pd.DataFrame:
    share = pd.to_numeric(raw["search_budget_lost_impression_share"], errors="coerce").astype("float64")
    on_search_network = raw["advertising_channel_type"].isin(SEARCH_NETWORK_CHANNELS)
    return pd.DataFrame({
        "date": _dates(raw["date"]),
        "campaign_id": _ids(raw["campaign_id"]),
        "impressions": _metric(raw["impressions"], "int64"),
        "clicks": _metric(raw["clicks"], "int64"),
        "cost": _metric(raw["cost_micros"], "int64") / 1e6,
        "conversions": _metric(raw["conversions"], "float64"),
        "daily_budget": _money(raw["budget_micros"]),
        "search_budget_lost_impression_share": share.where(on_search_network.to_numpy(), np.nan),
        "advertising_channel_type": raw["advertising_channel_type"].astype("str"),
    })


def _leftover(total: pd.DataFrame, parts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """total minus the sum of its parts on `keys`, keeping only groups with something left;
    a negative leftover (parts exceeding the whole, which Google should never return) is
    clipped to 0 and logged."""
    part_sums = parts.groupby(keys, as_index=False)[list(METRICS)].sum()
    merged = total[keys + list(METRICS)].merge(part_sums, on=keys, how="left", suffixes=("", "_parts"))
    leftover = merged[keys].copy()
    for metric in METRICS:
        leftover[metric] = merged[metric] - merged[f"{metric}_parts"].fillna(0)
    negative = (leftover[list(METRICS)] < -1e-9).any(axis=1)
    if negative.any():
        logger.warning(
            "google_ads ad_performance: %d group(s) where %s exceed the total on %s; leftover clipped to 0",
            int(negative.sum()), "parts", keys,
        )
    leftover[list(METRICS)] = leftover[list(METRICS)].clip(lower=0)
    return leftover[(leftover[list(METRICS)] > 1e-9).any(axis=1)]


def allocate_ad_performance(campaign_rows: pd.DataFrame, ad_group_rows: pd.DataFrame,
                            keyword_rows: pd.DataFrame) -> pd.DataFrame:
    """Keyword rows + ad-group leftovers (keyword NULL) + campaign leftovers (ad group NULL).

    Inputs carry date, campaign_id, (ad_group_id, keyword, match_type,) and the raw METRICS
    (cost in micros, so the subtraction is exact). Output cost sums to the campaign rows'.
    """
    campaign_rows, ad_group_rows, keyword_rows = (
        frame.assign(**{m: _metric(frame[m], t) for m, t in _METRIC_TYPES.items()})
        for frame in (campaign_rows, ad_group_rows, keyword_rows)
    )
    keyword_part = keyword_rows[["date", "campaign_id", "ad_group_id", "keyword", "match_type", *METRICS]]
    ad_group_leftover = _leftover(ad_group_rows, keyword_rows, ["date", "campaign_id", "ad_group_id"])
    campaign_leftover = _leftover(campaign_rows, ad_group_rows, ["date", "campaign_id"])
    combined = pd.concat([keyword_part, ad_group_leftover, campaign_leftover], ignore_index=True)
    for column in ("ad_group_id", "keyword", "match_type"):
        combined[column] = combined[column].astype("object").where(combined[column].notna(), None)
    return pd.DataFrame({
        "date": _dates(combined["date"]),
        "campaign_id": _ids(combined["campaign_id"]),
        "ad_group_id": combined["ad_group_id"].map(lambda v: None if v is None else str(v)).astype("str"),
        "keyword": combined["keyword"].astype("str"),
        "match_type": combined["match_type"].astype("str"),
        "impressions": combined["impressions"].astype("int64"),
        "clicks": combined["clicks"].astype("int64"),
        "cost": _money(combined["cost_micros"]),
        "conversions": combined["conversions"].astype("float64"),
    }).sort_values(["date", "campaign_id", "ad_group_id", "keyword"], na_position="last", ignore_index=True)


def clicks_frame(raw: pd.DataFrame) -> pd.DataFrame:
    day = _dates(raw["date"])
    keyword = raw["keyword"].where(raw["keyword"].astype("str") != "", None)
    match_type = raw["match_type"].where(keyword.notna(), None)
    return pd.DataFrame({
        "gclid": raw["gclid"].astype("str"),
        "clicked_at": day.dt.tz_localize("UTC"),
        "date": day,
        "campaign_id": _ids(raw["campaign_id"]),
        "ad_group_id": _ids(raw["ad_group_id"]),
        "keyword": keyword.astype("str"),
        "match_type": match_type.astype("str"),
    })


# ---------------------------------------------------------------- retries and errors
def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def describe_google_ads_exception(exc, what: str, customer_id: str) -> GoogleAdsRequestError:
    """A GoogleAdsException as an error naming the request id, status, error codes and a fix."""
    codes, messages = [], []
    for error in getattr(exc.failure, "errors", []):
        code_pb = type(error.error_code).pb(error.error_code)
        family = code_pb.WhichOneof("error_code")
        if family is None:
            continue
        value = getattr(code_pb, family)
        enum = code_pb.DESCRIPTOR.fields_by_name[family].enum_type
        codes.append(f"{family}.{enum.values_by_number[value].name if value in enum.values_by_number else value}")
        messages.append(error.message)
    families = {code.split(".")[0] for code in codes}
    hints = []
    if families & {"authentication_error"}:
        hints.append("check GOOGLE_ADS_DEVELOPER_TOKEN, GOOGLE_ADS_CLIENT_ID/SECRET and GOOGLE_ADS_REFRESH_TOKEN")
    if families & {"authorization_error"}:
        hints.append("check that the OAuth user can reach GOOGLE_ADS_CUSTOMER_ID and, for an account under a "
                     "manager, set GOOGLE_ADS_LOGIN_CUSTOMER_ID to the manager's id")
    if families & {"query_error", "request_error", "field_error"}:
        hints.append("the GAQL query was rejected: report it as a gtm_assets bug (the API version may have changed)")
    status = exc.error.code().name if hasattr(exc.error, "code") else "UNKNOWN"
    return GoogleAdsRequestError(
        f"Google Ads rejected the {what} query for customer {customer_id} "
        f"(request_id={exc.request_id}, status {status}): {'; '.join(codes) or 'no error code'}"
        f"{' - ' + ' | '.join(messages) if messages else ''}{'; fix: ' + '; '.join(hints) if hints else ''}",
        exc.request_id, codes,
    )


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, RETRYABLE_ERRORS):
        return True
    return isinstance(exc, grpc.RpcError) and hasattr(exc, "code") and exc.code() in RETRYABLE_GRPC_CODES


def fetch_with_retry(fetch: Callable[[], Any], *, what: str, max_attempts: int, backoff_seconds: float,
                     on_error: Callable[[Exception], Exception | None] = lambda exc: None,
                     sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run `fetch` until it returns, retrying transient API errors with exponential backoff.

    `fetch` must build its result from scratch on each call (a retried stream restarts from
    its first row, so nothing of a failed attempt survives). `on_error` may turn a
    non-retryable exception into a clearer one.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    for attempt in range(1, max_attempts + 1):
        try:
            return fetch()
        except Exception as exc:  # noqa: BLE001 (classified right below)
            if not _is_retryable(exc):
                clearer = on_error(exc)
                if clearer is not None:
                    raise clearer from None
                raise
            label = type(exc).__name__
            if attempt == max_attempts:
                raise GoogleAdsUnavailableError(
                    f"Google Ads {what} failed after {max_attempts} attempts; last error {label}: "
                    f"{getattr(exc, 'message', exc)}. The API is overloaded or unavailable: retry the run "
                    f"later, or raise max_attempts/backoff_seconds."
                ) from None
            delay = min(backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
            logger.warning("google_ads %s: attempt %d/%d failed with %s; retrying the whole query in %.2fs",
                           what, attempt, max_attempts, label, delay)
            sleep(delay)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- the reader
@dataclass(frozen=True)
class GoogleAdsCredentials:
    developer_token: str
    client_id: str
    client_secret: str
    refresh_token: str
    token_uri: str = DEFAULT_TOKEN_URI

    def __repr__(self) -> str:  # never print the secrets
        return f"GoogleAdsCredentials(client_id=***, token_uri={self.token_uri!r})"


class GoogleAdsReader:
    """Runs the reports' GAQL against one customer through the official client."""

    def __init__(self, credentials: GoogleAdsCredentials, customer_id: str, login_customer_id: str | None = None,
                 endpoint: str = DEFAULT_ENDPOINT, max_attempts: int = 5, backoff_seconds: float = 1.0):
        from google.ads.googleads.client import GoogleAdsClient
        from google.ads.googleads.errors import GoogleAdsException

        self.customer_id = normalize_customer_id(customer_id)
        self.login_customer_id = (
            normalize_customer_id(login_customer_id, "GOOGLE_ADS_LOGIN_CUSTOMER_ID") if login_customer_id else None
        )
        self.max_attempts, self.backoff_seconds = max_attempts, backoff_seconds
        self._google_ads_exception = GoogleAdsException
        self._secrets = (credentials.developer_token, credentials.client_id, credentials.client_secret,
                         credentials.refresh_token)
        oauth = self._refreshed_oauth(credentials)
        self._secrets += (oauth.token,)
        self._client = GoogleAdsClient(
            credentials=oauth, developer_token=credentials.developer_token,
            login_customer_id=self.login_customer_id, endpoint=endpoint, version=API_VERSION,
            use_proto_plus=True,
        )
        self._service = self._client.get_service("GoogleAdsService")

    def _refreshed_oauth(self, credentials: GoogleAdsCredentials):
        """Refresh the access token now so a bad refresh token fails here, clearly, instead of
        inside gRPC's metadata plugin (which reports it as a retryable UNAVAILABLE)."""
        import google.auth.exceptions
        import google.auth.transport.requests
        from google.oauth2.credentials import Credentials

        oauth = Credentials(
            token=None, refresh_token=credentials.refresh_token, client_id=credentials.client_id,
            client_secret=credentials.client_secret, token_uri=credentials.token_uri,
        )
        try:
            oauth.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            reason = exc.args[0] if exc.args else type(exc).__name__
            raise GoogleAdsAuthError(
                f"Google OAuth token refresh at {credentials.token_uri} failed: "
                f"{_redact(str(reason), self._secrets)}; check GOOGLE_ADS_CLIENT_ID, GOOGLE_ADS_CLIENT_SECRET "
                f"and GOOGLE_ADS_REFRESH_TOKEN (and GOOGLE_ADS_TOKEN_URI)"
            ) from None
        return oauth

    def close(self) -> None:
        self._service.transport.close()

    def _stream(self, query: str) -> tuple[list, int]:
        rows, batches = [], 0
        for batch in self._service.search_stream(customer_id=self.customer_id, query=query):
            rows.extend(type(batch).pb(batch).results)
            batches += 1
        return rows, batches

    def run(self, report: Report, start: date | None = None, end: date | None = None) -> pd.DataFrame:
        """The report's rows as raw columns; the whole query is re-run on a transient error."""
        query = report.query(start, end)
        what = report.name if start is None else f"{report.name} {start}..{end}"
        began = time.perf_counter()

        def on_error(exc: Exception) -> Exception | None:
            if isinstance(exc, self._google_ads_exception):
                error = describe_google_ads_exception(exc, what, self.customer_id)
                return GoogleAdsRequestError(_redact(str(error), self._secrets), error.request_id, error.error_codes)
            if isinstance(exc, api_exceptions.GoogleAPICallError):
                return GoogleAdsError(_redact(f"Google Ads {what} failed: {type(exc).__name__}: {exc.message}",
                                              self._secrets))
            return None

        rows, batches = fetch_with_retry(
            lambda: self._stream(query), what=what, max_attempts=self.max_attempts,
            backoff_seconds=self.backoff_seconds, on_error=on_error,
        )
        frame = rows_to_columns(report, rows)
        logger.info("google_ads %s: %d rows in %d batches (%.2fs)", what, len(frame), batches,
                    time.perf_counter() - began)
        return frame

    # -- the four reports
    def campaigns(self) -> pd.DataFrame:
        return campaigns_frame(self.run(CAMPAIGNS_REPORT))

    def campaign_performance(self, start: date, end: date) -> pd.DataFrame:
        return campaign_performance_frame(self.run(CAMPAIGN_PERFORMANCE_REPORT, start, end))

    def ad_performance(self, start: date, end: date) -> pd.DataFrame:
        campaign_rows = self.run(CAMPAIGN_PERFORMANCE_REPORT, start, end)
        ad_group_rows = self.run(AD_GROUP_PERFORMANCE_REPORT, start, end)
        keyword_rows = self.run(KEYWORD_PERFORMANCE_REPORT, start, end)
        frame = allocate_ad_performance(campaign_rows, ad_group_rows, keyword_rows)
        logger.info("google_ads ad_performance %s..%s: %d rows (%d keyword rows)", start, end, len(frame),
                    len(keyword_rows))
        return frame

    def ad_clicks(self, day: date) -> pd.DataFrame:
        return clicks_frame(self.run(CLICKS_REPORT, day, day))

    def ad_clicks_range(self, start: date, end: date) -> pd.DataFrame:
        """Clicks of several days: one click_view query per day (the API allows no more)."""
        return pd.concat([self.ad_clicks(day) for day in iter_days(start, end)], ignore_index=True)


def iter_days(start: date, end: date) -> Iterator[date]:
    """Each date from start to end inclusive."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    for n in range((end - start).days + 1):
        yield start + timedelta(days=n)


# ---------------------------------------------------------------- the dagster resource
class LiveGoogleAds(GoogleAdsSource):
    """Google Ads through the official google-ads client (configure each field with EnvVar)."""

    developer_token: str
    client_id: str
    client_secret: str
    refresh_token: str
    customer_id: str
    login_customer_id: str | None = None
    endpoint: str = DEFAULT_ENDPOINT
    token_uri: str = DEFAULT_TOKEN_URI
    max_attempts: int = 5
    backoff_seconds: float = 1.0

    _reader: GoogleAdsReader | None = PrivateAttr(default=None)

    def reader(self) -> GoogleAdsReader:
        """One client (one channel, one refreshed token that auto-renews) per resource instance."""
        if self._reader is None:
            self._reader = GoogleAdsReader(
                GoogleAdsCredentials(self.developer_token, self.client_id, self.client_secret,
                                     self.refresh_token, self.token_uri),
                self.customer_id, self.login_customer_id or None, self.endpoint,
                self.max_attempts, self.backoff_seconds,
            )
        return self._reader

    def teardown_after_execution(self, context) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def campaigns(self) -> pd.DataFrame:
        return self.reader().campaigns()

    def campaign_performance(self, start: date, end: date) -> pd.DataFrame:
        return self.reader().campaign_performance(start, end)

    def ad_performance(self, start: date, end: date) -> pd.DataFrame:
        return self.reader().ad_performance(start, end)

    def ad_clicks(self, day: date) -> pd.DataFrame:
        return self.reader().ad_clicks(day)
