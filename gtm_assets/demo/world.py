"""A seeded, deterministic synthetic B2B SaaS go-to-market world: ads, clicks, CRM and planted problems.

Everything is generated with numpy in whole-array operations so that scale x100 (about five
million clicks) still generates. Dates are relative to `end_date`: the world always covers the
`days` days that end on it, and nothing after it is visible (stage dates still in the future
are cut off, as a CRM would show them on that day).

The planted scenarios and each campaign's true quality are kept in `World.scenarios` and
`World.campaign_truth`, so tests and benchmarks can check what the product detects against
what was put there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
import pandas as pd

STAGES = ("lead", "mql", "sql", "opportunity", "customer")
HUBSPOT_STAGE_NAMES = {
    "lead": "lead", "mql": "marketingqualifiedlead", "sql": "salesqualifiedlead",
    "opportunity": "opportunity", "customer": "customer",
}
FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com")
DISPOSABLE_DOMAINS = ("mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com", "trashmail.com")
SIZE_BANDS = ("1-10", "11-50", "51-200", "201-1000", "1001-5000", "5000+")
SIZE_EMPLOYEES = (5, 30, 120, 500, 2500, 9000)
SIZE_FIT = np.array([-1.6, -0.6, 0.5, 1.0, 0.8, 0.2])  # ICP: mid-market
SIZE_PROB = np.array([0.22, 0.28, 0.22, 0.15, 0.08, 0.05])
SIZE_DEAL = np.array([3_000, 7_000, 15_000, 32_000, 60_000, 110_000])  # annual contract value
INDUSTRIES = ("Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Education", "Agency")
INDUSTRY_FIT = np.array([0.8, 0.5, 0.1, 0.0, -0.3, -0.8, -0.5])
COUNTRIES = ("US", "GB", "DE", "CA", "AU", "FR", "IN", "BR")
COUNTRY_PROB = np.array([0.48, 0.12, 0.09, 0.08, 0.06, 0.05, 0.08, 0.04])
TECH = ("Salesforce", "HubSpot", "Snowflake", "Segment", "Zendesk", "Shopify", "Marketo", "Intercom")
WEEKDAY_FACTOR = np.array([1.05, 1.10, 1.08, 1.02, 0.92, 0.45, 0.40])  # Mon..Sun
FIRST_NAMES = ("alex", "sam", "jordan", "taylor", "morgan", "casey", "riley", "jamie", "drew", "quinn",
               "avery", "parker", "rowan", "sage", "kai", "reese", "blake", "emery", "finley", "harper")
LAST_NAMES = ("smith", "jones", "garcia", "chen", "patel", "muller", "rossi", "kim", "nguyen", "silva",
              "brown", "wilson", "martin", "lee", "walker", "young", "king", "wright", "scott", "green")
COMPANY_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
                 "Tyrell", "Cyberdyne", "Wonka", "Gringotts", "Oscorp", "Pied", "Aperture", "Monarch",
                 "Nakatomi", "Massive", "Dunder", "Sterling", "Prestige", "Vortex", "Zenith", "Nimbus")
COMPANY_SUFFIX = ("Labs", "Systems", "Analytics", "Cloud", "Works", "Group", "Data", "Health", "Logistics",
                  "Capital", "Software", "Networks", "Robotics", "Media", "Foods")


@dataclass(frozen=True)
class CampaignSpec:
    campaign_id: str
    name: str
    channel: str  # Search, Display, YouTube, Performance Max
    daily_budget: float
    daily_clicks: float  # demand at x1 scale, before weekday factor
    cpc: float
    ctr: float
    lead_rate: float  # click -> contact
    quality: float  # shift of the lead's log-odds of qualifying
    ad_groups: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (name, ((keyword, match), ...))


CAMPAIGN_SPECS: tuple[CampaignSpec, ...] = (
    CampaignSpec("10001", "Search - Brand", "Search", 500, 70, 1.20, 0.12, 0.060, 1.0,
                 (("Brand Core", (("acme crm", "EXACT"), ("acme crm login", "PHRASE"), ("acme pricing", "EXACT"))),
                  ("Brand Product", (("acme pipeline software", "PHRASE"), ("acme reviews", "BROAD"))))),
    CampaignSpec("10002", "Search - Competitor", "Search", 900, 65, 4.50, 0.05, 0.040, 0.1,
                 (("Competitor Alternatives", (("salesforce alternative", "PHRASE"), ("hubspot alternative", "PHRASE"))),
                  ("Competitor Compare", (("pipedrive vs", "BROAD"), ("crm comparison", "BROAD"))))),
    CampaignSpec("10003", "Search - Generic CRM", "Search", 1500, 110, 3.80, 0.04, 0.080, 0.4,
                 (("CRM Software", (("crm software", "PHRASE"), ("best crm", "BROAD"), ("b2b crm", "EXACT"))),
                  ("Sales Pipeline", (("sales pipeline tool", "PHRASE"), ("pipeline management", "BROAD"))))),
    CampaignSpec("10004", "Search - Pricing Intent", "Search", 300, 160, 1.90, 0.09, 0.050, 1.2,
                 (("Pricing", (("crm pricing", "EXACT"), ("crm cost", "PHRASE"))),
                  ("Demo Request", (("crm demo", "EXACT"), ("crm free trial", "PHRASE"))))),
    CampaignSpec("10005", "Display - Retargeting", "Display", 400, 85, 0.90, 0.008, 0.030, 0.0,
                 (("Site Visitors 30d", ()), ("Pricing Visitors", ()))),
    CampaignSpec("10006", "Display - Prospecting", "Display", 450, 95, 0.65, 0.004, 0.012, -0.8,
                 (("In-Market Software", ()), ("Custom Intent", ()))),
    CampaignSpec("10007", "YouTube - Product Demo", "YouTube", 350, 45, 0.80, 0.006, 0.018, -0.5,
                 (("Demo Video Viewers", ()),)),
    CampaignSpec("10008", "PMax - Always On", "Performance Max", 1200, 130, 1.60, 0.020, 0.055, 0.4,
                 (("Asset Group A", ()), ("Asset Group B", ()))),
    CampaignSpec("10009", "Search - Integrations", "Search", 600, 55, 2.60, 0.06, 0.050, 0.6,
                 (("Integrations", (("crm slack integration", "PHRASE"), ("crm with gmail", "BROAD"))),)),
    CampaignSpec("10010", "YouTube - Brand Awareness", "YouTube", 250, 40, 0.50, 0.005, 0.010, -0.3,
                 (("Awareness", ()),)),
)

SQL_RATE_COLLAPSE = "10003"
COST_PER_SQL_CLIMB = "10008"
BOT_TRAFFIC = "10006"
BUDGET_CAPPED_WINNER = "10004"

BASE_QUAL_LOGIT = -1.9  # log-odds that an average lead becomes an SQL


def _weekday_index(dates: pd.DatetimeIndex) -> np.ndarray:
    return dates.day_of_week.to_numpy()


@dataclass(frozen=True)
class World:
    end_date: date
    start_date: date
    scale: float
    seed: int
    campaigns: pd.DataFrame
    campaign_performance: pd.DataFrame
    ad_performance: pd.DataFrame
    clicks: pd.DataFrame
    contacts: pd.DataFrame
    deals: pd.DataFrame
    engagements: pd.DataFrame
    companies: pd.DataFrame
    scenarios: pd.DataFrame
    campaign_truth: pd.DataFrame

    def summary(self) -> dict[str, int]:
        return {
            "campaigns": len(self.campaigns), "clicks": len(self.clicks), "contacts": len(self.contacts),
            "deals": len(self.deals), "engagements": len(self.engagements),
        }


def _scenario_table(end: date) -> pd.DataFrame:
    end_ts = pd.Timestamp(end)
    rows = [
        (SQL_RATE_COLLAPSE, "sql_rate_drop", end_ts - pd.Timedelta(days=13), end_ts,
         "lead-to-SQL rate falls to a quarter of its level for leads created in the last 14 days; clicks hold"),
        (COST_PER_SQL_CLIMB, "cost_per_sql_rise", end_ts - pd.Timedelta(days=59), end_ts,
         "CPC climbs steadily (x2.4 over 60 days) while the SQL rate erodes: cost per SQL climbs every week"),
        (BOT_TRAFFIC, "bot_traffic", end_ts - pd.Timedelta(days=9), end_ts - pd.Timedelta(days=6),
         "clicks x7 for 4 days from bots: leads do not follow (a few junk sign-ups on disposable domains)"),
        (BUDGET_CAPPED_WINNER, "budget_capped_winner", end_ts - pd.Timedelta(days=89), end_ts,
         "cheap, high-SQL campaign whose demand exceeds its daily budget every day"),
    ]
    frame = pd.DataFrame(rows, columns=["campaign_id", "signal", "start_date", "end_date", "description"])
    frame["start_date"] = frame["start_date"].dt.date
    frame["end_date"] = frame["end_date"].dt.date
    return frame


def generate_world(end_date: date, days: int = 90, scale: float = 1.0, seed: int = 7) -> World:
    """Generate the world for the `days` days ending on `end_date` (inclusive)."""
    if days < 28:
        raise ValueError(f"the demo world needs at least 28 days of history, got days={days}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    rng = np.random.default_rng(seed)
    start_date = end_date - timedelta(days=days - 1)
    dates = pd.date_range(start_date, end_date, freq="D")
    n_days = len(dates)
    day_index = np.arange(n_days)
    days_to_end = n_days - 1 - day_index
    weekday = _weekday_index(dates)
    end_of_world = pd.Timestamp(end_date, tz="UTC") + pd.Timedelta(days=1)  # exclusive

    specs = CAMPAIGN_SPECS
    n_camp = len(specs)
    camp_ids = np.array([s.campaign_id for s in specs])

    # ---- daily campaign demand, price and budget ------------------------------------------
    demand = np.array([s.daily_clicks for s in specs])[:, None] * 0.8 * scale * WEEKDAY_FACTOR[weekday][None, :]
    cpc = np.array([s.cpc for s in specs])[:, None] * np.exp(rng.normal(0, 0.08, (n_camp, n_days)))
    quality_shift = np.repeat(np.array([s.quality for s in specs])[:, None], n_days, axis=1)
    lead_rate = np.repeat(np.array([s.lead_rate for s in specs])[:, None], n_days, axis=1)
    bot_clicks = np.zeros((n_camp, n_days))
    budget = np.array([s.daily_budget for s in specs]) * scale

    ci = {s.campaign_id: i for i, s in enumerate(specs)}
    # cost per SQL climb: CPC up x2.4 and quality eroding over the last 60 days
    c = ci[COST_PER_SQL_CLIMB]
    ramp = np.clip((59 - days_to_end) / 59.0, 0, 1)
    cpc[c] *= 1 + 1.4 * ramp
    quality_shift[c] -= 0.5 * ramp
    budget[c] *= 3  # it buys its way up: budget is not the limit
    # SQL-rate collapse in the last 14 days; clicks and lead volume hold
    c = ci[SQL_RATE_COLLAPSE]
    quality_shift[c, days_to_end <= 13] -= 2.5
    # bot burst: 4 days of clicks x7 that produce no real leads
    c = ci[BOT_TRAFFIC]
    burst = (days_to_end >= 6) & (days_to_end <= 9)
    bot_clicks[c, burst] = demand[c, burst] * 6.0
    budget[c] *= 4  # bots eat budget on an uncapped campaign
    # budget-capped winner: demand well beyond budget every day
    c = ci[BUDGET_CAPPED_WINNER]
    demand[c] *= 4.0  # ~510 clicks/day of demand vs ~155 the budget buys: capped even on Sundays

    affordable = budget[:, None] / cpc
    human_clicks = rng.poisson(np.minimum(demand, affordable * 0.98))
    bots = rng.poisson(bot_clicks)
    total_clicks = human_clicks + bots
    cost = np.round(total_clicks * cpc, 2)
    ctr = np.array([s.ctr for s in specs])[:, None] * np.exp(rng.normal(0, 0.05, (n_camp, n_days)))
    ctr_effective = np.where(bots > 0, ctr * 3.5, ctr)  # bots click what they see
    impressions = np.maximum(total_clicks, np.round(total_clicks / ctr_effective)).astype(np.int64)
    lost_is = np.clip(1 - affordable / np.maximum(demand, 1e-9), 0, 0.9)
    is_search = np.array([s.channel == "Search" for s in specs])
    lost_is = np.where(is_search[:, None], np.round(lost_is, 4), np.nan)

    campaign_performance = pd.DataFrame({
        "date": np.tile(dates.values, n_camp),
        "campaign_id": np.repeat(camp_ids, n_days),
        "impressions": impressions.ravel(),
        "clicks": total_clicks.ravel().astype(np.int64),
        "cost": cost.ravel(),
        "daily_budget": np.repeat(budget, n_days),
        "search_budget_lost_impression_share": lost_is.ravel(),
    })

    # ---- ad groups and keywords: split each campaign-day by fixed weights -----------------
    slots = []  # (campaign index, ad_group_id, keyword, match_type, weight)
    for i, spec in enumerate(specs):
        for g, (group_name, keywords) in enumerate(spec.ad_groups):
            ad_group_id = f"{spec.campaign_id}{g + 1:02d}"
            if keywords:
                weights = rng.dirichlet(np.full(len(keywords), 3.0))
                for (kw, match), w in zip(keywords, weights):
                    slots.append((i, ad_group_id, group_name, kw, match, w / len(spec.ad_groups)))
            else:
                slots.append((i, ad_group_id, group_name, None, None, 1.0 / len(spec.ad_groups)))
    slot_frame = pd.DataFrame(slots, columns=["ci", "ad_group_id", "ad_group_name", "keyword", "match_type", "w"])
    slot_frame["w"] = slot_frame["w"] / slot_frame.groupby("ci")["w"].transform("sum")

    # ---- clicks: one gclid each ----------------------------------------------------------
    flat_clicks = total_clicks.ravel()
    click_camp = np.repeat(np.repeat(np.arange(n_camp), n_days), flat_clicks)
    click_day = np.repeat(np.tile(day_index, n_camp), flat_clicks)
    is_bot = np.zeros(len(click_camp), dtype=bool)
    # bots are the first `bots` clicks of each campaign-day block
    bot_flat = bots.ravel()
    block_start = np.repeat(np.cumsum(flat_clicks) - flat_clicks, flat_clicks)
    pos_in_block = np.arange(len(click_camp)) - block_start
    is_bot = pos_in_block < np.repeat(bot_flat, flat_clicks)
    n_clicks = len(click_camp)
    # slot choice per click, by the campaign's slot weights
    slot_of_click = np.empty(n_clicks, dtype=np.int64)
    u = rng.random(n_clicks)
    for i in range(n_camp):  # loop over 10 campaigns, not over rows
        idx = slot_frame.index[slot_frame["ci"] == i].to_numpy()
        cdf = np.cumsum(slot_frame.loc[idx, "w"].to_numpy())
        mask = click_camp == i
        slot_of_click[mask] = idx[np.minimum(np.searchsorted(cdf, u[mask] * cdf[-1]), len(idx) - 1)]
    seconds = np.where(
        is_bot, rng.integers(0, 86_400, n_clicks),
        np.clip(rng.normal(14.5 * 3600, 3.2 * 3600, n_clicks), 0, 86_399).astype(np.int64),
    )
    clicked_at = (
        pd.Timestamp(start_date, tz="UTC") + pd.to_timedelta(click_day, unit="D") + pd.to_timedelta(seconds, unit="s")
    )
    gclid_num = rng.permutation(n_clicks).astype(np.int64) + (seed % 997) * 10**9 + 10**11
    gclids = pd.Series(gclid_num).map(lambda n: "Cj0KCQ" + np.base_repr(int(n), 36).rjust(10, "0"))
    click_slots = slot_frame.iloc[slot_of_click]
    clicks = pd.DataFrame({
        "gclid": gclids.to_numpy(),
        "clicked_at": clicked_at,
        "date": dates.values[click_day],
        "campaign_id": camp_ids[click_camp],
        "ad_group_id": click_slots["ad_group_id"].to_numpy(),
        "keyword": click_slots["keyword"].to_numpy(),
    })

    # ---- ad_performance: aggregate clicks to the slot grain; split cost and impressions -----
    ad_clicks_per_slot = pd.DataFrame({"day": click_day, "slot": slot_of_click}).value_counts().rename("clicks")
    slot_day = pd.MultiIndex.from_product([range(n_days), slot_frame.index], names=["day", "slot"])
    ad_perf = ad_clicks_per_slot.reindex(slot_day, fill_value=0).reset_index()
    ad_perf["ci"] = slot_frame["ci"].to_numpy()[ad_perf["slot"]]
    camp_day_clicks = total_clicks[ad_perf["ci"], ad_perf["day"]]
    share = np.where(camp_day_clicks > 0, ad_perf["clicks"] / np.maximum(camp_day_clicks, 1),
                     slot_frame["w"].to_numpy()[ad_perf["slot"]])
    ad_perf["cost"] = cost[ad_perf["ci"], ad_perf["day"]] * share
    ad_perf["impressions"] = np.round(impressions[ad_perf["ci"], ad_perf["day"]] * share).astype(np.int64)
    # cents: make the slot costs of a campaign-day add up exactly to the campaign's cost
    ad_perf["cost"] = np.round(ad_perf["cost"], 2)
    drift = cost[ad_perf["ci"], ad_perf["day"]] - ad_perf.groupby(["ci", "day"])["cost"].transform("sum")
    first_slot = ~ad_perf.duplicated(["ci", "day"])
    ad_perf.loc[first_slot, "cost"] = np.round(ad_perf.loc[first_slot, "cost"] + drift[first_slot], 2)

    # ---- contacts from paid clicks ------------------------------------------------------
    click_lead_p = lead_rate[click_camp, click_day]
    becomes_lead = (~is_bot) & (rng.random(n_clicks) < click_lead_p)
    lead_clicks = np.flatnonzero(becomes_lead)
    # bots: a handful of junk sign-ups on disposable domains
    bot_idx = np.flatnonzero(is_bot)
    junk = bot_idx[rng.random(len(bot_idx)) < 0.0005]

    n_companies = max(200, int(1500 * scale))
    company_size = rng.choice(len(SIZE_BANDS), n_companies, p=SIZE_PROB)
    company_industry = rng.integers(0, len(INDUSTRIES), n_companies)
    company_country = rng.choice(len(COUNTRIES), n_companies, p=COUNTRY_PROB)
    word_a = rng.integers(0, len(COMPANY_WORDS), n_companies)
    word_b = rng.integers(0, len(COMPANY_SUFFIX), n_companies)
    base_names = pd.Series(np.char.add(np.char.add(np.array(COMPANY_WORDS)[word_a], " "), np.array(COMPANY_SUFFIX)[word_b]))
    # One company per name and domain: repeats of a name get a running number.
    repeat = base_names.groupby(base_names).cumcount()
    company_names = np.where(repeat == 0, base_names, base_names + " " + (repeat + 1).astype(str)).astype(str)
    domains = np.char.add(np.char.lower(np.char.replace(company_names, " ", "")), ".com")
    tech_bits = rng.random((n_companies, len(TECH))) < 0.25
    tech_stack = [";".join(t for t, b in zip(TECH, row) if b) for row in tech_bits]
    companies = pd.DataFrame({
        "domain": domains, "company": company_names,
        "company_size": np.array(SIZE_BANDS)[company_size],
        "employees": np.array(SIZE_EMPLOYEES)[company_size],
        "industry": np.array(INDUSTRIES)[company_industry],
        "country": np.array(COUNTRIES)[company_country],
        "tech_stack": tech_stack,
    })

    def make_contacts(n: int, created_at: pd.DatetimeIndex, quality: np.ndarray, campaign: np.ndarray,
                      gclid: np.ndarray, source: np.ndarray, junk_mask: np.ndarray | None = None) -> pd.DataFrame:
        company_idx = rng.integers(0, n_companies, n)
        mail_kind = rng.choice(3, n, p=[0.78, 0.19, 0.03])  # business, free, disposable
        if junk_mask is not None:
            mail_kind = np.where(junk_mask, 2, mail_kind)
        first = np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n)]
        last = np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n)]
        local = np.char.add(np.char.add(first, "."), last)
        local = np.char.add(local, rng.integers(1, 999, n).astype(str))
        dom = np.where(mail_kind == 0, domains[company_idx],
                       np.where(mail_kind == 1, np.array(FREE_MAIL_DOMAINS)[rng.integers(0, 6, n)],
                                np.array(DISPOSABLE_DOMAINS)[rng.integers(0, 5, n)]))
        email = np.char.add(np.char.add(local, "@"), dom)
        fit = SIZE_FIT[company_size[company_idx]] + INDUSTRY_FIT[company_industry[company_idx]]
        fit = fit + np.where(mail_kind == 0, 0.3, np.where(mail_kind == 1, -0.6, -2.5))
        return pd.DataFrame({
            "company_idx": company_idx, "mail_kind": mail_kind, "firstname": first, "lastname": last,
            "email": email, "created_at": created_at, "latent": quality + fit + rng.normal(0, 0.55, n),
            "campaign_id": campaign, "gclid": gclid, "source": source,
        })

    paid_idx = np.concatenate([lead_clicks, junk])
    paid_delay = pd.to_timedelta(rng.exponential(900, len(paid_idx)).astype(np.int64), unit="s")
    paid = make_contacts(
        len(paid_idx), clicked_at[paid_idx] + paid_delay,
        np.where(np.isin(paid_idx, junk), -6.0, quality_shift[click_camp[paid_idx], click_day[paid_idx]]),
        camp_ids[click_camp[paid_idx]], clicks["gclid"].to_numpy()[paid_idx], np.full(len(paid_idx), "paid"),
        junk_mask=np.isin(paid_idx, junk),
    )
    # organic and UTM-tagged leads without gclid
    n_other = rng.poisson(750 * scale)
    other_day = rng.integers(0, n_days, n_other)
    other_created = (pd.Timestamp(start_date, tz="UTC") + pd.to_timedelta(other_day, unit="D")
                     + pd.to_timedelta(rng.integers(6 * 3600, 22 * 3600, n_other), unit="s"))
    other_source = rng.choice(["organic", "linkedin", "newsletter", "partner", "direct", "google_utm"], n_other,
                              p=[0.34, 0.18, 0.16, 0.10, 0.12, 0.10])
    other_quality = pd.Series(other_source).map(
        {"organic": 0.3, "linkedin": -0.2, "newsletter": 0.1, "partner": 0.8, "direct": 0.2, "google_utm": 0.3}
    ).to_numpy()
    utm_campaign_idx = rng.integers(0, n_camp, n_other)
    other_campaign = np.where(other_source == "google_utm", camp_ids[utm_campaign_idx], None)
    other = make_contacts(n_other, pd.DatetimeIndex(other_created), other_quality, other_campaign,
                          np.full(n_other, None, dtype=object), other_source)
    contacts = pd.concat([paid, other], ignore_index=True)
    contacts = contacts[contacts["created_at"] < end_of_world].reset_index(drop=True)
    n = len(contacts)

    # UTM parameters and HubSpot's analytics source
    name_of = {s.campaign_id: s.name for s in specs}
    channel_of = {s.campaign_id: s.channel for s in specs}
    slug = {cid: name.lower().replace(" - ", "_").replace(" ", "_") for cid, name in name_of.items()}
    is_paid = contacts["source"].eq("paid").to_numpy()
    camp = contacts["campaign_id"]
    utm_source = np.select(
        [is_paid | contacts["source"].eq("google_utm").to_numpy(), contacts["source"].eq("linkedin").to_numpy(),
         contacts["source"].eq("newsletter").to_numpy(), contacts["source"].eq("partner").to_numpy()],
        ["google", "linkedin", "newsletter", "partner"], default=None)
    utm_medium = np.select(
        [is_paid & camp.map(channel_of).eq("Search").to_numpy(), is_paid,
         contacts["source"].eq("google_utm").to_numpy(), contacts["source"].eq("linkedin").to_numpy(),
         contacts["source"].eq("newsletter").to_numpy(), contacts["source"].eq("partner").to_numpy()],
        ["cpc", "display", "cpc", "paid_social", "email", "referral"], default=None)
    utm_campaign = np.where(camp.notna().to_numpy(), camp.map(slug).to_numpy(), None)
    utm_campaign = np.where(contacts["source"].eq("linkedin").to_numpy(), "li_q3_abm", utm_campaign)
    utm_campaign = np.where(contacts["source"].eq("newsletter").to_numpy(), "monthly_newsletter", utm_campaign)
    # Some paid clicks arrive without auto-tagging surviving the form: gclid lost, UTM kept.
    lost_gclid = is_paid & (rng.random(n) < 0.08)
    gclid_col = np.where(lost_gclid, None, contacts["gclid"].to_numpy())
    analytics_source = np.select(
        [is_paid | contacts["source"].eq("google_utm").to_numpy(), contacts["source"].eq("linkedin").to_numpy(),
         contacts["source"].eq("newsletter").to_numpy(), contacts["source"].eq("partner").to_numpy(),
         contacts["source"].eq("organic").to_numpy()],
        ["PAID_SEARCH", "PAID_SOCIAL", "EMAIL_MARKETING", "REFERRALS", "ORGANIC_SEARCH"], default="DIRECT_TRAFFIC")

    # ---- lifecycle: Lead -> MQL -> SQL -> Opportunity -> Customer --------------------------
    latent = contacts["latent"].to_numpy()
    p_sql = 1 / (1 + np.exp(-(BASE_QUAL_LOGIT + latent)))
    reaches_sql = rng.random(n) < p_sql
    reaches_mql = reaches_sql | (rng.random(n) < 0.35 * (1 / (1 + np.exp(-latent))))
    reaches_opp = reaches_sql & (rng.random(n) < 0.55)
    size_idx = company_size[contacts["company_idx"].to_numpy()]
    reaches_customer = reaches_opp & (rng.random(n) < np.clip(0.28 + 0.06 * latent, 0.05, 0.6))
    created = contacts["created_at"]
    day = pd.Timedelta(days=1)
    mql_at = created + pd.to_timedelta(rng.exponential(1.2, n), unit="D")
    sql_at = mql_at + pd.to_timedelta(rng.gamma(1.6, 1.6, n), unit="D")
    opp_at = sql_at + pd.to_timedelta(rng.gamma(2.0, 3.0, n) + 1, unit="D")
    cust_at = opp_at + pd.to_timedelta(rng.gamma(3.0, 8.0, n) + 7, unit="D")
    visible = lambda ts, reached: ts.where(reached & (ts < end_of_world))  # noqa: E731
    mql_at, sql_at = visible(mql_at, reaches_mql), visible(sql_at, reaches_sql)
    opp_at, cust_at = visible(opp_at, reaches_opp), visible(cust_at, reaches_customer)
    # a later stage cannot be visible when an earlier one is not
    opp_at = opp_at.where(sql_at.notna())
    cust_at = cust_at.where(opp_at.notna())
    stage = np.select([cust_at.notna(), opp_at.notna(), sql_at.notna(), mql_at.notna()],
                      ["customer", "opportunity", "salesqualifiedlead", "marketingqualifiedlead"], default="lead")
    last_modified = pd.concat([created, mql_at, sql_at, opp_at, cust_at], axis=1).max(axis=1)

    contact_ids = (np.arange(n) * 7 + 100_001 + seed).astype(str)
    company_idx = contacts["company_idx"].to_numpy()
    contact_frame = pd.DataFrame({
        "contact_id": contact_ids,
        "email": contacts["email"].to_numpy(),
        "firstname": contacts["firstname"].str.title().to_numpy(),
        "lastname": contacts["lastname"].str.title().to_numpy(),
        "company": companies["company"].to_numpy()[company_idx],
        "domain": companies["domain"].to_numpy()[company_idx],
        "lifecycle_stage": stage,
        "created_at": created.to_numpy(),
        "last_modified_at": last_modified.to_numpy(),
        "gclid": gclid_col,
        "utm_source": utm_source,
        "utm_medium": utm_medium,
        "utm_campaign": utm_campaign,
        "analytics_source": analytics_source,
        "lead_at": created.to_numpy(),
        "mql_at": mql_at.to_numpy(),
        "sql_at": sql_at.to_numpy(),
        "opportunity_at": opp_at.to_numpy(),
        "customer_at": cust_at.to_numpy(),
    })
    for col in ("created_at", "last_modified_at", "lead_at", "mql_at", "sql_at", "opportunity_at", "customer_at"):
        contact_frame[col] = pd.to_datetime(contact_frame[col], utc=True)

    # Real CRMs are messy: duplicate contacts (same person, other case/spaces, created later)
    # and a few invalid e-mails. They are planted so normalization has something to do.
    dup_src = rng.choice(n, size=int(n * 0.02), replace=False)
    dups = contact_frame.iloc[dup_src].copy()
    dups["contact_id"] = (np.arange(len(dups)) * 7 + 900_001 + seed).astype(str)
    dups["email"] = "  " + dups["email"].str.upper() + " "
    dups["created_at"] = dups["created_at"] + pd.to_timedelta(rng.integers(1, 20, len(dups)), unit="D")
    dups = dups[dups["created_at"] < end_of_world]
    dups["lead_at"] = dups["created_at"]
    for col in ("mql_at", "sql_at", "opportunity_at", "customer_at"):
        dups[col] = pd.NaT
    dups["lifecycle_stage"] = "lead"
    dups["gclid"] = None
    dups["last_modified_at"] = dups["created_at"]
    bad_src = rng.choice(n, size=max(3, int(n * 0.005)), replace=False)
    bad_emails = np.array(["n/a", "test@", "no-email", "@acme.com", "john at example.com"])
    contact_frame.loc[bad_src, "email"] = bad_emails[np.arange(len(bad_src)) % len(bad_emails)]
    contact_frame = pd.concat([contact_frame, dups], ignore_index=True)
    for col in ("created_at", "last_modified_at", "lead_at", "mql_at", "sql_at", "opportunity_at", "customer_at"):
        contact_frame[col] = pd.to_datetime(contact_frame[col], utc=True)

    # ---- deals ---------------------------------------------------------------------------
    has_opp = contact_frame["opportunity_at"].notna().to_numpy()
    deal_rows = contact_frame[has_opp]
    n_deals = len(deal_rows)
    deal_size = size_idx[:n][has_opp[:n]] if n_deals else np.array([], dtype=int)
    amount = np.round(SIZE_DEAL[deal_size] * np.exp(rng.normal(0, 0.35, n_deals)), -2)
    won = deal_rows["customer_at"].notna().to_numpy()
    lost_at = deal_rows["opportunity_at"] + pd.to_timedelta(rng.gamma(2.0, 12.0, n_deals) + 5, unit="D")
    lost = (~won) & (rng.random(n_deals) < 0.45) & (lost_at < end_of_world).to_numpy()
    open_stages = np.array(["appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
                            "decisionmakerboughtin", "contractsent"])
    deal_stage = np.where(won, "closedwon", np.where(lost, "closedlost",
                                                      open_stages[rng.integers(0, len(open_stages), n_deals)]))
    closed_at = np.where(won, deal_rows["customer_at"], np.where(lost, lost_at, pd.NaT))
    deals = pd.DataFrame({
        "deal_id": (np.arange(n_deals) * 11 + 500_003 + seed).astype(str),
        "contact_id": deal_rows["contact_id"].to_numpy(),
        "amount": amount,
        "stage": deal_stage,
        "created_at": deal_rows["opportunity_at"].to_numpy(),
        "closed_at": pd.to_datetime(closed_at, utc=True),
        "is_won": won,
    })
    deals["created_at"] = pd.to_datetime(deals["created_at"], utc=True)
    deals["last_modified_at"] = deals[["created_at", "closed_at"]].max(axis=1)

    # ---- engagements: intent before qualification, meetings after -----------------------
    base = contact_frame.iloc[:n]
    created_naive = base["created_at"].dt.tz_localize(None).to_numpy()
    lat = latent
    rates = {
        "page_view": np.clip(1.5 + 0.9 * lat, 0.2, 8),
        "pricing_page_view": np.clip(0.3 + 0.6 * lat, 0.02, 4),
        "content_download": np.clip(0.4 + 0.3 * lat, 0.05, 3),
        "webinar": np.clip(0.1 + 0.12 * lat, 0.01, 1),
        "demo_booked": np.clip(0.05 + 0.35 * (lat > 0.8), 0.01, 0.6),
        "email_click": np.clip(0.6 + 0.2 * lat, 0.1, 3),
    }
    channel_of_event = {"page_view": "web", "pricing_page_view": "web", "content_download": "web",
                        "webinar": "event", "demo_booked": "web", "email_click": "email", "meeting": "sales"}
    parts = []
    for event_type, rate in rates.items():  # six event types, each vectorized over contacts
        count = rng.poisson(rate)
        who = np.repeat(np.arange(n), count)
        offset = pd.to_timedelta(rng.exponential(2.5, len(who)), unit="D")
        parts.append(pd.DataFrame({"row": who, "event_type": event_type,
                                   "occurred_at": created_naive[who] + offset.to_numpy()}))
    # sales meetings only happen after qualification: a leakage trap for the scoring model
    sql_rows = np.flatnonzero(base["sql_at"].notna().to_numpy())
    meet = np.repeat(sql_rows, rng.integers(1, 4, len(sql_rows)))
    parts.append(pd.DataFrame({"row": meet, "event_type": "meeting",
                               "occurred_at": base["sql_at"].dt.tz_localize(None).to_numpy()[meet]
                               + pd.to_timedelta(rng.exponential(4, len(meet)), unit="D").to_numpy()}))
    events = pd.concat(parts, ignore_index=True)
    events["occurred_at"] = pd.to_datetime(events["occurred_at"]).dt.tz_localize("UTC")
    events = events[events["occurred_at"] < end_of_world].sort_values(["occurred_at", "row"], kind="stable")
    engagements = pd.DataFrame({
        "engagement_id": (np.arange(len(events)) + 10_000_001).astype(str),
        "contact_id": contact_ids[events["row"].to_numpy()],
        "occurred_at": events["occurred_at"].to_numpy(),
        "event_type": events["event_type"].to_numpy(),
        "channel": events["event_type"].map(channel_of_event).to_numpy(),
        "detail": None,
    })
    engagements["occurred_at"] = pd.to_datetime(engagements["occurred_at"], utc=True)
    engagements["date"] = engagements["occurred_at"].dt.tz_localize(None).dt.normalize()

    # ---- campaigns and ground truth ------------------------------------------------------
    campaigns = pd.DataFrame({
        "campaign_id": camp_ids,
        "campaign_name": [s.name for s in specs],
        "channel": [s.channel for s in specs],
        "advertising_channel_type": [{"Search": "SEARCH", "Display": "DISPLAY", "YouTube": "VIDEO",
                                      "Performance Max": "PERFORMANCE_MAX"}[s.channel] for s in specs],
        "status": "ENABLED",
        "daily_budget": budget,
    })
    ad_performance = pd.DataFrame({
        "date": dates.values[ad_perf["day"].to_numpy()],
        "campaign_id": camp_ids[ad_perf["ci"].to_numpy()],
        "ad_group_id": slot_frame["ad_group_id"].to_numpy()[ad_perf["slot"].to_numpy()],
        "keyword": slot_frame["keyword"].to_numpy()[ad_perf["slot"].to_numpy()],
        "match_type": slot_frame["match_type"].to_numpy()[ad_perf["slot"].to_numpy()],
        "impressions": ad_perf["impressions"].to_numpy(),
        "clicks": ad_perf["clicks"].to_numpy().astype(np.int64),
        "cost": ad_perf["cost"].to_numpy(),
    })
    # conversions = form fills Google saw (the number ad platforms optimise for)
    paid_leads = paid[paid["created_at"] < end_of_world]
    conv = (pd.DataFrame({"date": paid_leads["created_at"].dt.tz_localize(None).dt.normalize().to_numpy(),
                          "campaign_id": paid_leads["campaign_id"].to_numpy()})
            .value_counts().rename("conversions").reset_index())
    campaign_performance = campaign_performance.merge(conv, on=["date", "campaign_id"], how="left")
    campaign_performance["conversions"] = campaign_performance["conversions"].fillna(0).astype(float)
    ad_performance["conversions"] = np.round(
        ad_performance["clicks"] * ad_performance["campaign_id"].map(
            {s.campaign_id: s.lead_rate for s in specs}), 2)

    # Ground truth from the probabilities the world was drawn from, not from the draws.
    paid_rows = np.flatnonzero(is_paid)
    truth = pd.DataFrame({
        "campaign_id": contacts["campaign_id"].to_numpy()[paid_rows],
        "recent": (contacts["created_at"].iloc[paid_rows]
                   >= pd.Timestamp(end_date - timedelta(days=13), tz="UTC")).to_numpy(),
        "p_sql": p_sql[paid_rows],
    })
    by_window = truth.groupby(["campaign_id", "recent"])["p_sql"].mean().unstack()
    spend = campaign_performance.assign(
        recent=campaign_performance["date"] >= pd.Timestamp(end_date - timedelta(days=13))
    ).groupby(["campaign_id", "recent"])[["cost", "clicks"]].sum().unstack()
    expected_sqls = truth.groupby(["campaign_id", "recent"])["p_sql"].sum().unstack()
    campaign_truth = pd.DataFrame({
        "campaign_id": camp_ids, "campaign_name": [s.name for s in specs], "channel": [s.channel for s in specs],
        "baseline_sql_rate": by_window[False].reindex(camp_ids).to_numpy(),
        "recent_sql_rate": by_window[True].reindex(camp_ids).to_numpy(),
        "baseline_cost_per_sql": (spend[("cost", False)] / expected_sqls[False]).reindex(camp_ids).to_numpy(),
        "recent_cost_per_sql": (spend[("cost", True)] / expected_sqls[True]).reindex(camp_ids).to_numpy(),
        "scenario": [
            {SQL_RATE_COLLAPSE: "sql_rate_drop", COST_PER_SQL_CLIMB: "cost_per_sql_rise",
             BOT_TRAFFIC: "bot_traffic", BUDGET_CAPPED_WINNER: "budget_capped_winner"}.get(s.campaign_id)
            for s in specs],
    })

    return World(
        end_date=end_date, start_date=start_date, scale=scale, seed=seed,
        campaigns=campaigns,
        campaign_performance=campaign_performance,
        ad_performance=ad_performance,
        clicks=clicks,
        contacts=contact_frame,
        deals=deals,
        engagements=engagements,
        companies=companies,
        scenarios=_scenario_table(end_date),
        campaign_truth=campaign_truth,
    )


@lru_cache(maxsize=4)
def cached_world(end_date: date, days: int = 90, scale: float = 1.0, seed: int = 7) -> World:
    """The world for these arguments, generated once per process (resources share it)."""
    return generate_world(end_date, days=days, scale=scale, seed=seed)


def default_end_date(today: date | None = None) -> date:
    """Yesterday in UTC: the last complete day, as a daily run sees it."""
    today = today or datetime.now(timezone.utc).date()
    return today - timedelta(days=1)
