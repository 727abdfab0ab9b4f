"""The live firmographic provider against its wire-level fake: batching, caching, unknowns, retries, secrets."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from gtm_assets.resources.enrichment.base import FIRMOGRAPHIC_COLUMNS
from gtm_assets.resources.enrichment.live import (
    DiskCache,
    EnrichmentApiError,
    EnrichmentAuthError,
    EnrichmentConfigError,
    HttpFirmographics,
    normalize_domain,
    size_band,
)
from gtm_assets_tests.fakes.enrichment_server import FakeEnrichment

KEY = "enrich-key-5f3a9c"
COMPANIES = {
    "acme.com": {"company_size": "51-200", "employees": 120, "industry": "Software", "country": "US",
                 "tech_stack": ["Salesforce", "HubSpot"]},
    "globex.io": {"employees": 3000, "industry": "Retail", "country": "DE", "tech_stack": []},
    "initech.co.uk": {"company_size": "huge", "employees": 12, "industry": "Software", "country": "GB",
                      "tech_stack": "Snowflake;Segment"},
}


@pytest.fixture
def fake():
    with FakeEnrichment(api_key=KEY, companies=COMPANIES) as running:
        yield running


def live(fake: FakeEnrichment, tmp_path, **overrides) -> HttpFirmographics:
    settings = dict(base_url=fake.base_url, api_key=KEY, backoff_seconds=0.001, cache_dir=str(tmp_path / "cache"))
    return HttpFirmographics(**{**settings, **overrides})


@pytest.mark.parametrize(("given", "expected"), [
    ("acme.com", "acme.com"), ("  ACME.com ", "acme.com"), ("https://www.Acme.com/about?x=1", "acme.com"),
    ("www.acme.com:443", "acme.com"), ("jo@Acme.com", "acme.com"), ("sub.acme.co.uk", "sub.acme.co.uk"),
    ("localhost", None), ("", None), (None, None), (float("nan"), None), ("acme..com", None), ("n/a", None),
])
def test_domains_are_normalized_or_rejected(given, expected):
    assert normalize_domain(given) == expected


@pytest.mark.parametrize(("employees", "band"), [
    (1, "1-10"), (10, "1-10"), (11, "11-50"), (200, "51-200"), (201, "201-1000"), (5000, "1001-5000"),
    (5001, "5000+"), (0, None), (None, None),
])
def test_size_band_edges(employees, band):
    assert size_band(employees) == band


def test_lookup_returns_one_row_per_requested_domain_with_facts_or_nulls(fake, tmp_path):
    frame = live(fake, tmp_path).lookup(["acme.com", "globex.io", "initech.co.uk", "unknown.org", "gmail.com",
                                         "not a domain", "acme.com"])
    assert list(frame.columns) == FIRMOGRAPHIC_COLUMNS
    assert frame["domain"].tolist() == ["acme.com", "globex.io", "initech.co.uk", "unknown.org", "gmail.com",
                                        "not a domain"]
    rows = frame.set_index("domain")
    assert rows.loc["acme.com"].tolist() == ["51-200", 120, "Software", "US", "Salesforce;HubSpot"]
    # no band given -> derived from employees; an unknown band is replaced the same way
    assert rows.loc["globex.io", "company_size"] == "1001-5000" and rows.loc["globex.io", "tech_stack"] == ""
    assert rows.loc["initech.co.uk", "company_size"] == "11-50"
    assert rows.loc["initech.co.uk", "tech_stack"] == "Snowflake;Segment"
    for unknown in ("unknown.org", "gmail.com", "not a domain"):
        assert rows.loc[unknown].isna().all(), unknown
    # free mail and non-domains are never sent; one batch for the rest
    assert fake.domains_requested() == ["acme.com", "globex.io", "initech.co.uk", "unknown.org"]
    assert [r["auth_scheme"] for r in fake.requests] == ["Bearer"]


def test_a_domain_is_looked_up_once_per_process_and_once_per_cache_file(fake, tmp_path):
    source = live(fake, tmp_path)
    first = source.lookup(["acme.com", "unknown.org"])
    second = source.lookup(["Acme.com", "unknown.org", "www.acme.com"])
    assert len(fake.requests) == 1  # the second call is all cache, unknown domains included
    assert second["employees"].isna().tolist() == [False, True, False] and second["employees"].max() == 120
    assert second["industry"].tolist()[0] == first["industry"].tolist()[0] == "Software"

    fresh = live(fake, tmp_path)  # a new process, same GTM_HOME cache
    fresh.lookup(["acme.com", "unknown.org", "globex.io"])
    assert fake.domains_requested() == ["acme.com", "unknown.org", "globex.io"]


def test_disk_cache_entries_expire(tmp_path):
    now = [1_000_000.0]
    cache = DiskCache(tmp_path / "c.json", ttl_seconds=60, clock=lambda: now[0])
    cache.save({"acme.com": {"industry": "Software"}, "unknown.org": None})
    assert cache.load() == {"acme.com": {"industry": "Software"}, "unknown.org": None}
    now[0] += 61
    assert cache.load() == {}
    (tmp_path / "c.json").write_text("{not json")
    assert cache.load() == {}  # a corrupt cache is ignored, not fatal


def test_batches_hold_at_most_batch_size_domains(fake, tmp_path):
    domains = [f"company{i}.com" for i in range(250)]
    frame = live(fake, tmp_path, batch_size=100, disk_cache=False).lookup(domains)
    assert len(frame) == 250 and frame["industry"].isna().all()
    assert [len(r["domains"]) for r in fake.requests] == [100, 100, 50]


def test_rate_limits_and_server_errors_are_retried_with_backoff(fake, tmp_path):
    waits: list[float] = []
    source = live(fake, tmp_path, backoff_seconds=0.5)
    source.client()._sleep = waits.append
    fake.fail_next(429, count=1, retry_after=2)
    fake.fail_next(503, count=1)
    frame = source.lookup(["acme.com"])
    assert frame["industry"].tolist() == ["Software"]
    assert [r["status"] for r in fake.requests] == [429, 503, 200]
    assert waits == [2.0, 1.0]  # Retry-After beats the first backoff; then backoff doubles


def test_retries_are_bounded_then_a_clear_error(fake, tmp_path):
    fake.fail_next(502, count=10)
    with pytest.raises(EnrichmentApiError, match=r"still failing after 3 attempts \(last: HTTP 502\)"):
        live(fake, tmp_path, max_attempts=3).lookup(["acme.com"])
    assert len(fake.requests) == 3


def test_a_wrong_key_names_the_variable_not_the_value_and_is_not_retried(fake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "enrich-WRONG-key-0000"
    with pytest.raises(EnrichmentAuthError) as error:
        live(fake, tmp_path, api_key=wrong).lookup(["acme.com"])
    assert "GTM_ENRICHMENT_API_KEY" in str(error.value) and "401" in str(error.value)
    assert len(fake.requests) == 1
    for secret in (wrong, KEY):
        assert secret not in str(error.value) and secret not in caplog.text
        assert secret not in repr(live(fake, tmp_path, api_key=secret).client())


def test_key_never_reaches_logs_errors_or_the_cache_file(fake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    source = live(fake, tmp_path)
    fake.fail_next(500, count=1)
    source.lookup(["acme.com", "unknown.org", "gmail.com"])
    fake.fail_next(503, count=5)
    with pytest.raises(EnrichmentApiError) as error:
        live(fake, tmp_path, max_attempts=2).lookup(["globex.io"])
    assert "retrying" in caplog.text and "looked up 2 domains" in caplog.text
    cache_files = list((tmp_path / "cache").glob("*.json"))
    assert len(cache_files) == 1 and set(json.loads(cache_files[0].read_text())) == {"acme.com", "unknown.org"}
    for text in (caplog.text, str(error.value), cache_files[0].read_text()):
        assert KEY not in text


def test_missing_configuration_is_reported_at_lookup_time_naming_the_variable(fake, tmp_path):
    unconfigured = HttpFirmographics(base_url="", api_key="", cache_dir=str(tmp_path))  # defining is fine
    # nothing to look up needs no provider
    assert unconfigured.lookup(["gmail.com", "n/a"])["industry"].isna().all()
    with pytest.raises(EnrichmentConfigError, match="GTM_ENRICHMENT_BASE_URL is empty"):
        unconfigured.lookup(["acme.com"])
    with pytest.raises(EnrichmentAuthError, match="GTM_ENRICHMENT_API_KEY is empty"):
        HttpFirmographics(base_url=fake.base_url, api_key=" ").lookup(["acme.com"])
    with pytest.raises(EnrichmentConfigError, match="must start with http"):
        HttpFirmographics(base_url="enrich.example.com", api_key=KEY).lookup(["acme.com"])
    assert fake.requests == []
