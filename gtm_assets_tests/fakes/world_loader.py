"""Load a demo World into the three wire-level fakes (Google Ads, HubSpot, enrichment) so a live run reproduces it.

What each fake gets, and why a live run still differs from the demo source in a few documented ways:
- Google Ads: campaigns, ad groups (asset groups of Performance Max included, as the demo world
  has them), keywords, clicks, and stats at the demo's slot grain (keyword, or ad group without
  keyword). The demo world's campaign metrics are not the sums of its slots for impressions
  (per-slot rounding) and conversions (form fills vs. clicks x lead rate), so each date x
  campaign also gets a campaign-level stat holding the difference. The fake's campaign rows
  therefore equal the demo's campaign_performance exactly; the live ad_performance equals the
  demo's slot rows plus campaign-level remainder rows (ad_group_id NULL) where that difference
  is positive, and the connector logs the negative ones as clipped.
- HubSpot: contacts with HubSpot's property names (lifecycle stages as internal names, times as
  ISO strings with milliseconds, so live times are the demo's truncated to the millisecond),
  deals associated to their contact (open deals carry an expected closedate, which the
  connector must drop), and the demo's meeting engagements as meetings. Other engagement
  types (page views, downloads, ...) have no per-event CRM API and are not loaded.
- Enrichment: the demo's company register.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from gtm_assets.demo.world import World
from gtm_assets_tests.fakes.enrichment_server import FakeEnrichment
from gtm_assets_tests.fakes.google_ads_server import (
    FakeAccount,
    FakeAdGroup,
    FakeCampaign,
    FakeClick,
    FakeGoogleAds,
    FakeKeyword,
    FakeStat,
    start_fake_google_ads,
)
from gtm_assets_tests.fakes.hubspot_server import FakeHubSpot, Record

CUSTOMER_ID = "1234567890"
STAGE_DATE_PROPERTIES = {
    "lead_at": "hs_lifecyclestage_lead_date",
    "mql_at": "hs_lifecyclestage_marketingqualifiedlead_date",
    "sql_at": "hs_lifecyclestage_salesqualifiedlead_date",
    "opportunity_at": "hs_lifecyclestage_opportunity_date",
    "customer_at": "hs_lifecyclestage_customer_date",
}


def _iso(times: pd.Series) -> pd.Series:
    """UTC timestamps as HubSpot's ISO strings with milliseconds (None where missing)."""
    times = pd.to_datetime(times, utc=True)
    text = times.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    return text.astype("object").where(times.notna(), None)


def _micros(money: pd.Series) -> np.ndarray:
    return np.round(money.to_numpy(dtype="float64") * 1e6).astype(np.int64)


# ---- Google Ads -------------------------------------------------------------------------------

def google_ads_account(world: World, customer_id: str = CUSTOMER_ID) -> FakeAccount:
    campaigns = [
        FakeCampaign(int(c.campaign_id), c.campaign_name, c.advertising_channel_type,
                     int(round(c.daily_budget * 1e6)), c.status)
        for c in world.campaigns.itertuples()
    ]
    slots = world.ad_performance
    ad_groups = slots[["campaign_id", "ad_group_id"]].drop_duplicates()
    keywords = (slots.loc[slots["keyword"].notna(), ["ad_group_id", "keyword", "match_type"]]
                .drop_duplicates(["ad_group_id", "keyword"]).reset_index(drop=True))
    keywords["criterion_id"] = np.arange(len(keywords), dtype=np.int64) + 700_001
    criterion_of = {(k.ad_group_id, k.keyword): int(k.criterion_id) for k in keywords.itertuples()}

    slot_stats = slots.merge(keywords[["ad_group_id", "keyword", "criterion_id"]], on=["ad_group_id", "keyword"],
                             how="left")
    slot_stats["cost_micros"] = _micros(slot_stats["cost"])
    # The campaign's own metrics minus its slots': lands on a campaign-level stat (see module doc).
    metrics = ["impressions", "clicks", "cost_micros", "conversions"]
    perf = world.campaign_performance.assign(cost_micros=_micros(world.campaign_performance["cost"]))
    parts = slot_stats.groupby(["date", "campaign_id"], as_index=False)[metrics].sum()
    residual = perf[["date", "campaign_id", *metrics]].merge(parts, on=["date", "campaign_id"], how="left",
                                                                suffixes=("", "_slots"))
    for metric in metrics:
        residual[metric] = residual[metric] - residual[f"{metric}_slots"].fillna(0)
    residual = residual[(residual[metrics].abs() > 1e-9).any(axis=1)]

    def days(column: pd.Series) -> list[date]:
        return [d.date() for d in pd.to_datetime(column)]

    stats = [
        FakeStat(day, int(s.campaign_id), int(s.ad_group_id),
                 None if pd.isna(s.criterion_id) else int(s.criterion_id),
                 int(s.impressions), int(s.clicks), int(s.cost_micros), float(s.conversions))
        for day, s in zip(days(slot_stats["date"]), slot_stats.itertuples())
    ] + [
        FakeStat(day, int(r.campaign_id), None, None, int(r.impressions), int(r.clicks), int(r.cost_micros),
                 float(r.conversions))
        for day, r in zip(days(residual["date"]), residual.itertuples())
    ]
    clicks = world.clicks
    click_criteria = [criterion_of.get((g, k)) for g, k in zip(clicks["ad_group_id"], clicks["keyword"])]
    fake_clicks = [
        FakeClick(gclid, day, int(campaign), None if pd.isna(group) else int(group), criterion)
        for gclid, day, campaign, group, criterion in zip(
            clicks["gclid"], days(clicks["date"]), clicks["campaign_id"], clicks["ad_group_id"], click_criteria)
    ]
    share = world.campaign_performance.dropna(subset=["search_budget_lost_impression_share"])
    budget_lost_share = {
        (day, int(campaign)): float(value)
        for day, campaign, value in zip(days(share["date"]), share["campaign_id"],
                                        share["search_budget_lost_impression_share"])
    }
    return FakeAccount(
        customer_id=customer_id,
        campaigns=campaigns,
        ad_groups=[FakeAdGroup(int(g.ad_group_id), int(g.campaign_id)) for g in ad_groups.itertuples()],
        keywords=[FakeKeyword(int(k.criterion_id), int(k.ad_group_id), k.keyword, k.match_type)
                  for k in keywords.itertuples()],
        stats=stats,
        clicks=fake_clicks,
        budget_lost_share=budget_lost_share,
    )


