"""The live HubSpot source: contacts, deals and meetings read from the CRM v3 API with hubspot-api-client.

Layout: plain functions and the `HubSpotCrm` class (no dagster) hold the mapping, the search
windowing and the retry logic so they can be unit-tested; `LiveHubSpot` is the thin dagster
resource that wires configuration to them.

Reading:
- full sync pages the list API (`GET /crm/v3/objects/{type}`, archived=false) with `after`;
  deals ask for their contact associations inline.
- incremental sync (and engagements, always) uses the search API with a filterGroup
  `property GTE start AND property LT end` (epoch ms), sorted ascending on that property, 200
  per page. HubSpot serves at most 10,000 results per search query, so a window whose
  `total` exceeds `search_window_cap` is split in halves, recursively, down to
  `min_window_seconds`; past that the sync stops with an error rather than lose records.
  Search never returns archived records. Known limit: search pages by offset, so a record
  modified *during* a window's paging leaves the window and can shift one unmodified record
  past a page boundary; it is picked up by the next full sync (or a re-run of the window).
  Search results carry no associations, so deal and meeting contacts come from the v4
  associations batch-read endpoint (1,000 ids a request).
- engagements: HubSpot meetings (the CRM objects API) become event_type 'meeting', channel
  'sales', occurred_at = hs_timestamp, contact = first associated contact. Web analytics
  events (page views, form submissions) are not exposed per event by the CRM API and are not
  mapped.

Quarantine contract: values are passed through as raw strings (timestamps as HubSpot's ISO
strings; epoch-millisecond values are converted to ISO) so `contracts.conform()` quarantines
unparseable dates, amounts and missing keys with a reason. Records the connector itself
judges unusable (a contact without an e-mail) keep their row and get a non-null
`quarantine_reason` column; `split_flagged()` turns those rows into a quarantine frame with a
`reason` column, in the shape conform() returns. Nothing is dropped except archived records.

Faults: 429 (honouring Retry-After) and 5xx/connection errors are retried with exponential
backoff for GET and POST alike, at most `max_attempts` tries in total; the client's own urllib3
retry is switched off so the bound is ours alone. 401/403 raise `HubSpotAuthError` naming
HUBSPOT_ACCESS_TOKEN (never its value).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import urllib3
from hubspot import HubSpot
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from pydantic import Field, PrivateAttr
from urllib3.util.retry import Retry

from gtm_assets.resources.hubspot.base import HubSpotSource

logger = logging.getLogger("gtm_assets.hubspot")

TOKEN_ENV = "HUBSPOT_ACCESS_TOKEN"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
SEARCH_PAGE_MAX = 200
ASSOCIATION_BATCH_MAX = 1000
_API_EXCEPTIONS = (ObjectsApiException, PropertiesApiException, AssociationsApiException)

# Output column -> the LiveHubSpot setting that names its HubSpot property.
CONTACT_SETTINGS: dict[str, str] = {
    "email": "email_property",
    "firstname": "firstname_property",
    "lastname": "lastname_property",
    "company": "company_property",
    "domain": "domain_property",
    "lifecycle_stage": "lifecycle_stage_property",
    "created_at": "contact_created_property",
    "last_modified_at": "contact_modified_property",
    "gclid": "gclid_property",
    "analytics_source": "analytics_source_property",
    "analytics_source_data_1": "analytics_source_data_1_property",
    "analytics_source_data_2": "analytics_source_data_2_property",
    "utm_source": "utm_source_property",
    "utm_medium": "utm_medium_property",
    "utm_campaign": "utm_campaign_property",
    "lead_at": "lead_date_property",
    "mql_at": "mql_date_property",
    "sql_at": "sql_date_property",
    "opportunity_at": "opportunity_date_property",
    "customer_at": "customer_date_property",
}
DEAL_SETTINGS: dict[str, str] = {
    "amount": "deal_amount_property",
    "stage": "deal_stage_property",
    "created_at": "deal_created_property",
    "closed_at": "deal_closed_property",
    "is_closed": "deal_is_closed_property",
    "is_won": "deal_is_won_property",
    "last_modified_at": "deal_modified_property",
    "deal_name": "deal_name_property",
    "pipeline": "deal_pipeline_property",
}
MEETING_SETTINGS: dict[str, str] = {
    "occurred_at": "meeting_time_property",
    "detail": "meeting_title_property",
    "outcome": "meeting_outcome_property",
}
# Settings that may not be blank: without them a record has no identity in time or person.
REQUIRED_SETTINGS = frozenset({
    "email_property", "contact_created_property", "contact_modified_property",
    "deal_created_property", "deal_modified_property", "meeting_time_property",
})
CONTACT_TIME_COLUMNS = ("created_at", "last_modified_at", "lead_at", "mql_at", "sql_at", "opportunity_at",
                        "customer_at")


class HubSpotError(RuntimeError):
    """A HubSpot read failed; the message names the cause and the fix, never the token."""


class HubSpotAuthError(HubSpotError):
    pass


class HubSpotConfigError(HubSpotError):
    pass


class HubSpotApiError(HubSpotError):
    pass


class HubSpotWindowError(HubSpotError):
    pass


# ---- plain functions: mapping ----------------------------------------------------------------

def to_epoch_ms(moment: datetime) -> int:
    """A window bound as HubSpot filter value; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def blank_to_none(values: pd.Series) -> pd.Series:
    """HubSpot sends unset properties as null or ''; both become None."""
    values = values.astype("object")
    keep = values.notna() & values.astype("string").str.strip().ne("").fillna(False).astype(bool)
    return values.where(keep, None)


