"""The live firmographic provider: company facts by domain over a small JSON HTTP API, cached per domain.

Wire shape (any provider, or a thin proxy in front of Clearbit/Apollo/ZoomInfo, can serve it):

    POST {base_url}/companies/lookup
    Authorization: Bearer <GTM_ENRICHMENT_API_KEY>
    Content-Type: application/json
    {"domains": ["acme.com", "globex.io"]}                  (1 to 100 domains, normalized)

    200 {"results": [{"domain": "acme.com", "company_size": "51-200", "employees": 120,
                      "industry": "Software", "country": "US", "tech_stack": ["Salesforce", "HubSpot"]}],
         "not_found": ["globex.io"]}

A requested domain absent from `results` is unknown: NULL facts. `company_size` may be
omitted when `employees` is given (the band is derived); `tech_stack` may be a list or a
';'-joined string.

Behaviour:
- Domains are normalized (lower case, no scheme, path or leading www.) and looked up once:
  answers, unknown domains included, are kept in an in-process dict and, unless disabled, in a
  JSON file under GTM_HOME/cache (one file per base_url, entries expire after cache_ttl_days).
- Free-mail and disposable domains (gmail.com, mailinator.com, ...) and strings that are not
  domains get NULL facts without a request: they say nothing about a company.
- 429 (honouring Retry-After), 5xx and connection errors are retried with exponential backoff,
  at most `max_attempts` tries per request. 401/403 name GTM_ENRICHMENT_API_KEY, never its value.
- Configuration is checked when a lookup needs the network, not at import or definition
  time: a demo or a run without enrichment never needs GTM_ENRICHMENT_BASE_URL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import urllib3
from pydantic import Field, PrivateAttr

from gtm_assets.resources.enrichment.base import FIRMOGRAPHIC_COLUMNS, FirmographicsSource

logger = logging.getLogger("gtm_assets.enrichment")

BASE_URL_ENV = "GTM_ENRICHMENT_BASE_URL"
API_KEY_ENV = "GTM_ENRICHMENT_API_KEY"
LOOKUP_PATH = "/companies/lookup"
BATCH_MAX = 100
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
SIZE_BANDS = ("1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+")
_BAND_FLOORS = (1, 11, 51, 201, 1001, 5001)
FACT_COLUMNS = [c for c in FIRMOGRAPHIC_COLUMNS if c != "domain"]

# Personal and throw-away mailbox providers: a contact's address there says nothing about a company.
PERSONAL_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "outlook.com", "hotmail.com",
    "hotmail.co.uk", "live.com", "msn.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
    "protonmail.com", "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.ru", "yandex.com",
    "mail.ru", "qq.com", "163.com", "126.com", "zoho.com", "fastmail.com", "hey.com", "tutanota.com",
    "mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com", "trashmail.com",
    "tempmail.com", "temp-mail.org", "sharklasers.com", "getnada.com", "dispostable.com", "maildrop.cc",
})


class EnrichmentError(RuntimeError):
    """A firmographic lookup failed; the message names the cause and the fix, never the API key."""


class EnrichmentConfigError(EnrichmentError):
    pass


class EnrichmentAuthError(EnrichmentError):
    pass


class EnrichmentApiError(EnrichmentError):
    pass


# ---- plain functions -----------------------------------------------------------------------------

def normalize_domain(value: object) -> str | None:
    """'https://www.Acme.com/about' -> 'acme.com'; None for anything that is not a dotted host name."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip().lower()
    if "@" in text:  # an e-mail address was passed: its domain is what is meant
        text = text.rsplit("@", 1)[1]
    if "://" in text:
        text = text.split("://", 1)[1]
    for separator in "/?#:":
        text = text.split(separator, 1)[0]
    text = text.strip(".")
    if text.startswith("www."):
        text = text[4:]
    labels = text.split(".")
    if len(labels) < 2 or not all(labels) or not all(c.isalnum() or c in "-." for c in text):
        return None
    return text