# ---- HubSpot ----------------------------------------------------------------------------------

def hubspot_contact_properties(contacts: pd.DataFrame) -> pd.DataFrame:
    """The demo contacts as HubSpot contact properties (one row per contact, `id` first)."""
    props = pd.DataFrame({
        "id": contacts["contact_id"].astype(str),
        "email": contacts["email"], "firstname": contacts["firstname"], "lastname": contacts["lastname"],
        "company": contacts["company"],
        "website": ("https://www." + contacts["domain"].astype("object")).where(contacts["domain"].notna(), None),
        "lifecyclestage": contacts["lifecycle_stage"],
        "createdate": _iso(contacts["created_at"]), "lastmodifieddate": _iso(contacts["last_modified_at"]),
        "hs_google_click_id": contacts["gclid"],
        "hs_analytics_source": contacts["analytics_source"],
        "hs_analytics_source_data_1": contacts["utm_campaign"],
        "utm_source": contacts["utm_source"], "utm_medium": contacts["utm_medium"],
        "utm_campaign": contacts["utm_campaign"],
    })
    for column, prop in STAGE_DATE_PROPERTIES.items():
        props[prop] = _iso(contacts[column])
    return props.astype("object").where(props.notna(), None)


def hubspot_deal_properties(deals: pd.DataFrame) -> pd.DataFrame:
    closed = deals["stage"].isin(["closedwon", "closedlost"])
    # Open deals carry the *expected* close date, as in HubSpot: the connector must not report it.
    expected_close = pd.to_datetime(deals["created_at"], utc=True) + pd.Timedelta(days=30)
    props = pd.DataFrame({
        "id": deals["deal_id"].astype(str),
        "contact_id": deals["contact_id"].astype(str),
        "dealname": "Deal " + deals["deal_id"].astype(str),
        "amount": deals["amount"].map(lambda a: None if pd.isna(a) else f"{a:.2f}"),
        "dealstage": deals["stage"], "pipeline": "default",
        "createdate": _iso(deals["created_at"]),
        "closedate": _iso(pd.to_datetime(deals["closed_at"], utc=True).where(closed, expected_close)),
        "hs_is_closed": np.where(closed, "true", "false"),
        "hs_is_closed_won": np.where(deals["is_won"].astype(bool), "true", "false"),
        "hs_lastmodifieddate": _iso(deals["last_modified_at"]),
    })
    return props.astype("object").where(props.notna(), None)


def hubspot_meeting_properties(engagements: pd.DataFrame) -> pd.DataFrame:
    meetings = engagements[engagements["event_type"] == "meeting"]
    when = _iso(meetings["occurred_at"])
    return pd.DataFrame({
        "id": meetings["engagement_id"].astype(str), "contact_id": meetings["contact_id"].astype(str),
        "hs_timestamp": when, "hs_meeting_title": "Sales meeting", "hs_meeting_outcome": "COMPLETED",
        "hs_meeting_start_time": when, "hs_createdate": when, "hs_lastmodifieddate": when,
    })