def normalize_timestamps(values: pd.Series) -> pd.Series:
    """Keep HubSpot's ISO strings as they are; turn epoch-millisecond strings into ISO.

    Anything else stays a raw string so conform() can quarantine it with a reason.
    """
    values = blank_to_none(values)
    text = values.astype("string")
    is_epoch = text.str.fullmatch(r"\d{11,13}").fillna(False).astype(bool)
    if not is_epoch.any():
        return values
    as_time = pd.to_datetime(pd.to_numeric(text.where(is_epoch)), unit="ms", utc=True)
    iso = as_time.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").astype("object")
    return values.where(~is_epoch, iso)


def website_domain(websites: pd.Series) -> pd.Series:
    """'https://www.Acme.com/about' -> 'acme.com' (contacts carry a website, the contract wants a domain)."""
    text = blank_to_none(websites).astype("string").str.strip().str.lower()
    host = (text.str.replace(r"^[a-z][a-z0-9+.-]*://", "", regex=True)
            .str.replace(r"^www\.", "", regex=True)
            .str.split(r"[/?#:]", n=1, regex=True).str[0])
    return blank_to_none(host.astype("object").where(host.notna(), None))


def properties_frame(records: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    """One row per record: `id` plus each output column from its property ('' -> all None)."""
    props = [r.get("properties") or {} for r in records]
    wanted = sorted({p for p in columns.values() if p})
    raw = pd.DataFrame.from_records(props, columns=wanted) if props else pd.DataFrame(columns=wanted)
    frame = pd.DataFrame({"id": pd.Series([r.get("id") for r in records], dtype="object")})
    for column, prop in columns.items():
        frame[column] = blank_to_none(raw[prop]) if prop else pd.Series([None] * len(frame), dtype="object")
    return frame


def contacts_frame(records: list[dict], columns: dict[str, str]) -> pd.DataFrame:
    """Contacts in the CONTACTS contract shape (plus extras and `quarantine_reason`)."""
    frame = properties_frame(records, columns).rename(columns={"id": "contact_id"})
    frame["domain"] = website_domain(frame["domain"])
    for column in CONTACT_TIME_COLUMNS:
        frame[column] = normalize_timestamps(frame[column])
    no_email = frame["email"].isna()
    frame["quarantine_reason"] = pd.Series(np.where(no_email, "email: missing", None), index=frame.index,
                                           dtype="object")
    return frame


def deals_frame(records: list[dict], columns: dict[str, str], contact_of: dict[str, str]) -> pd.DataFrame:
    """Deals in the DEALS contract shape; `contact_of` maps deal id -> first associated contact."""
    frame = properties_frame(records, columns).rename(columns={"id": "deal_id"})
    frame.insert(1, "contact_id", frame["deal_id"].map(contact_of).astype("object"))
    for column in ("created_at", "closed_at", "last_modified_at"):
        frame[column] = normalize_timestamps(frame[column])
    if columns.get("is_closed"):
        # HubSpot's closedate is the *expected* close date on open deals; only closed deals have closed_at.
        closed = frame["is_closed"].astype("string").str.strip().str.lower().eq("true").fillna(False).astype(bool)
        frame["closed_at"] = frame["closed_at"].where(closed, None)
    frame["quarantine_reason"] = None
    return frame.drop(columns=["is_closed"])


def meetings_frame(records: list[dict], columns: dict[str, str], contact_of: dict[str, str]) -> pd.DataFrame:
    """Meetings as ENGAGEMENTS rows: event_type 'meeting', channel 'sales'."""
    frame = properties_frame(records, columns).rename(columns={"id": "engagement_id"})
    frame.insert(1, "contact_id", frame["engagement_id"].map(contact_of).astype("object"))
    frame["occurred_at"] = normalize_timestamps(frame["occurred_at"])
    frame["date"] = frame["occurred_at"]  # conform() turns the timestamp into its UTC date
    frame["event_type"] = "meeting"
    frame["channel"] = "sales"
    frame["quarantine_reason"] = None
    return frame


def split_flagged(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows without a connector quarantine_reason, flagged rows with `reason`) for the quarantine table."""
    if "quarantine_reason" not in frame.columns:
        return frame, frame.iloc[0:0].assign(reason=pd.Series(dtype="object"))
    flagged = frame["quarantine_reason"].notna()
    good = frame[~flagged].drop(columns=["quarantine_reason"]).reset_index(drop=True)
    bad = frame[flagged].rename(columns={"quarantine_reason": "reason"}).reset_index(drop=True)
    return good, bad


def check_properties(object_type: str, wanted: dict[str, str], available: set[str]) -> None:
    """Raise HubSpotConfigError naming every configured property the portal lacks and its setting.

    `wanted` maps setting name -> property name ('' means "not mapped", allowed unless required).
    """
    problems = []
    for setting, prop in wanted.items():
        if not prop:
            if setting in REQUIRED_SETTINGS:
                problems.append(f"setting LiveHubSpot.{setting} is empty but required")
        elif prop not in available:
            optional = "" if setting in REQUIRED_SETTINGS else " or '' to leave it unmapped"
            problems.append(f"{object_type} property '{prop}' not found; set LiveHubSpot.{setting} "
                            f"to the portal's property{optional}")
    if problems:
        raise HubSpotConfigError(
            f"HubSpot property configuration does not match the portal (checked /crm/v3/properties/"
            f"{object_type}): " + "; ".join(problems)
        )


# ---- plain functions: retry and windowing ----------------------------------------------------

def parse_retry_after(headers) -> float | None:
    """Retry-After in seconds, or None when absent or not a number (HubSpot sends seconds)."""
    if not headers:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def retry_wait_seconds(attempt: int, backoff_seconds: float, retry_after: float | None,
                       max_wait_seconds: float) -> float:
    """Exponential backoff (backoff, 2x, 4x, ...), at least Retry-After, at most max_wait_seconds."""
    wait = max(backoff_seconds * 2 ** (attempt - 1), retry_after or 0.0)
    return min(wait, max_wait_seconds)


def search_windows(fetch_page: Callable[[int, int, str | None], dict], start_ms: int, end_ms: int, *,
                   cap: int, min_window_ms: int, label: str) -> tuple[list[dict], int]:
    """All search results in [start_ms, end_ms), splitting windows whose total exceeds `cap`.

    `fetch_page(start_ms, end_ms, after)` returns one raw search response. Returns (records,
    number of windows fetched). A window that still exceeds the cap at `min_window_ms` raises.
    """
    records: list[dict] = []
    windows = 0
    pending = [(start_ms, end_ms)]
    while pending:
        low, high = pending.pop()
        body = fetch_page(low, high, None)
        total = int(body.get("total") or 0)
        if total > cap:
            if high - low <= min_window_ms:
                raise HubSpotWindowError(
                    f"HubSpot {label} search: {total} records in the window [{_ms_iso(low)}, {_ms_iso(high)}) "
                    f"exceed the search cap of {cap} even at the minimum window; lower "
                    f"LiveHubSpot.min_window_seconds or run a full sync (full_sync=True)"
                )
            middle = low + (high - low) // 2
            logger.info("hubspot %s: window [%s, %s) has %d results > cap %d; splitting",
                        label, _ms_iso(low), _ms_iso(high), total, cap)
            pending.extend([(middle, high), (low, middle)])  # the earlier half is fetched first
            continue
        windows += 1
        window_records = list(body.get("results") or [])
        after = _next_after(body)
        while after is not None:
            body = fetch_page(low, high, after)
            window_records.extend(body.get("results") or [])
            after = _next_after(body)
        logger.info("hubspot %s: window [%s, %s): %d records (total %d)",
                    label, _ms_iso(low), _ms_iso(high), len(window_records), total)
        records.extend(window_records)
    return records, windows


def _next_after(body: dict) -> str | None:
    return ((body.get("paging") or {}).get("next") or {}).get("after") or None


def _ms_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def _error_message(exc: Exception) -> str:
    """HubSpot's own error message from a response body, short."""
    body = getattr(exc, "body", None)
    try:
        return str(json.loads(body).get("message", ""))[:300]
    except (TypeError, ValueError, AttributeError):
        return ""


# ---- plain class: the API calls ----------------------------------------------------------------

class HubSpotCrm:
    """One hubspot-api-client client and one API object per kind, with bounded retries.

    Responses are read raw (`_preload_content=False`) and parsed as JSON: the generated models
    would raise on a malformed record (e.g. an unparseable createdAt) instead of letting it be
    quarantined, and would cost a model object per record.
    """

    def __init__(self, access_token: str, base_url: str, *, max_attempts: int = 5, backoff_seconds: float = 1.0,
                 max_wait_seconds: float = 60.0, timeout_seconds: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not access_token or not access_token.strip():
            raise HubSpotAuthError(f"{TOKEN_ENV} is empty; set it to the HubSpot private-app access token")
        if max_attempts < 1:
            raise HubSpotConfigError(f"LiveHubSpot.max_attempts must be at least 1, got {max_attempts}")
        self._token = access_token
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_wait_seconds = max_wait_seconds
        self.timeout_seconds = timeout_seconds
        self._sleep = sleep
        self.requests = 0
        # total=0: urllib3 must not retry on its own (it would skip POST and multiply our bound).
        client = HubSpot(access_token=access_token, host=base_url.rstrip("/"), retry=Retry(total=0, redirect=0))
        # Each `.basic_api` access builds a new ApiClient and connection pool: take each once.
        self._objects = client.crm.objects.basic_api
        self._search = client.crm.objects.search_api
        self._properties = client.crm.properties.core_api
        self._associations = client.crm.associations.v4.batch_api

    def __repr__(self) -> str:
        return "HubSpotCrm(<token hidden>)"

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def call(self, what: str, method: Callable, *args, **kwargs) -> dict:
        """One API call as parsed JSON, retried on 429/5xx/connection errors up to max_attempts."""
        for attempt in range(1, self.max_attempts + 1):
            self.requests += 1
            try:
                response = method(*args, _preload_content=False, _request_timeout=self.timeout_seconds, **kwargs)
                try:
                    return json.loads(response.data)
                finally:
                    response.release_conn()
            except _API_EXCEPTIONS as exc:
                status = exc.status
                if status in (401, 403):
                    problem = "rejected the access token (401)" if status == 401 else \
                        f"refused access (403: {self._scrub(_error_message(exc))})"
                    raise HubSpotAuthError(
                        f"HubSpot {problem} while trying to {what}; check {TOKEN_ENV}: it must hold a valid "
                        f"private-app token with the crm.objects.contacts.read, crm.objects.deals.read, "
                        f"crm.schemas.contacts.read and crm.schemas.deals.read scopes"
                    ) from None
                if status not in RETRYABLE_STATUSES:
                    raise HubSpotApiError(
                        f"HubSpot answered HTTP {status} to {what}: {self._scrub(_error_message(exc))}"
                    ) from None
                retry_after = parse_retry_after(exc.headers)
                last = f"HTTP {status}"
            except urllib3.exceptions.HTTPError as exc:
                retry_after = None
                last = type(exc).__name__
            if attempt == self.max_attempts:
                raise HubSpotApiError(
                    f"HubSpot {what} still failing after {self.max_attempts} attempts (last: {last}); HubSpot is "
                    f"down or rate-limiting this portal: retry later or raise LiveHubSpot.max_attempts/backoff_seconds"
                ) from None
            wait = retry_wait_seconds(attempt, self.backoff_seconds, retry_after, self.max_wait_seconds)
            logger.warning("hubspot %s: %s (attempt %d of %d, Retry-After %s); retrying in %.2fs",
                           what, last, attempt, self.max_attempts, retry_after, wait)
            self._sleep(wait)
        raise AssertionError("unreachable")

    def property_names(self, object_type: str) -> set[str]:
        body = self.call(f"read {object_type} properties", self._properties.get_all, object_type, archived=False)
        return {p.get("name") for p in body.get("results") or []}

    def list_all(self, object_type: str, properties: list[str], *, page_size: int = 100,
                 associations: list[str] | None = None) -> tuple[list[dict], int]:
        """Every non-archived record via the list API; returns (records, pages)."""
        records: list[dict] = []
        after, pages = None, 0
        while True:
            body = self.call(f"list {object_type}", self._objects.get_page, object_type, limit=page_size,
                             after=after, properties=properties, associations=associations, archived=False)
            pages += 1
            records.extend(body.get("results") or [])
            logger.debug("hubspot %s: list page %d, %d records so far", object_type, pages, len(records))
            after = _next_after(body)
            if after is None:
                return records, pages

    def search_page(self, object_type: str, time_property: str, properties: list[str], page_size: int,
                    start_ms: int, end_ms: int, after: str | None) -> dict:
        request = {
            "filterGroups": [{"filters": [
                {"propertyName": time_property, "operator": "GTE", "value": str(start_ms)},
                {"propertyName": time_property, "operator": "LT", "value": str(end_ms)},
            ]}],
            "sorts": [{"propertyName": time_property, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": page_size,
        }
        if after is not None:
            request["after"] = after
        return self.call(f"search {object_type}", self._search.do_search, object_type, request)

    def first_associated(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, str]:
        """from id -> first associated `to_type` id (v4 batch read, 1,000 ids a request)."""
        linked: dict[str, str] = {}
        for i in range(0, len(ids), ASSOCIATION_BATCH_MAX):
            chunk = ids[i:i + ASSOCIATION_BATCH_MAX]
            body = self.call(f"read {from_type}->{to_type} associations", self._associations.get_page,
                             from_type, to_type, {"inputs": [{"id": x} for x in chunk]})
            for result in body.get("results") or []:
                targets = result.get("to") or []
                if targets:
                    linked[str(result["from"]["id"])] = str(targets[0]["toObjectId"])
        return linked


def first_inline_association(records: list[dict], to_type: str) -> dict[str, str]:
    """id -> first associated id from list-API records fetched with `associations=`."""
    linked = {}
    for record in records:
        results = (((record.get("associations") or {}).get(to_type) or {}).get("results")) or []
        if results:
            linked[str(record.get("id"))] = str(results[0]["id"])
    return linked


def drop_archived(records: list[dict], label: str) -> list[dict]:
    """Archived records are deleted in HubSpot: excluded, and counted in the log."""
    live = [r for r in records if not r.get("archived")]
    if len(live) != len(records):
        logger.info("hubspot %s: excluded %d archived records", label, len(records) - len(live))
    return live


# ---- the dagster resource ----------------------------------------------------------------------

class LiveHubSpot(HubSpotSource):
    """HubSpot CRM v3 over hubspot-api-client. Configure access_token with EnvVar("HUBSPOT_ACCESS_TOKEN")."""

    access_token: str = Field(description="HubSpot private-app token; set it with EnvVar('HUBSPOT_ACCESS_TOKEN').")
    base_url: str = Field("https://api.hubapi.com", description="API base (HUBSPOT_API_BASE_URL).")
    page_size: int = Field(100, description="Records per list-API page (HubSpot allows up to 100).")
    search_page_size: int = Field(SEARCH_PAGE_MAX, description="Records per search page (at most 200).")
    max_attempts: int = Field(5, description="Tries per request on 429/5xx/connection errors, first included.")
    backoff_seconds: float = Field(1.0, description="First retry wait; doubles per attempt.")
    max_retry_wait_seconds: float = Field(60.0, description="Cap on any single wait, Retry-After included.")
    timeout_seconds: float = Field(60.0, description="Per-request timeout.")
    search_window_cap: int = Field(10_000, description="Search results HubSpot serves per query.")
    min_window_seconds: float = Field(1.0, description="Smallest window the incremental search splits into.")

    email_property: str = "email"
    firstname_property: str = "firstname"
    lastname_property: str = "lastname"
    company_property: str = "company"
    domain_property: str = Field("website", description="Contact property holding the company website/domain.")
    lifecycle_stage_property: str = "lifecyclestage"
    contact_created_property: str = "createdate"
    contact_modified_property: str = "lastmodifieddate"
    gclid_property: str = "hs_google_click_id"
    analytics_source_property: str = "hs_analytics_source"
    analytics_source_data_1_property: str = "hs_analytics_source_data_1"
    analytics_source_data_2_property: str = "hs_analytics_source_data_2"
    utm_source_property: str = "utm_source"
    utm_medium_property: str = "utm_medium"
    utm_campaign_property: str = "utm_campaign"
    lead_date_property: str = "hs_lifecyclestage_lead_date"
    mql_date_property: str = "hs_lifecyclestage_marketingqualifiedlead_date"
    sql_date_property: str = "hs_lifecyclestage_salesqualifiedlead_date"
    opportunity_date_property: str = "hs_lifecyclestage_opportunity_date"
    customer_date_property: str = "hs_lifecyclestage_customer_date"

    deal_amount_property: str = "amount"
    deal_stage_property: str = "dealstage"
    deal_created_property: str = "createdate"
    deal_closed_property: str = "closedate"
    deal_is_closed_property: str = "hs_is_closed"
    deal_is_won_property: str = "hs_is_closed_won"
    deal_modified_property: str = "hs_lastmodifieddate"
    deal_name_property: str = "dealname"
    deal_pipeline_property: str = "pipeline"

    meeting_time_property: str = "hs_timestamp"
    meeting_title_property: str = "hs_meeting_title"
    meeting_outcome_property: str = "hs_meeting_outcome"

    _crm: HubSpotCrm | None = PrivateAttr(default=None)
    _checked: set = PrivateAttr(default_factory=set)

    def crm(self) -> HubSpotCrm:
        if self._crm is None:
            self._crm = HubSpotCrm(self.access_token, self.base_url, max_attempts=self.max_attempts,
                                   backoff_seconds=self.backoff_seconds,
                                   max_wait_seconds=self.max_retry_wait_seconds,
                                   timeout_seconds=self.timeout_seconds)
        return self._crm

    def _columns(self, settings: dict[str, str], object_type: str) -> dict[str, str]:
        """Output column -> property, after checking (once per object type) that the portal has them."""
        by_setting = {setting: getattr(self, setting) for setting in settings.values()}
        if object_type not in self._checked:
            check_properties(object_type, by_setting, self.crm().property_names(object_type))
            self._checked.add(object_type)
        return {column: by_setting[setting] for column, setting in settings.items()}

    def _fetch(self, object_type: str, columns: dict[str, str], time_property: str, start: datetime,
               end: datetime, full_sync: bool, associations: list[str] | None = None) -> tuple[list[dict], str]:
        crm = self.crm()
        properties = sorted({p for p in columns.values() if p})
        requests_before = crm.requests
        if full_sync:
            records, pages = crm.list_all(object_type, properties, page_size=self.page_size,
                                          associations=associations)
            how = f"full sync, {pages} pages"
        else:
            if self.search_page_size > SEARCH_PAGE_MAX:
                raise HubSpotConfigError(f"LiveHubSpot.search_page_size is {self.search_page_size}; "
                                         f"HubSpot search serves at most {SEARCH_PAGE_MAX}")

            def fetch_page(low: int, high: int, after: str | None) -> dict:
                return crm.search_page(object_type, time_property, properties, self.search_page_size, low, high, after)

            records, windows = search_windows(fetch_page, to_epoch_ms(start), to_epoch_ms(end),
                                              cap=self.search_window_cap,
                                              min_window_ms=int(self.min_window_seconds * 1000), label=object_type)
            how = f"incremental [{start.isoformat()}, {end.isoformat()}), {windows} windows"
        records = drop_archived(records, object_type)
        logger.info("hubspot %s: %d records (%s, %d requests)", object_type, len(records), how,
                    crm.requests - requests_before)
        return records, how

    def contacts(self, start: datetime, end: datetime, full_sync: bool = False) -> pd.DataFrame:
        columns = self._columns(CONTACT_SETTINGS, "contacts")
        records, _ = self._fetch("contacts", columns, self.contact_modified_property, start, end, full_sync)
        frame = contacts_frame(records, columns)
        flagged = int(frame["quarantine_reason"].notna().sum())
        if flagged:
            logger.warning("hubspot contacts: %d of %d records flagged for quarantine (quarantine_reason)",
                           flagged, len(frame))
        return frame

    def deals(self, start: datetime, end: datetime, full_sync: bool = False) -> pd.DataFrame:
        columns = self._columns(DEAL_SETTINGS, "deals")
        records, _ = self._fetch("deals", columns, self.deal_modified_property, start, end, full_sync,
                                 associations=["contacts"] if full_sync else None)
        if full_sync:
            contact_of = first_inline_association(records, "contacts")
        else:
            contact_of = self.crm().first_associated("deals", "contacts", [str(r.get("id")) for r in records])
        return deals_frame(records, columns, contact_of)

    def engagements(self, start: datetime, end: datetime) -> pd.DataFrame:
        columns = self._columns(MEETING_SETTINGS, "meetings")
        records, _ = self._fetch("meetings", columns, self.meeting_time_property, start, end, full_sync=False)
        contact_of = self.crm().first_associated("meetings", "contacts", [str(r.get("id")) for r in records])
        return meetings_frame(records, columns, contact_of)