def size_band(employees: float | None) -> str | None:
    """The company_size band of a head count (1-10, 11-50, ..., 5000+); None when unknown."""
    if employees is None or pd.isna(employees) or employees < 1:
        return None
    band = 0
    for i, floor in enumerate(_BAND_FLOORS):
        if employees >= floor:
            band = i
    return SIZE_BANDS[band]


def facts_from_result(result: dict) -> dict:
    """One provider result -> FACT_COLUMNS (band derived from employees when missing or unknown)."""
    employees = result.get("employees")
    try:
        employees = None if employees in (None, "") else int(float(employees))
    except (TypeError, ValueError):
        employees = None
    band = result.get("company_size")
    if band not in SIZE_BANDS:
        band = size_band(employees)
    stack = result.get("tech_stack")
    if isinstance(stack, (list, tuple)):
        stack = ";".join(str(t) for t in stack if t)
    return {
        "company_size": band,
        "employees": employees,
        "industry": result.get("industry") or None,
        "country": result.get("country") or None,
        "tech_stack": stack if isinstance(stack, str) else None,
    }


def facts_frame(domains: list[str], facts_of: dict[str, dict | None], requested: list) -> pd.DataFrame:
    """One row per requested value (in order, duplicates collapsed) with FIRMOGRAPHIC_COLUMNS."""
    rows = []
    for raw, domain in zip(requested, domains):
        facts = facts_of.get(domain) if domain else None
        rows.append({"domain": raw, **(facts or dict.fromkeys(FACT_COLUMNS))})
    frame = pd.DataFrame(rows, columns=FIRMOGRAPHIC_COLUMNS)
    frame["employees"] = pd.to_numeric(frame["employees"], errors="coerce").astype("Int64")
    for column in ("domain", "company_size", "industry", "country", "tech_stack"):
        frame[column] = frame[column].astype("object").where(frame[column].notna(), None)
    return frame