def load_hubspot(fake: FakeHubSpot, world: World) -> dict[str, int]:
    """Put the world's contacts, deals and meetings into the fake portal; returns counts per object type."""
    loaded = {}
    for object_type, frame in [("contacts", hubspot_contact_properties(world.contacts)),
                               ("deals", hubspot_deal_properties(world.deals)),
                               ("meetings", hubspot_meeting_properties(world.engagements))]:
        linked = frame.pop("contact_id") if "contact_id" in frame.columns else None
        ids = frame.pop("id")
        records = frame.to_dict("records")
        with fake._lock:  # bulk load: one lock, no per-record id allocation
            store = fake.records[object_type]
            for i, (record_id, props) in enumerate(zip(ids, records)):
                props = {k: (None if v is None else str(v)) for k, v in props.items()}
                props["hs_object_id"] = record_id
                associations = {"contacts": [linked.iloc[i]]} if linked is not None else {}
                store[record_id] = Record(record_id, props, False, associations)
        loaded[object_type] = len(records)
    return loaded


def touch_contacts(fake: FakeHubSpot, contact_ids: list[str], modified_at: pd.Timestamp,
                   **changes: str) -> None:
    """Modify contacts in the portal as a HubSpot user would: new values and a new lastmodifieddate."""
    stamp = _iso(pd.Series([modified_at])).iloc[0]
    with fake._lock:
        for contact_id in contact_ids:
            record = fake.records["contacts"][contact_id]
            record.properties.update({**changes, "lastmodifieddate": stamp})
            record._millis.clear()


# ---- enrichment -------------------------------------------------------------------------------

def enrichment_companies(world: World) -> dict[str, dict]:
    # The demo register repeats some domains (company names drawn at random collide); a provider
    # knows one company per domain: the first, as DemoFirmographics' callers keep the first match.
    register = world.companies.drop_duplicates("domain", keep="first")
    return {
        row.domain: {"company_size": row.company_size, "employees": int(row.employees), "industry": row.industry,
                     "country": row.country, "tech_stack": [t for t in row.tech_stack.split(";") if t]}
        for row in register.itertuples()
    }


# ---- all three --------------------------------------------------------------------------------

@dataclass
class WorldFakes:
    """The three running fakes loaded from one world, and the live settings that reach them."""

    google_ads: FakeGoogleAds
    hubspot: FakeHubSpot
    enrichment: FakeEnrichment

    def env(self) -> dict[str, str]:
        """The environment of a live run against these fakes (DESIGN.md variable names)."""
        return {
            "GTM_SOURCE": "live",
            "GOOGLE_ADS_DEVELOPER_TOKEN": self.google_ads.developer_token,
            "GOOGLE_ADS_CLIENT_ID": self.google_ads.client_id,
            "GOOGLE_ADS_CLIENT_SECRET": self.google_ads.client_secret,
            "GOOGLE_ADS_REFRESH_TOKEN": self.google_ads.refresh_token,
            "GOOGLE_ADS_CUSTOMER_ID": f"{CUSTOMER_ID[:3]}-{CUSTOMER_ID[3:6]}-{CUSTOMER_ID[6:]}",
            "GOOGLE_ADS_ENDPOINT": self.google_ads.server.endpoint,
            "GOOGLE_ADS_TOKEN_URI": self.google_ads.tokens.url,
            "HUBSPOT_ACCESS_TOKEN": self.hubspot.token,
            "HUBSPOT_API_BASE_URL": self.hubspot.base_url,
            "GTM_ENRICHMENT_BASE_URL": self.enrichment.base_url,
            "GTM_ENRICHMENT_API_KEY": self.enrichment.api_key,
        }

    def secrets(self) -> dict[str, str]:
        """Every credential of the run, and every access token the OAuth fake issued so far."""
        found = {
            "developer token": self.google_ads.developer_token,
            "client secret": self.google_ads.client_secret,
            "refresh token": self.google_ads.refresh_token,
            "HubSpot token": self.hubspot.token,
            "enrichment key": self.enrichment.api_key,
        }
        found.update({f"access token {i}": t for i, t in enumerate(sorted(self.google_ads.tokens.issued))})
        return found

    def stop(self) -> None:
        self.google_ads.stop()
        self.hubspot.stop()
        self.enrichment.stop()


def start_world_fakes(world: World, batch_size: int = 10_000) -> WorldFakes:
    """Start the three fakes, each loaded from `world`, with fresh random credentials.

    `batch_size` is rows per SearchStream response (Google sends up to 10,000).
    """
    google_ads = start_fake_google_ads(google_ads_account(world), batch_size=batch_size)
    hubspot = FakeHubSpot(token=f"pat-na1-{secrets.token_hex(10)}")
    load_hubspot(hubspot, world)
    hubspot.start()
    enrichment = FakeEnrichment(api_key=f"enr-{secrets.token_hex(12)}", companies=enrichment_companies(world))
    enrichment.start()
    return WorldFakes(google_ads, hubspot, enrichment)
