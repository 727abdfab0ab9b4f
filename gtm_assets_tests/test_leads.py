"""Leads: dedup and merge rule, gclid then UTM joins, channel, e-mail domain types, quarantine, enrichment."""

from __future__ import annotations

import pandas as pd
import pytest

from gtm_assets import leads as L

T = lambda s: pd.Timestamp(s, tz="UTC")  # noqa: E731


def _contacts(rows: list[dict]) -> pd.DataFrame:
    base = {"company": None, "domain": None, "lifecycle_stage": "lead", "gclid": None, "utm_source": None,
            "utm_medium": None, "utm_campaign": None, "analytics_source": None,
            "mql_at": pd.NaT, "sql_at": pd.NaT, "opportunity_at": pd.NaT, "customer_at": pd.NaT}
    frame = pd.DataFrame([{**base, **r} for r in rows])
    for col in ("created_at", "mql_at", "sql_at", "opportunity_at", "customer_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="mixed")
    frame["lead_at"] = frame["created_at"]
    return frame


CAMPAIGNS = pd.DataFrame({"campaign_id": ["10001", "10002"], "campaign_name": ["Search - Brand", "Display - Retargeting"],
                          "channel": ["Search", "Display"]})
CLICKS = pd.DataFrame({"gclid": ["g1", "g2"], "clicked_at": [T("2026-01-01 09:00"), T("2026-01-02 10:00")],
                       "campaign_id": ["10001", "10002"], "ad_group_id": ["1000101", "1000201"],
                       "keyword": ["acme crm", None]})


def test_duplicates_merge_into_the_earliest_contact_with_the_earliest_stage_dates():
    contacts = _contacts([
        {"contact_id": "2", "email": "  Ann@Acme.com ", "created_at": "2026-01-05", "sql_at": "2026-01-06",
         "lifecycle_stage": "salesqualifiedlead"},
        {"contact_id": "1", "email": "ann@acme.com", "created_at": "2026-01-01", "mql_at": "2026-01-03",
         "sql_at": "2026-01-09", "gclid": "g1", "lifecycle_stage": "marketingqualifiedlead"},
        {"contact_id": "3", "email": "bob@beta.io", "created_at": "2026-01-02"},
    ])
    leads, quarantined = L.normalize_contacts(contacts)
    assert quarantined.empty and len(leads) == 2
    ann = leads.set_index("email").loc["ann@acme.com"]
    assert ann["contact_id"] == "1" and ann["merged_contact_ids"] == "1;2" and ann["merged_contacts"] == 2
    assert ann["lead_at"] == T("2026-01-01") and ann["mql_at"] == T("2026-01-03")
    assert ann["sql_at"] == T("2026-01-06")  # the duplicate reached SQL first
    assert ann["lifecycle_stage"] == "salesqualifiedlead" and ann["gclid"] == "g1"


def test_invalid_emails_are_quarantined_with_a_reason_never_dropped():
    contacts = _contacts([
        {"contact_id": "1", "email": "n/a", "created_at": "2026-01-01"},
        {"contact_id": "2", "email": None, "created_at": "2026-01-01"},
        {"contact_id": "3", "email": "john at example.com", "created_at": "2026-01-01"},
        {"contact_id": "4", "email": "ok@example.org", "created_at": "2026-01-01"},
    ])
    leads, quarantined = L.normalize_contacts(contacts)
    assert leads["contact_id"].tolist() == ["4"]
    reasons = dict(zip(quarantined["contact_id"], quarantined["reason"]))
    assert reasons == {"1": "email: not a valid address 'n/a'", "2": "email: missing",
                       "3": "email: not a valid address 'john at example.com'"}


def test_email_domain_types_come_from_the_maintained_lists():
    kinds = L.email_domain_type(pd.Series(["gmail.com", "mailinator.com", "acme.com", "YOPMAIL.COM", None]))
    assert kinds.tolist()[:4] == ["free", "disposable", "business", "disposable"] and pd.isna(kinds.iloc[4])


def test_gclid_join_first_then_utm_then_channel_fallbacks():
    contacts = _contacts([
        {"contact_id": "1", "email": "a@x.com", "created_at": "2026-01-01 09:05", "gclid": "g1",
         "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "display_retargeting"},
        {"contact_id": "2", "email": "b@x.com", "created_at": "2026-01-01", "utm_source": "google",
         "utm_medium": "cpc", "utm_campaign": "search_brand"},
        {"contact_id": "3", "email": "c@x.com", "created_at": "2026-01-01", "gclid": "unknown-gclid",
         "utm_source": "google", "utm_medium": "cpc", "utm_campaign": "Search - Brand"},
        {"contact_id": "4", "email": "d@x.com", "created_at": "2026-01-01", "utm_source": "linkedin",
         "utm_medium": "paid_social", "utm_campaign": "search_brand"},
        {"contact_id": "5", "email": "e@x.com", "created_at": "2026-01-01", "analytics_source": "ORGANIC_SEARCH"},
        {"contact_id": "6", "email": "f@x.com", "created_at": "2026-01-01"},
    ])
    leads, _ = L.build_leads(contacts, CLICKS, CAMPAIGNS)
    by_id = leads.set_index("contact_id")
    # gclid wins over a contradicting UTM tag, and carries ad group, keyword and click time
    assert by_id.loc["1", ["match_source", "campaign_id", "ad_group_id", "keyword"]].tolist() == \
        ["gclid", "10001", "1000101", "acme crm"]
    assert by_id.loc["1", "clicked_at"] == T("2026-01-01 09:00")
    assert by_id.loc["2", ["match_source", "campaign_id"]].tolist() == ["utm", "10001"]
    assert pd.isna(by_id.loc["2", "ad_group_id"])
    assert by_id.loc["3", ["match_source", "campaign_id"]].tolist() == ["utm", "10001"]  # gclid not in clicks
    assert by_id.loc["4", "match_source"] == "none"  # a LinkedIn tag never matches a Google campaign
    assert by_id["channel"].to_dict() == {"1": "paid_search", "2": "paid_search", "3": "paid_search",
                                          "4": "paid_social", "5": "organic_search", "6": "direct"}
    # match rate: leads whose gclid was found / leads with a gclid
    assert L.gclid_match_rate(leads) == pytest.approx(0.5)


def test_enrichment_uses_the_company_domain_and_asks_once_per_domain():
    leads = pd.DataFrame({
        "contact_id": ["1", "2", "3"], "email": ["a@acme.com", "b@gmail.com", "c@acme.com"],
        "email_domain": ["acme.com", "gmail.com", "acme.com"], "email_domain_type": ["business", "free", "business"],
        "domain": [None, "beta.io", None], "lead_at": [T("2026-01-01")] * 3,
    })
    asked = []

    def lookup(domains):
        asked.append(list(domains))
        return pd.DataFrame({"domain": ["acme.com", "beta.io"], "company_size": ["51-200", "11-50"],
                             "employees": [120, 30], "industry": ["Software", "Retail"],
                             "country": ["US", "DE"], "tech_stack": ["Salesforce", ""]}).query("domain in @domains")

    enriched = L.build_enriched_leads(leads, lookup)
    assert asked == [["acme.com", "beta.io"]]
    assert enriched.set_index("contact_id")["company_size"].to_dict() == {"1": "51-200", "2": "11-50", "3": "51-200"}
    assert list(enriched.columns) == L.ENRICHED_LEAD_COLUMNS


def test_demo_world_leads_are_deduplicated_matched_and_enriched(world):
    from gtm_assets import contracts

    contacts, _ = contracts.conform(world.contacts, contracts.CONTACTS)
    clicks, _ = contracts.conform(world.clicks, contracts.AD_CLICKS)
    leads, quarantined = L.build_leads(contacts, clicks, world.campaigns)
    assert leads["email"].is_unique
    assert len(leads) + len(quarantined) + int((leads["merged_contacts"] - 1).sum()) == len(contacts)
    assert len(quarantined) >= 5 and L.gclid_match_rate(leads) == 1.0
    assert (leads["match_source"] == "utm").sum() > 50  # paid leads that lost their gclid, found by UTM
    enriched = L.build_enriched_leads(
        leads, lambda d: world.companies[world.companies["domain"].isin(d)])
    assert enriched.loc[enriched["email_domain_type"] == "business", "company_size"].notna().all()
