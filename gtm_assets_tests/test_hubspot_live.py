"""Specification of the live HubSpot connector, driven through hubspot-api-client against a local fake."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from gtm_assets.contracts import CONTACTS, DEALS, ENGAGEMENTS, conform
from gtm_assets.resources.hubspot.live import (
    HubSpotApiError,
    HubSpotAuthError,
    HubSpotConfigError,
    HubSpotCrm,
    HubSpotWindowError,
    LiveHubSpot,
    check_properties,
    normalize_timestamps,
    retry_wait_seconds,
    search_windows,
    split_flagged,
    to_epoch_ms,
    website_domain,
)
from gtm_assets_tests.fakes.hubspot_server import FakeHubSpot, iso

START = datetime(2024, 3, 1, tzinfo=timezone.utc)
TOKEN = "pat-na1-SECRET-0f3c9a"


@pytest.fixture
def fake():
    with FakeHubSpot(token=TOKEN) as server:
        yield server


def live(fake: FakeHubSpot, **settings) -> LiveHubSpot:
    fast = {"backoff_seconds": 0.01, "max_retry_wait_seconds": 0.05}
    return LiveHubSpot(access_token=fake.token, base_url=fake.base_url, **{**fast, **settings})


# ---- plain functions ---------------------------------------------------------------------------

def test_retry_wait_doubles_honours_retry_after_and_is_capped():
    assert retry_wait_seconds(1, 0.5, None, 60) == 0.5
    assert retry_wait_seconds(3, 0.5, None, 60) == 2.0
    assert retry_wait_seconds(1, 0.5, 7.0, 60) == 7.0  # Retry-After beats a shorter backoff
    assert retry_wait_seconds(4, 1.0, 2.0, 60) == 8.0  # ...but never shortens a longer one
    assert retry_wait_seconds(10, 1.0, 120.0, 60) == 60


def test_search_windows_split_in_halves_until_each_fits_the_cap():
    # 1,000 records one per second over [0, 1000 s); a cap of 300 needs windows of 250.
    stamps = [i * 1000 for i in range(1000)]
    calls = []

    def fetch_page(low, high, after):
        calls.append((low, high, after))
        inside = [s for s in stamps if low <= s < high]
        offset = int(after or 0)
        body = {"total": len(inside), "results": [{"id": str(s)} for s in inside[offset:offset + 100]]}
        if offset + 100 < len(inside):
            body["paging"] = {"next": {"after": str(offset + 100)}}
        return body

    records, windows = search_windows(fetch_page, 0, 1_000_000, cap=300, min_window_ms=1000, label="t")
    assert [int(r["id"]) for r in records] == stamps  # each once, in time order
    assert windows == 4
    fetched = sorted({(low, high) for low, high, after in calls if after is not None})
    assert fetched == [(0, 250_000), (250_000, 500_000), (500_000, 750_000), (750_000, 1_000_000)]
    # 3 probes that split (whole, each half) + 4 windows x 3 pages
    assert len(calls) == 3 + 4 * 3


def test_search_window_that_cannot_shrink_enough_is_a_clear_error():
    def fetch_page(low, high, after):
        return {"total": 50_000, "results": []}

    with pytest.raises(HubSpotWindowError, match="min_window_seconds"):
        search_windows(fetch_page, 0, 60_000, cap=10_000, min_window_ms=1000, label="contacts")


def test_website_becomes_a_bare_lowercase_domain():
    websites = pd.Series(["https://www.Acme.com/about", "acme.io", "http://shop.beta.co.uk:8080/x?y=1", "", None])
    assert website_domain(websites).tolist() == ["acme.com", "acme.io", "shop.beta.co.uk", None, None]


def test_epoch_millisecond_timestamps_become_iso_and_garbage_stays_raw():
    values = pd.Series(["1709251200000", "2024-03-01T00:00:00.000Z", "yesterday", "", None])
    out = normalize_timestamps(values).tolist()
    assert out[0] == "2024-03-01T00:00:00.000000Z"
    assert out[1:] == ["2024-03-01T00:00:00.000Z", "yesterday", None, None]


def test_property_check_names_each_missing_property_and_its_setting():
    with pytest.raises(HubSpotConfigError) as error:
        check_properties("contacts", {"email_property": "email", "gclid_property": "gclid_x",
                                      "contact_created_property": ""}, {"email", "createdate"})
    message = str(error.value)
    assert "'gclid_x'" in message and "LiveHubSpot.gclid_property" in message
    assert "LiveHubSpot.contact_created_property is empty but required" in message
    check_properties("contacts", {"email_property": "email", "gclid_property": ""}, {"email"})  # unmapped is fine


# ---- over the wire -----------------------------------------------------------------------------

def test_full_sync_pages_through_every_non_archived_contact(fake):
    ids = fake.add_contacts(250, START, START + timedelta(days=10), archived_every=10)
    frame = live(fake).contacts(START, START + timedelta(days=1), full_sync=True)

    archived = set(ids[9::10])
    assert len(archived) == 25
    assert sorted(frame["contact_id"]) == sorted(set(ids) - archived)
    pages = fake.requests_to("GET", "/crm/v3/objects/contacts")
    assert [p["query"].get("after") for p in pages] == [None, ["100"], ["200"]]
    assert all(p["query"]["limit"] == ["100"] and p["query"]["archived"] == ["False"] for p in pages)
    assert "hs_google_click_id" in pages[0]["query"]["properties"]
    good, quarantined = conform(frame.drop(columns="quarantine_reason"), CONTACTS)
    assert len(good) == 225 and quarantined.empty


def test_incremental_sync_asks_only_for_records_changed_in_the_window(fake):
    ids = fake.add_contacts(300, START, START + timedelta(days=10))  # one every 48 minutes
    start, end = START + timedelta(days=3), START + timedelta(days=5)
    frame = live(fake).contacts(start, end)

    searches = fake.requests_to("POST", "/crm/v3/objects/contacts/search")
    assert len(searches) == 1 and not fake.requests_to("GET", "/crm/v3/objects/contacts")
    body = searches[0]["body"]
    assert body["filterGroups"] == [{"filters": [
        {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(to_epoch_ms(start))},
        {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(to_epoch_ms(end))},
    ]}]
    assert body["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert body["limit"] == 200
    # contacts i = 90..149 are modified at START + 48 min * i (+ < 1 s), i.e. inside [day 3, day 5)
    assert sorted(frame["contact_id"]) == sorted(ids[90:150])
    modified = pd.to_datetime(frame["last_modified_at"], utc=True)
    assert modified.min() >= start and modified.max() < end


def test_windows_over_the_search_cap_are_split_and_every_record_arrives_once():
    with FakeHubSpot(token=TOKEN, search_cap=500) as fake:
        ids = fake.add_contacts(1200, START, START + timedelta(days=30))
        frame = live(fake, search_window_cap=500).contacts(START, START + timedelta(days=30))

        assert sorted(frame["contact_id"]) == sorted(ids) and frame["contact_id"].is_unique
        searches = fake.requests_to("POST", "/search")
        assert all(s["status"] == 200 and int(s["body"].get("after", 0)) < 500 for s in searches)
        windows = {(f["filters"][0]["value"], f["filters"][1]["value"])
                   for s in searches for f in s["body"]["filterGroups"]}
        # 30 days > cap -> two 15-day halves (600 each) > cap -> four 7.5-day windows of 300
        assert len(windows) == 1 + 2 + 4
        assert len(searches) == 3 + 4 * 2


def test_window_still_over_cap_at_minimum_size_stops_with_a_clear_error():
    with FakeHubSpot(token=TOKEN, search_cap=50) as fake:
        for i in range(60):  # a bulk import: 60 contacts modified in the same millisecond
            fake.add("contacts", {"email": f"p{i}@x.com", "createdate": iso(START), "lastmodifieddate": iso(START)})
        with pytest.raises(HubSpotWindowError, match="exceed the search cap of 50"):
            live(fake, search_window_cap=50).contacts(START, START + timedelta(hours=1))


def test_rate_limit_retry_after_is_honoured_on_get_and_on_post_search(fake):
    fake.add_contacts(30, START, START + timedelta(days=1))
    waits: list[float] = []
    crm = HubSpotCrm(fake.token, fake.base_url, backoff_seconds=0.01, sleep=waits.append)

    fake.fail_next(429, retry_after=1, count=2, method="GET")
    records, pages = crm.list_all("contacts", ["email"])
    assert len(records) == 30 and pages == 1 and waits == [1.0, 1.0]
    assert [r["status"] for r in fake.requests_to("GET")] == [429, 429, 200]

    fake.fail_next(429, retry_after=3, count=1, method="POST")
    body = crm.search_page("contacts", "lastmodifieddate", ["email"], 200,
                           to_epoch_ms(START), to_epoch_ms(START + timedelta(days=1)), None)
    assert body["total"] == 30 and waits == [1.0, 1.0, 3.0]
    assert [r["status"] for r in fake.requests_to("POST", "/search")] == [429, 200]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_for_list_search_and_associations(fake, status):
    ids = fake.add_contacts(20, START, START + timedelta(days=1))
    fake.add_deals_and_meetings(ids, START, START + timedelta(days=1), deal_every=4)
    source = live(fake)
    for method, path in [("GET", "/objects/contacts"), ("POST", "/objects/deals/search"),
                         ("POST", "/associations/deals/contacts")]:
        fake.fail_next(status, count=2, method=method, path_contains=path)
    contacts = source.contacts(START, START, full_sync=True)
    deals = source.deals(START, START + timedelta(days=1))

    assert len(contacts) == 20
    assert len(deals) == 5 and deals["contact_id"].tolist() == [ids[i] for i in (0, 4, 8, 12, 16)]
    for method, path in [("GET", "/objects/contacts"), ("POST", "/objects/deals/search"),
                         ("POST", "/associations/deals/contacts")]:
        assert [r["status"] for r in fake.requests_to(method, path)] == [status, status, 200]


def test_retries_are_bounded_then_a_clear_error_without_the_token(fake):
    fake.fail_next(503, count=100, method="POST")
    with pytest.raises(HubSpotApiError) as error:
        live(fake, max_attempts=3).contacts(START, START + timedelta(days=1))
    assert "still failing after 3 attempts (last: HTTP 503)" in str(error.value)
    assert TOKEN not in str(error.value) and error.value.__cause__ is None
    assert len(fake.requests_to("POST", "/search")) == 3


def test_a_wrong_token_names_the_variable_never_the_value(fake):
    wrong = "pat-na1-WRONG-77aa"
    with pytest.raises(HubSpotAuthError) as error:
        LiveHubSpot(access_token=wrong, base_url=fake.base_url).contacts(START, START, full_sync=True)
    assert "HUBSPOT_ACCESS_TOKEN" in str(error.value) and "401" in str(error.value)
    assert wrong not in str(error.value) and TOKEN not in str(error.value)
    assert len(fake.requests) == 1  # a 401 is not retried


def test_a_property_missing_from_the_portal_is_a_configuration_error(fake):
    fake.properties["contacts"].discard("hs_google_click_id")
    with pytest.raises(HubSpotConfigError, match=r"'hs_google_click_id' not found; set LiveHubSpot.gclid_property"):
        live(fake).contacts(START, START, full_sync=True)
    assert not fake.requests_to("GET", "/objects/")  # checked before reading any record

    fake.add_contacts(3, START, START + timedelta(hours=1))
    unmapped = live(fake, gclid_property="").contacts(START, START, full_sync=True)
    assert len(unmapped) == 3 and unmapped["gclid"].isna().all()


def test_properties_are_checked_once_and_api_objects_are_reused(fake):
    fake.add_contacts(5, START, START + timedelta(hours=1))
    source = live(fake)
    source.contacts(START, START, full_sync=True)
    source.contacts(START, START + timedelta(hours=1))
    assert len(fake.requests_to("GET", "/crm/v3/properties/contacts")) == 1
    assert source.crm() is source.crm() and source.crm()._objects is source.crm()._objects


def test_malformed_contacts_are_quarantined_with_a_reason_and_none_is_lost(fake):
    fake.add_contacts(10, START, START + timedelta(hours=10))
    no_email = fake.add("contacts", {"email": "", "createdate": iso(START), "lastmodifieddate": iso(START)})
    bad_date = fake.add("contacts", {"email": "a@b.com", "createdate": "31/02/2024 noon",
                                     "lastmodifieddate": iso(START)})
    no_created = fake.add("contacts", {"email": "c@d.com", "lastmodifieddate": iso(START)})
    epoch = fake.add("contacts", {"email": "e@f.com", "createdate": "1709251200000", "lastmodifieddate": iso(START)})

    frame = live(fake).contacts(START, START, full_sync=True)
    assert len(frame) == 14  # nothing dropped by the connector
    kept, flagged = split_flagged(frame)
    assert flagged["contact_id"].tolist() == [no_email] and flagged["reason"].tolist() == ["email: missing"]
    good, quarantined = conform(kept, CONTACTS)
    reasons = dict(zip(quarantined["contact_id"], quarantined["reason"]))
    assert set(reasons) == {bad_date, no_created}
    assert reasons[bad_date].startswith("created_at: unparseable timestamp value")
    assert reasons[no_created] == "created_at: missing"
    assert len(good) + len(quarantined) + len(flagged) == 14
    assert good.set_index("contact_id").loc[epoch, "created_at"] == pd.Timestamp("2024-03-01", tz="UTC")


def test_deals_carry_their_first_contact_whether_listed_or_searched(fake):
    ids = fake.add_contacts(30, START, START + timedelta(days=3))
    fake.add_deals_and_meetings(ids, START, START + timedelta(days=3), deal_every=3)
    archived_deal = fake.add("deals", {"createdate": iso(START), "hs_lastmodifieddate": iso(START),
                                       "amount": "5"}, archived=True)
    source = live(fake)
    full = source.deals(START, START, full_sync=True)
    incremental = source.deals(START, START + timedelta(days=3))

    assert archived_deal not in set(full["deal_id"]) | set(incremental["deal_id"])
    pd.testing.assert_frame_equal(full.sort_values("deal_id").reset_index(drop=True),
                                  incremental.sort_values("deal_id").reset_index(drop=True))
    assert full["contact_id"].tolist() == ids[::3]
    good, quarantined = conform(full.drop(columns="quarantine_reason"), DEALS)
    assert quarantined.empty
    # every third deal is closed won; the others are open and have no closed_at despite a closedate
    assert good["is_won"].tolist() == [i % 3 == 0 for i in range(10)]
    assert good["closed_at"].notna().tolist() == good["is_won"].tolist()
    assert good["amount"].tolist() == [1000.0 + 10 * i for i in range(10)]


def test_meetings_in_the_window_become_sales_engagements(fake):
    ids = fake.add_contacts(20, START, START + timedelta(days=2))
    fake.add_deals_and_meetings(ids, START, START + timedelta(days=2), deal_every=2, meetings_per_deal=2)
    orphan = fake.add("meetings", {"hs_timestamp": iso(START + timedelta(hours=1)),
                                   "hs_lastmodifieddate": iso(START)})
    frame = live(fake).engagements(START, START + timedelta(days=1))

    search = fake.requests_to("POST", "/objects/meetings/search")[0]["body"]
    assert search["filterGroups"][0]["filters"][0]["propertyName"] == "hs_timestamp"
    good, quarantined = conform(frame.drop(columns="quarantine_reason"), ENGAGEMENTS)
    # deals 0..4 fall on day one (one every 4.8 h), two meetings each, 1-2 hours after the deal
    assert sorted(good["contact_id"]) == sorted([ids[i] for i in (0, 2, 4, 6, 8) for _ in range(2)])
    assert set(good["event_type"]) == {"meeting"} and set(good["channel"]) == {"sales"}
    assert (good["date"] == pd.Timestamp("2024-03-01")).all()
    assert quarantined["engagement_id"].tolist() == [orphan]
    assert quarantined["reason"].tolist() == ["contact_id: missing"]


def test_no_log_line_or_error_ever_shows_the_token(fake, caplog):
    ids = fake.add_contacts(120, START, START + timedelta(days=1))
    fake.add_deals_and_meetings(ids, START, START + timedelta(days=1))
    fake.fail_next(429, retry_after=1, count=1)
    fake.fail_next(500, count=1)
    caplog.set_level(logging.DEBUG)
    source = live(fake)
    source.contacts(START, START, full_sync=True)
    source.deals(START, START + timedelta(days=1))
    source.engagements(START, START + timedelta(days=1))
    fake.fail_next(502, count=10)
    with pytest.raises(HubSpotApiError) as error:
        source.contacts(START, START + timedelta(days=1))

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "retrying" in logged and "records" in logged  # the log did record the run
    assert TOKEN not in logged and TOKEN not in str(error.value) and TOKEN not in repr(source.crm())


def test_an_empty_window_gives_empty_frames_that_still_fit_their_contracts(fake):
    source = live(fake)
    day = (START, START + timedelta(days=1))
    for frame, contract in [(source.contacts(*day), CONTACTS), (source.deals(*day), DEALS),
                            (source.engagements(*day), ENGAGEMENTS)]:
        good, quarantined = conform(frame, contract)  # a missing contract column would raise here
        assert good.empty and quarantined.empty
    assert not fake.requests_to("POST", "/associations/")  # no ids, no association lookups