def retry_after_seconds(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


# ---- the on-disk cache --------------------------------------------------------------------------

class DiskCache:
    """domain -> facts (or None for unknown), with the time of the answer, in one JSON file.

    Written atomically (temp file + rename) so a crash or a concurrent run never leaves half a file;
    concurrent writers may drop each other's newest entries, which only costs a repeated lookup.
    """

    def __init__(self, path: Path, ttl_seconds: float, clock: Callable[[], float] = time.time):
        self.path, self.ttl_seconds, self._clock = path, ttl_seconds, clock

    def load(self) -> dict[str, dict | None]:
        try:
            entries = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("enrichment cache %s is unreadable (%s); starting empty", self.path, type(exc).__name__)
            return {}
        now = self._clock()
        return {domain: entry.get("facts") for domain, entry in entries.items()
                if isinstance(entry, dict) and now - float(entry.get("at", 0)) <= self.ttl_seconds}

    def save(self, facts_of: dict[str, dict | None]) -> None:
        now = self._clock()
        try:
            current = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (OSError, ValueError):
            current = {}
        current.update({domain: {"facts": facts, "at": now} for domain, facts in facts_of.items()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".firmographics-", suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(current, out)
        os.replace(temp, self.path)


# ---- the HTTP client ---------------------------------------------------------------------------

class FirmographicsClient:
    """Batches lookups against the provider with bounded retries. No dagster, no cache."""

    def __init__(self, base_url: str, api_key: str, *, max_attempts: int = 5, backoff_seconds: float = 1.0,
                 max_wait_seconds: float = 60.0, timeout_seconds: float = 30.0, batch_size: int = BATCH_MAX,
                 sleep: Callable[[float], None] = time.sleep):
        if not base_url or not base_url.strip():
            raise EnrichmentConfigError(
                f"{BASE_URL_ENV} is empty; set it to the enrichment provider's API base "
                f"(e.g. https://enrichment.example.com/v1) to look up company firmographics"
            )
        if not base_url.startswith(("http://", "https://")):
            raise EnrichmentConfigError(f"{BASE_URL_ENV} must start with http:// or https://, got {base_url!r}")
        if not api_key or not api_key.strip():
            raise EnrichmentAuthError(f"{API_KEY_ENV} is empty; set it to the enrichment provider's API key")
        if max_attempts < 1:
            raise EnrichmentConfigError(f"HttpFirmographics.max_attempts must be at least 1, got {max_attempts}")
        if not 1 <= batch_size <= BATCH_MAX:
            raise EnrichmentConfigError(f"HttpFirmographics.batch_size must be 1..{BATCH_MAX}, got {batch_size}")
        self.url = base_url.rstrip("/") + LOOKUP_PATH
        self._key = api_key
        self.max_attempts, self.backoff_seconds, self.max_wait_seconds = max_attempts, backoff_seconds, max_wait_seconds
        self.batch_size = batch_size
        self._sleep = sleep
        self._timeout = urllib3.Timeout(total=timeout_seconds)
        self._pool = urllib3.PoolManager(retries=False)
        self.requests = 0

    def __repr__(self) -> str:
        return f"FirmographicsClient(url={self.url!r}, api_key=<hidden>)"

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***")

    def lookup(self, domains: list[str]) -> dict[str, dict | None]:
        """domain -> facts, or None for a domain the provider does not know."""
        found: dict[str, dict | None] = {}
        for i in range(0, len(domains), self.batch_size):
            batch = domains[i:i + self.batch_size]
            body = self._post(batch)
            results = body.get("results")
            if not isinstance(results, list):
                raise EnrichmentApiError(f"enrichment provider at {self.url} answered without a 'results' list; "
                                         f"check {BASE_URL_ENV} points at a provider speaking this API")
            answered = {}
            for result in results:
                domain = normalize_domain(result.get("domain")) if isinstance(result, dict) else None
                if domain is not None:
                    answered[domain] = facts_from_result(result)
            found.update({domain: answered.get(domain) for domain in batch})
        return found

    def _post(self, batch: list[str]) -> dict:
        payload = json.dumps({"domains": batch}).encode()
        headers = {"Authorization": f"Bearer {self._key}", "Content-Type": "application/json",
                   "Accept": "application/json"}
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            self.requests += 1
            retry_after = None
            try:
                response = self._pool.request("POST", self.url, body=payload, headers=headers,
                                              timeout=self._timeout, redirect=False)
            except urllib3.exceptions.HTTPError as exc:
                last = type(exc).__name__
            else:
                status = response.status
                if status == 200:
                    try:
                        return json.loads(response.data)
                    except ValueError:
                        raise EnrichmentApiError(f"enrichment provider at {self.url} answered 200 with a body "
                                                 f"that is not JSON") from None
                if status in (401, 403):
                    raise EnrichmentAuthError(
                        f"enrichment provider at {self.url} rejected the API key (HTTP {status}); "
                        f"check {API_KEY_ENV}"
                    )
                if status not in RETRYABLE_STATUSES:
                    detail = self._scrub(response.data[:300].decode("utf-8", "replace"))
                    raise EnrichmentApiError(f"enrichment provider at {self.url} answered HTTP {status}: {detail}")
                retry_after = retry_after_seconds(response.headers)
                last = f"HTTP {status}"
            if attempt == self.max_attempts:
                raise EnrichmentApiError(
                    f"enrichment lookup at {self.url} still failing after {self.max_attempts} attempts "
                    f"(last: {last}); retry later or raise HttpFirmographics.max_attempts/backoff_seconds"
                )
            wait = min(max(self.backoff_seconds * 2 ** (attempt - 1), retry_after or 0.0), self.max_wait_seconds)
            logger.warning("enrichment lookup of %d domains: %s (attempt %d of %d); retrying in %.2fs",
                           len(batch), last, attempt, self.max_attempts, wait)
            self._sleep(wait)
        raise AssertionError("unreachable")


# ---- the dagster resource ------------------------------------------------------------------------

def default_cache_dir() -> Path:
    return Path(os.environ.get("GTM_HOME") or ".gtm").resolve() / "cache"


class HttpFirmographics(FirmographicsSource):
    """Firmographics from an HTTP provider (see the module doc for the wire shape).

    Configure base_url from GTM_ENRICHMENT_BASE_URL and api_key with EnvVar("GTM_ENRICHMENT_API_KEY").
    """

    base_url: str = Field("", description="Provider API base (GTM_ENRICHMENT_BASE_URL); POST {base_url}/companies/lookup.")
    api_key: str = Field("", description="Provider API key, sent as a Bearer token; set it with EnvVar('GTM_ENRICHMENT_API_KEY').")
    batch_size: int = Field(BATCH_MAX, description="Domains per request (at most 100).")
    max_attempts: int = Field(5, description="Tries per request on 429/5xx/connection errors, first included.")
    backoff_seconds: float = Field(1.0, description="First retry wait; doubles per attempt.")
    max_retry_wait_seconds: float = Field(60.0, description="Cap on any single wait, Retry-After included.")
    timeout_seconds: float = Field(30.0, description="Per-request timeout.")
    disk_cache: bool = Field(True, description="Also keep answers in a JSON file under cache_dir.")
    cache_dir: str = Field("", description="Folder of the on-disk cache; default GTM_HOME/cache.")
    cache_ttl_days: float = Field(30.0, description="Days an on-disk answer (known or unknown) stays valid.")

    _client: FirmographicsClient | None = PrivateAttr(default=None)
    _known: dict = PrivateAttr(default_factory=dict)
    _disk_loaded: bool = PrivateAttr(default=False)

    def client(self) -> FirmographicsClient:
        if self._client is None:
            self._client = FirmographicsClient(
                self.base_url, self.api_key, max_attempts=self.max_attempts, backoff_seconds=self.backoff_seconds,
                max_wait_seconds=self.max_retry_wait_seconds, timeout_seconds=self.timeout_seconds,
                batch_size=self.batch_size,
            )
        return self._client

    def _disk(self) -> DiskCache | None:
        if not self.disk_cache or not self.base_url:
            return None
        folder = Path(self.cache_dir) if self.cache_dir else default_cache_dir()
        # One file per provider: answers of one provider are no answers of another.
        tag = hashlib.sha256(self.base_url.rstrip("/").encode()).hexdigest()[:12]
        return DiskCache(folder / f"firmographics-{tag}.json", self.cache_ttl_days * 86_400)

    def lookup(self, domains: Iterable[str]) -> pd.DataFrame:
        requested = list(dict.fromkeys(domains))
        normalized = [normalize_domain(d) for d in requested]
        wanted = list(dict.fromkeys(d for d in normalized if d is not None and d not in PERSONAL_MAIL_DOMAINS))
        disk = self._disk()
        if disk is not None and not self._disk_loaded:
            self._known.update({d: f for d, f in disk.load().items() if d not in self._known})
            self._disk_loaded = True
        missing = [d for d in wanted if d not in self._known]
        if missing:
            began = time.perf_counter()
            client = self.client()  # configuration errors surface here, when a lookup needs the network
            before = client.requests
            fetched = client.lookup(missing)
            self._known.update(fetched)
            if disk is not None:
                disk.save(fetched)
            logger.info("enrichment: looked up %d domains (%d known to the provider) in %d requests (%.2fs)",
                        len(missing), sum(f is not None for f in fetched.values()), client.requests - before,
                        time.perf_counter() - began)
        logger.debug("enrichment: %d domains requested, %d answered from cache, %d personal/invalid",
                     len(requested), len(wanted) - len(missing), len(requested) - len(wanted))
        return facts_frame(normalized, self._known, requested)
