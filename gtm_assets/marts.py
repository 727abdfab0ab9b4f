"""Marts: lead funnel, touchpoints, multi-touch campaign attribution, cost per SQL and channel economics.

Plain pandas/numpy functions (no Dagster), vectorized over whole frames. The rules below are
the product's definitions; asset descriptions and the README repeat them.

Funnel stages are lead -> mql -> sql -> opportunity -> customer.
- Reached: a stage is reached when its own date is set or any later stage's date is set (an
  SQL that never was an MQL still counts as an MQL). A lead with a won deal is a customer.
- Skipped stage: reached, but its own date is NULL. Its `<stage>_at` column stays NULL (we never
  invent a date the CRM does not have); `skipped_stages` names it and `<stage>_reached_at` takes
  the next dated stage's date, which is the time used for conversions and cohorts downstream.
- Stage regression: a stage dated before an earlier stage's date (e.g. sql_at < mql_at). Dates
  stay as recorded; `regressed_stages` names the stage, and a duration that would be negative is
  NULL so averages are not corrupted.

Touchpoints: every known touch of every lead, in time order: its ad click (gclid -> ad_clicks),
else a lead-creation touch at lead_at (`utm_visit` when the lead carries UTM tags, else
`lead_created`), plus every CRM engagement of any contact merged into the lead. `lead_touch`
marks the last touch at or before lead_at, `opportunity_touch` the last at or before
opportunity_reached_at.

Attribution: journeys are leads; SQL conversions (value 0) and customer conversions (value =
won deal revenue) are credited to channel x campaign x ad group x keyword under every model.
Touches after the conversion do not count; when every touch of a converted lead falls after the
conversion (a regression), its first touch takes the credit, so no conversion is ever lost.
Non-paid touches (organic, email, engagements) carry campaign_id NULL and keep their channel:
they are kept as "non-paid" rows so every model's totals equal the funnel's SQLs, customers and
revenue.

Cost per SQL is a lead-creation cohort: a lead's outcomes (MQL, SQL, customer, revenue) count on
the date it was created, against that day's spend of the campaign it was matched to (gclid first,
UTM second), even when the SQL happens days later. Spend comes from campaign_performance.

Ratios whose denominator is zero (or NULL) are NULL, never 0 or infinity.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from gtm_assets.contracts import require_columns

from gtm_assets.attribution import MODELS, attribute_all
from gtm_assets.leads import CAMPAIGN_CHANNELS

STAGES: tuple[str, ...] = ("lead", "mql", "sql", "opportunity", "customer")
STAGE_COLUMNS: tuple[str, ...] = tuple(f"{stage}_at" for stage in STAGES)
ATTRIBUTION_GRAIN: list[str] = ["channel", "campaign_id", "ad_group_id", "keyword"]
# Lead-vocabulary channel of an engagement, by HubSpot engagement channel.
ENGAGEMENT_CHANNELS = {"web": "web", "email": "email", "event": "event", "sales": "sales"}
# Same-time touches: the click comes before the form fill it led to, which comes before CRM events.
TOUCH_TYPE_ORDER = {"ad_click": 0, "utm_visit": 1, "lead_created": 1, "engagement": 2}
NON_PAID = "non-paid"
COST_PER_SQL_RATIOS = {
    "cost_per_lead": "leads", "cost_per_mql": "mqls", "cost_per_sql": "sqls", "cost_per_customer": "customers",
    "mql_to_sql_rate": "mqls", "sql_rate": "leads", "roas": "spend",
}
# cac is also NULL without spend: a channel whose cost is not tracked has no CAC, not a CAC of 0.
CHANNEL_ECONOMICS_RATIOS = {"cac": ("spend", "customers"), "arpa_monthly": "paying_customers",
                            "ltv_to_cac": "cac", "payback_months": "arpa_monthly"}
_DAY = pd.Timedelta(days=1)


# ---------------------------------------------------------------------------- helpers


def _require(frame: pd.DataFrame, columns: list[str] | tuple[str, ...], table: str) -> None:
    require_columns(frame, columns, f"table {table}", hint="; materialize it with the current code")


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).astype("datetime64[us, UTC]")


def _day(series: pd.Series) -> pd.Series:
    """The UTC calendar date of a timestamp, as a naive midnight (the warehouse DATE type)."""
    return _utc(series).dt.tz_convert(None).dt.normalize().astype("datetime64[us]")


def _text(series: pd.Series) -> pd.Series:
    return series.astype("string").astype("str")


def safe_ratio(numerator, denominator) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is zero or missing (never inf)."""
    num = np.asarray(pd.to_numeric(pd.Series(numerator), errors="coerce"), dtype=float)
    den = np.asarray(pd.to_numeric(pd.Series(denominator), errors="coerce"), dtype=float)
    ok = np.isfinite(den) & (den != 0) & np.isfinite(num)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=ok)
    return out


def lead_contact_map(enriched_leads: pd.DataFrame) -> pd.DataFrame:
    """Every CRM contact id -> the lead (surviving contact_id) it was merged into."""
    _require(enriched_leads, ["contact_id"], "enriched_leads")
    merged = (
        enriched_leads["merged_contact_ids"] if "merged_contact_ids" in enriched_leads.columns
        else pd.Series(np.nan, index=enriched_leads.index)
    )
    ids = _text(merged.fillna(enriched_leads["contact_id"])) + ";" + _text(enriched_leads["contact_id"])
    pairs = pd.DataFrame({"crm_contact_id": ids.str.split(";"), "contact_id": _text(enriched_leads["contact_id"])})
    pairs = pairs.explode("crm_contact_id")
    pairs["crm_contact_id"] = pairs["crm_contact_id"].str.strip()
    pairs = pairs[pairs["crm_contact_id"] != ""].drop_duplicates("crm_contact_id")
    return pairs.reset_index(drop=True)


def won_revenue(enriched_leads: pd.DataFrame, deals: pd.DataFrame | None) -> tuple[pd.DataFrame, dict]:
    """Won deal revenue per lead (deals map through merged_contact_ids) and data-quality counts.

    Returns (contact_id, won_revenue, won_deals, first_won_at) for leads with a won deal, and
    counts of deals that could not be used: on no known lead, won without an amount (0 revenue),
    negative amounts (excluded: refunds are not revenue).
    """
    columns = ["contact_id", "won_revenue", "won_deals", "first_won_at"]
    empty = pd.DataFrame({"contact_id": pd.Series(dtype="str"), "won_revenue": pd.Series(dtype=float),
                          "won_deals": pd.Series(dtype="int64"), "first_won_at": pd.Series(dtype="datetime64[us, UTC]")})
    issues = {"deals_on_unknown_contacts": 0, "won_deals_without_amount": 0, "won_deals_with_negative_amount": 0}
    if deals is None or deals.empty:
        return empty, issues
    _require(deals, ["deal_id", "contact_id", "amount", "is_won"], "deals")
    mapping = lead_contact_map(enriched_leads)
    frame = (deals.assign(crm_contact_id=_text(deals["contact_id"])).drop(columns=["contact_id"])
             .merge(mapping, on="crm_contact_id", how="left"))
    issues["deals_on_unknown_contacts"] = int(frame["contact_id"].isna().sum())
    won = frame["is_won"].astype("boolean").fillna(False).to_numpy(dtype=bool) & frame["contact_id"].notna().to_numpy()
    won_deals = frame[won]
    amount = pd.to_numeric(won_deals["amount"], errors="coerce")
    issues["won_deals_without_amount"] = int(amount.isna().sum())
    issues["won_deals_with_negative_amount"] = int((amount < 0).sum())
    closed = _utc(won_deals["closed_at"]) if "closed_at" in won_deals.columns else pd.Series(pd.NaT, index=won_deals.index)
    usable = pd.DataFrame({"contact_id": won_deals["contact_id"], "amount": amount.fillna(0.0).clip(lower=0.0),
                           "closed_at": closed})
    if usable.empty:
        return empty, issues
    per_lead = usable.groupby("contact_id", sort=True).agg(
        won_revenue=("amount", "sum"), won_deals=("amount", "size"), first_won_at=("closed_at", "min"))
    return per_lead.reset_index()[columns], issues


# ---------------------------------------------------------------------------- funnel


def build_lead_funnel(enriched_leads: pd.DataFrame, deals: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per lead: stage dates, reached/skipped/regression flags, durations, won revenue.

    Columns: contact_id, lead_date, lead_at .. customer_at (as recorded), reached_<stage>,
    sql_reached_at, opportunity_reached_at, customer_reached_at, furthest_stage, days_lead_to_mql,
    days_mql_to_sql, days_sql_to_opportunity, days_opportunity_to_customer, days_to_sql,
    days_to_customer, skipped_stages, has_skipped_stage, regressed_stages, has_stage_regression,
    won_revenue, won_deals, and channel / campaign_id / match_source when the leads carry them.
    """
    _require(enriched_leads, ["contact_id", "lead_at"], "enriched_leads")
    leads = enriched_leads
    if leads["contact_id"].isna().any() or leads["contact_id"].duplicated().any():
        raise ValueError(
            "Table enriched_leads must have one row per non-null contact_id; found "
            f"{int(leads['contact_id'].isna().sum())} null and {int(leads['contact_id'].duplicated().sum())} "
            "duplicate id(s). Rebuild enriched_leads (the dedup step merges duplicates)."
        )
    if leads["lead_at"].isna().any():
        raise ValueError(
            f"Table enriched_leads has {int(leads['lead_at'].isna().sum())} lead(s) without lead_at; "
            "lead_at is the contact's creation time and must be set."
        )
    funnel = pd.DataFrame({"contact_id": _text(leads["contact_id"]).to_numpy()})
    for column in STAGE_COLUMNS:
        values = leads[column] if column in leads.columns else pd.Series(pd.NaT, index=leads.index)
        funnel[column] = _utc(values).reset_index(drop=True)
    funnel.insert(1, "lead_date", _day(funnel["lead_at"]))

    revenue, _ = won_revenue(leads, deals)
    funnel = funnel.merge(revenue, on="contact_id", how="left")
    funnel["won_revenue"] = funnel["won_revenue"].fillna(0.0)
    funnel["won_deals"] = funnel["won_deals"].fillna(0).astype("int64")

    # Stage dates as int64 ns (NaT -> sentinel) for whole-array comparisons.
    missing = np.iinfo(np.int64).min
    stamps = np.column_stack([
        funnel[column].astype("datetime64[ns, UTC]").dt.tz_convert(None).to_numpy().view(np.int64)
        for column in STAGE_COLUMNS
    ])
    dated = stamps != missing
    # The customer stage is also reached by a won deal; its time is then the first close.
    won = funnel["won_deals"].to_numpy() > 0
    first_won = funnel["first_won_at"].astype("datetime64[ns, UTC]").dt.tz_convert(None).to_numpy().view(np.int64)
    customer_by_deal = ~dated[:, 4] & won & (first_won != missing)
    effective = stamps.copy()
    effective[customer_by_deal, 4] = first_won[customer_by_deal]
    effective_dated = effective != missing
    marks = effective_dated.copy()
    marks[:, 4] |= won
    reached = np.flip(np.logical_or.accumulate(np.flip(marks, axis=1), axis=1), axis=1)
    reached[:, 0] = True
    # A skipped stage takes the next dated stage's date (the nearest one, even if it regressed).
    big = np.iinfo(np.int64).max
    next_dated = np.where(effective_dated, effective, big)
    for k in range(3, -1, -1):  # four stage columns, not rows
        next_dated[:, k] = np.where(effective_dated[:, k], effective[:, k], next_dated[:, k + 1])
    filled = np.where(next_dated == big, missing, next_dated)
    for k, stage in enumerate(STAGES):
        funnel[f"reached_{stage}"] = reached[:, k]
    for k, stage in ((2, "sql"), (3, "opportunity"), (4, "customer")):
        funnel[f"{stage}_reached_at"] = _from_ns(np.where(reached[:, k], filled[:, k], missing))

    skipped = reached & ~dated
    skipped[:, 4] &= ~customer_by_deal  # a won deal dates the customer stage: not skipped
    prior_latest = np.maximum.accumulate(np.where(dated, stamps, missing), axis=1)
    prior_latest = np.c_[np.full(len(funnel), missing), prior_latest[:, :-1]]
    regressed = dated & (prior_latest != missing) & (stamps < prior_latest)
    funnel["skipped_stages"] = _names(skipped, STAGES)
    funnel["has_skipped_stage"] = skipped.any(axis=1)
    funnel["regressed_stages"] = _names(regressed, STAGES)
    funnel["has_stage_regression"] = regressed.any(axis=1)
    furthest = reached.shape[1] - 1 - np.argmax(np.flip(reached, axis=1), axis=1)
    funnel["furthest_stage"] = np.array(STAGES)[furthest]

    def days(later: str, earlier: str) -> np.ndarray:
        delta = (funnel[later] - funnel[earlier]) / _DAY
        return np.where(delta >= 0, delta, np.nan)

    funnel["days_lead_to_mql"] = days("mql_at", "lead_at")
    funnel["days_mql_to_sql"] = days("sql_at", "mql_at")
    funnel["days_sql_to_opportunity"] = days("opportunity_at", "sql_at")
    funnel["days_opportunity_to_customer"] = days("customer_at", "opportunity_at")
    funnel["days_to_sql"] = days("sql_reached_at", "lead_at")
    funnel["days_to_customer"] = days("customer_reached_at", "lead_at")
    for column in ("channel", "campaign_id", "campaign_name", "match_source"):
        if column in leads.columns:
            funnel[column] = leads[column].to_numpy()
    return funnel.drop(columns=["first_won_at"])


def _from_ns(nanoseconds: np.ndarray) -> pd.Series:
    stamps = pd.to_datetime(np.where(nanoseconds == np.iinfo(np.int64).min, np.datetime64("NaT"),
                                     nanoseconds.astype("datetime64[ns]")))
    return pd.Series(stamps).dt.tz_localize("UTC").astype("datetime64[us, UTC]")


def _names(mask: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Per row, the ';'-joined names of the True columns ('' when none)."""
    out = np.full(len(mask), "", dtype=object)
    for k, name in enumerate(names):  # one pass per stage
        out = np.where(mask[:, k], np.where(out == "", name, out + ";" + name), out)
    return out.astype(str)


def funnel_summary(funnel: pd.DataFrame) -> dict:
    """Counts a data engineer checks at a glance: reached, skipped and regressed leads per stage."""
    summary = {"leads": len(funnel)}
    for stage in STAGES:
        summary[f"reached_{stage}"] = int(funnel[f"reached_{stage}"].sum())
    for stage in STAGES[1:]:
        summary[f"skipped_{stage}"] = int(funnel["skipped_stages"].str.contains(rf"\b{stage}\b", regex=True).sum())
        summary[f"regressed_{stage}"] = int(funnel["regressed_stages"].str.contains(rf"\b{stage}\b", regex=True).sum())
    summary["leads_with_skipped_stage"] = int(funnel["has_skipped_stage"].sum())
    summary["leads_with_stage_regression"] = int(funnel["has_stage_regression"].sum())
    summary["won_revenue"] = float(funnel["won_revenue"].sum())
    return summary


# ---------------------------------------------------------------------------- touchpoints

TOUCHPOINT_COLUMNS = [
    "contact_id", "touch_index", "touched_at", "touch_type", "channel", "campaign_id", "ad_group_id",
    "keyword", "event_type", "source_id", "lead_touch", "opportunity_touch",
]


def google_channel(google_channels: pd.Series) -> pd.Series:
    """Google Ads campaign channel -> lead channel vocabulary (Search -> paid_search, ...)."""
    mapped = google_channels.map(CAMPAIGN_CHANNELS)
    return mapped.where(mapped.notna() | google_channels.isna(), "paid_other").fillna("paid_other").astype("str")


def build_touchpoints(
    enriched_leads: pd.DataFrame,
    funnel: pd.DataFrame,
    ad_clicks: pd.DataFrame,
    engagements: pd.DataFrame,
    campaigns: pd.DataFrame,
) -> tuple[pd.DataFrame, dict]:
    """Every touch of every lead in time order, with milestone flags; and counts for metadata."""
    _require(enriched_leads, ["contact_id", "lead_at", "gclid", "channel", "campaign_id"], "enriched_leads")
    _require(funnel, ["contact_id", "lead_at", "opportunity_reached_at"], "lead_funnel")
    _require(ad_clicks, ["gclid", "clicked_at", "campaign_id", "ad_group_id", "keyword"], "ad_clicks")
    _require(engagements, ["contact_id", "occurred_at", "event_type", "channel"], "engagements")
    _require(campaigns, ["campaign_id", "channel"], "campaigns")
    leads = enriched_leads.assign(contact_id=_text(enriched_leads["contact_id"]))
    campaign_channel = pd.Series(google_channel(campaigns["channel"]).to_numpy(),
                                 index=_text(campaigns["campaign_id"]).to_numpy())
    campaign_channel = campaign_channel[~campaign_channel.index.duplicated()]

    clicks = ad_clicks.drop_duplicates("gclid")
    with_gclid = leads.loc[leads["gclid"].notna(), ["contact_id", "gclid", "channel"]].rename(
        columns={"channel": "lead_channel"})
    click_touches = with_gclid.merge(clicks.drop(columns=["contact_id", "lead_channel"], errors="ignore"),
                                     on="gclid", how="inner")
    click_campaign = _text(click_touches["campaign_id"])
    click_touches = pd.DataFrame({
        "contact_id": click_touches["contact_id"],
        "touched_at": _utc(click_touches["clicked_at"]),
        "touch_type": "ad_click",
        "channel": click_campaign.map(campaign_channel).fillna(click_touches["lead_channel"]).astype("str"),
        "campaign_id": click_campaign,
        "ad_group_id": click_touches["ad_group_id"],
        "keyword": click_touches["keyword"],
        "event_type": None,
        "source_id": click_touches["gclid"],
    })

    without_click = leads[~leads["contact_id"].isin(click_touches["contact_id"])]
    tagged = pd.Series(False, index=without_click.index)
    for column in ("utm_source", "utm_medium", "utm_campaign"):
        if column in without_click.columns:
            tagged |= without_click[column].notna()
    creation_touches = pd.DataFrame({
        "contact_id": without_click["contact_id"],
        "touched_at": _utc(without_click["lead_at"]),
        "touch_type": np.where(tagged, "utm_visit", "lead_created"),
        "channel": without_click["channel"].fillna("direct").astype("str"),
        "campaign_id": without_click["campaign_id"],
        "ad_group_id": without_click["ad_group_id"] if "ad_group_id" in without_click.columns else None,
        "keyword": without_click["keyword"] if "keyword" in without_click.columns else None,
        "event_type": None,
        "source_id": without_click["contact_id"],
    })

    mapping = lead_contact_map(leads)
    events = engagements.assign(crm_contact_id=_text(engagements["contact_id"])).drop(columns=["contact_id"])
    events = events.merge(mapping, on="crm_contact_id", how="left")
    unmatched = events["contact_id"].isna() | events["occurred_at"].isna()
    matched = events[~unmatched]
    engagement_touches = pd.DataFrame({
        "contact_id": matched["contact_id"],
        "touched_at": _utc(matched["occurred_at"]),
        "touch_type": "engagement",
        "channel": matched["channel"].astype("str").str.lower().map(ENGAGEMENT_CHANNELS)
        .fillna(matched["channel"].astype("str").str.lower()).fillna("unknown").astype("str"),
        "campaign_id": None,
        "ad_group_id": None,
        "keyword": None,
        "event_type": matched["event_type"],
        "source_id": matched["engagement_id"] if "engagement_id" in matched.columns else None,
    })

    parts = [part for part in (click_touches, creation_touches, engagement_touches) if not part.empty]
    if not parts:
        parts = [click_touches]
    touches = pd.concat(parts, ignore_index=True)
    for column in ("campaign_id", "ad_group_id", "keyword", "event_type", "source_id"):
        touches[column] = touches[column].astype("str")
    touches["touched_at"] = touches["touched_at"].astype("datetime64[us, UTC]")
    touches["_type_order"] = touches["touch_type"].map(TOUCH_TYPE_ORDER).fillna(9)
    touches = touches.sort_values(["contact_id", "touched_at", "_type_order", "source_id"], kind="stable",
                                  na_position="last").reset_index(drop=True)
    touches["touch_index"] = touches.groupby("contact_id", sort=False).cumcount() + 1

    milestones = funnel[["contact_id", "lead_at", "opportunity_reached_at"]].assign(
        contact_id=_text(funnel["contact_id"]))
    touches = touches.merge(milestones, on="contact_id", how="left", sort=False)
    position = pd.Series(np.arange(len(touches)), index=touches.index)
    for flag, at in (("lead_touch", "lead_at"), ("opportunity_touch", "opportunity_reached_at")):
        before = touches["touched_at"] <= touches[at]  # False where the milestone is NULL
        last_before = position.where(before).groupby(touches["contact_id"], sort=False).transform("max")
        touches[flag] = (position == last_before).to_numpy()
    stats = {
        "touches": len(touches),
        "leads_with_touches": int(touches["contact_id"].nunique()),
        "touches_by_type": {str(k): int(v) for k, v in touches["touch_type"].value_counts().items()},
        "engagements_not_on_a_lead": int(unmatched.sum()),
        "gclid_leads_without_click_row": int(len(with_gclid) - click_touches["contact_id"].nunique()),
        "leads_without_lead_touch": int(len(leads) - touches.loc[touches["lead_touch"], "contact_id"].nunique()),
    }
    return touches[TOUCHPOINT_COLUMNS], stats


# ---------------------------------------------------------------------------- attribution


def conversion_touches(touchpoints: pd.DataFrame, funnel: pd.DataFrame, conversion: str) -> pd.DataFrame:
    """The touches attribute_all takes for one conversion ('sql' or 'customer'), one journey per lead.

    Converted journeys keep only touches at or before the conversion time (their first touch when
    all fall after it); value is 0 for SQLs and the lead's won revenue for customers.
    """
    if conversion not in ("sql", "customer"):
        raise ValueError(f"conversion must be 'sql' or 'customer', got {conversion!r}.")
    journeys = pd.DataFrame({
        "journey_id": _text(funnel["contact_id"]),
        "converted": funnel[f"reached_{conversion}"].to_numpy(dtype=bool),
        "converted_at": _utc(funnel[f"{conversion}_reached_at"]).reset_index(drop=True),
        "value": funnel["won_revenue"].to_numpy(dtype=float) if conversion == "customer" else 0.0,
    })
    touches = touchpoints.rename(columns={"contact_id": "journey_id"}).merge(journeys, on="journey_id", how="inner")
    in_time = touches["touched_at"] <= touches["converted_at"]
    any_in_time = in_time.groupby(touches["journey_id"], sort=False).transform("any")
    first = touches["touch_index"] == touches.groupby("journey_id", sort=False)["touch_index"].transform("min")
    # A conversion without a time (won deal without close date) keeps every touch.
    keep = ~touches["converted"] | touches["converted_at"].isna() | in_time | (first & ~any_in_time)
    touches = touches[keep.to_numpy()]
    touches["value"] = np.where(touches["converted"], touches["value"], 0.0)
    return touches.reset_index(drop=True)


def build_campaign_attribution(
    touchpoints: pd.DataFrame,
    funnel: pd.DataFrame,
    campaigns: pd.DataFrame,
    models=MODELS,
    half_life_days: float = 7.0,
) -> pd.DataFrame:
    """SQLs, customers and revenue per model x channel x campaign x ad group x keyword.

    campaign_id NULL rows are non-paid touches (campaign_name 'non-paid'), kept so that each
    model's sqls, customers and revenue add up to the funnel's.
    """
    _require(touchpoints, ["contact_id", "touched_at", "touch_index", "lead_touch", "opportunity_touch",
                           *ATTRIBUTION_GRAIN], "touchpoints")
    _require(funnel, ["contact_id", "reached_sql", "sql_reached_at", "reached_customer", "customer_reached_at",
                      "won_revenue"], "lead_funnel")
    credited = []
    for conversion, count_name in (("sql", "sqls"), ("customer", "customers")):
        touches = conversion_touches(touchpoints, funnel, conversion)
        credit = attribute_all(touches, models=models, by=ATTRIBUTION_GRAIN, half_life_days=half_life_days)
        credit = credit.rename(columns={"conversions": count_name, "value": "revenue"})
        if conversion == "sql":
            credit = credit.drop(columns=["revenue"])
        credited.append(credit)
    keys = ["model", *ATTRIBUTION_GRAIN]
    # Null grain values are real groups (non-paid touches): join them with a placeholder.
    placeholder = "\x00null"
    sqls, customers = (frame.assign(**{c: frame[c].astype("str").fillna(placeholder) for c in ATTRIBUTION_GRAIN})
                       for frame in credited)
    result = sqls.merge(customers, on=keys, how="outer")
    for column in ATTRIBUTION_GRAIN:
        result[column] = result[column].where(result[column] != placeholder).astype("str")
    result[["sqls", "customers", "revenue"]] = result[["sqls", "customers", "revenue"]].fillna(0.0)
    names = campaigns.assign(campaign_id=_text(campaigns["campaign_id"])).drop_duplicates("campaign_id")
    result = result.merge(names[["campaign_id", "campaign_name"]], on="campaign_id", how="left")
    result["campaign_name"] = result["campaign_name"].where(result["campaign_id"].notna(), NON_PAID).astype("str")
    result["is_paid"] = result["campaign_id"].notna()
    order = {model: i for i, model in enumerate(models)}
    result = result.sort_values(["model", "campaign_id", "ad_group_id", "keyword", "channel"],
                                key=lambda s: s.map(order) if s.name == "model" else s,
                                na_position="last", kind="stable").reset_index(drop=True)
    return result[["model", "campaign_id", "campaign_name", "ad_group_id", "keyword", "channel", "is_paid",
                   "sqls", "customers", "revenue"]]


def attribution_conservation(attribution: pd.DataFrame, funnel: pd.DataFrame) -> pd.DataFrame:
    """Per model: credited vs funnel totals of SQLs, customers and revenue, and whether they match."""
    totals = attribution.groupby("model", sort=False)[["sqls", "customers", "revenue"]].sum()
    expected = {"sqls": float(funnel["reached_sql"].sum()), "customers": float(funnel["reached_customer"].sum()),
                "revenue": float(funnel.loc[funnel["reached_customer"], "won_revenue"].sum())}
    out = totals.reset_index()
    ok = np.ones(len(out), dtype=bool)
    for column, value in expected.items():
        out[f"expected_{column}"] = value
        ok &= np.isclose(out[column], value, rtol=1e-9, atol=1e-6)
    out["conserved"] = ok
    return out


def model_comparison(attribution: pd.DataFrame, measure: str = "sqls") -> pd.DataFrame:
    """Campaign x model table of one measure (paid campaigns, plus the non-paid total)."""
    table = attribution.pivot_table(index="campaign_name", columns="model", values=measure, aggfunc="sum",
                                    sort=False, dropna=False)
    models = [model for model in MODELS if model in table.columns]
    return table[models].sort_values(models[0] if "last_touch" not in models else "last_touch", ascending=False)


# ---------------------------------------------------------------------------- cost per SQL


COST_PER_SQL_COLUMNS = [
    "date", "campaign_id", "campaign_name", "channel", "spend", "clicks", "leads", "gclid_leads", "utm_leads",
    "mqls", "sqls", "customers", "revenue", "cost_per_lead", "cost_per_mql", "cost_per_sql", "cost_per_customer",
    "sql_rate", "mql_to_sql_rate", "roas",
]


def spend_window(campaign_performance: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last date that has spend data (None when there is none)."""
    if campaign_performance.empty:
        return None
    dates = pd.to_datetime(campaign_performance["date"])
    return dates.min().normalize(), dates.max().normalize()


def build_cost_per_sql(
    funnel: pd.DataFrame, campaign_performance: pd.DataFrame, campaigns: pd.DataFrame
) -> tuple[pd.DataFrame, dict]:
    """Date x campaign spend next to the outcomes of the leads created that day (lead-creation cohort).

    Rows cover the dates campaign_performance covers; a campaign-day with leads but no spend row
    has spend 0; leads created outside the spend window are left out and counted in the stats.
    """
    _require(funnel, ["contact_id", "lead_date", "campaign_id", "reached_mql", "reached_sql", "reached_customer",
                      "won_revenue"], "lead_funnel")
    _require(campaign_performance, ["date", "campaign_id", "clicks", "cost"], "campaign_performance")
    _require(campaigns, ["campaign_id", "campaign_name", "channel"], "campaigns")
    spend = campaign_performance.assign(
        date=pd.to_datetime(campaign_performance["date"]).dt.normalize().astype("datetime64[us]"),
        campaign_id=_text(campaign_performance["campaign_id"]),
    ).groupby(["date", "campaign_id"], as_index=False).agg(spend=("cost", "sum"), clicks=("clicks", "sum"))

    paid = funnel[funnel["campaign_id"].notna()]
    match = paid["match_source"].astype("str") if "match_source" in paid.columns else pd.Series("", index=paid.index)
    cohort = pd.DataFrame({
        "date": pd.to_datetime(paid["lead_date"]).astype("datetime64[us]"),
        "campaign_id": _text(paid["campaign_id"]),
        "leads": 1,
        "gclid_leads": (match == "gclid").astype(int),
        "utm_leads": (match == "utm").astype(int),
        "mqls": paid["reached_mql"].astype(int),
        "sqls": paid["reached_sql"].astype(int),
        "customers": paid["reached_customer"].astype(int),
        "revenue": paid["won_revenue"].where(paid["reached_customer"], 0.0).astype(float),
    })
    window = spend_window(campaign_performance)
    inside = (cohort["date"] >= window[0]) & (cohort["date"] <= window[1]) if window else cohort["date"].isna()
    outcomes = cohort[inside].groupby(["date", "campaign_id"], as_index=False).sum()

    table = spend.merge(outcomes, on=["date", "campaign_id"], how="outer")
    counts = ["clicks", "leads", "gclid_leads", "utm_leads", "mqls", "sqls", "customers"]
    table[counts] = table[counts].fillna(0).astype("int64")
    table[["spend", "revenue"]] = table[["spend", "revenue"]].fillna(0.0)
    info = campaigns.assign(campaign_id=_text(campaigns["campaign_id"])).drop_duplicates("campaign_id")
    info = info.assign(channel=google_channel(info["channel"]))[["campaign_id", "campaign_name", "channel"]]
    table = table.merge(info, on="campaign_id", how="left")
    table = add_cost_ratios(table)
    table = table.sort_values(["date", "campaign_id"], kind="stable").reset_index(drop=True)
    stats = {
        "spend_window": f"{window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d}" if window else "no spend data",
        "paid_leads_in_window": int(inside.sum()),
        "paid_leads_outside_spend_window": int((~inside).sum()),
        "leads_without_campaign": int(funnel["campaign_id"].isna().sum()),
        "leads_on_campaign_days_without_spend": int(table.loc[table["spend"] == 0, "leads"].sum()),
    }
    return table[COST_PER_SQL_COLUMNS], stats


def add_cost_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Cost per lead/MQL/SQL/customer, SQL and MQL-to-SQL rates and ROAS; NULL on a zero denominator."""
    out = table.copy()
    out["cost_per_lead"] = safe_ratio(out["spend"], out["leads"])
    out["cost_per_mql"] = safe_ratio(out["spend"], out["mqls"])
    out["cost_per_sql"] = safe_ratio(out["spend"], out["sqls"])
    out["cost_per_customer"] = safe_ratio(out["spend"], out["customers"])
    out["sql_rate"] = safe_ratio(out["sqls"], out["leads"])
    out["mql_to_sql_rate"] = safe_ratio(out["sqls"], out["mqls"])
    out["roas"] = safe_ratio(out["revenue"], out["spend"])
    return out


def campaign_totals(cost_per_sql: pd.DataFrame) -> pd.DataFrame:
    """The whole window per campaign, ratios recomputed from the sums (never averaged)."""
    sums = cost_per_sql.groupby(["campaign_id", "campaign_name"], as_index=False, dropna=False)[
        ["spend", "clicks", "leads", "mqls", "sqls", "customers", "revenue"]].sum()
    return add_cost_ratios(sums)


def weekly_cost_per_sql(cost_per_sql: pd.DataFrame) -> pd.DataFrame:
    """Week (starting Monday) x campaign spend, SQLs and cost per SQL of that week's lead cohorts."""
    dates = pd.to_datetime(cost_per_sql["date"])
    weeks = cost_per_sql.assign(week=(dates - pd.to_timedelta(dates.dt.day_of_week, unit="D")).dt.normalize())
    sums = weeks.groupby(["week", "campaign_id", "campaign_name"], as_index=False, dropna=False)[
        ["spend", "leads", "sqls"]].sum()
    sums["cost_per_sql"] = safe_ratio(sums["spend"], sums["sqls"])
    return sums


def spend_reconciliation(
    cost_per_sql: pd.DataFrame, campaign_performance: pd.DataFrame, ad_performance: pd.DataFrame,
    tolerance: float = 0.005,
) -> pd.DataFrame:
    """Date x campaign spend of the mart, campaign_performance and ad_performance; rows that differ by a cent or more."""
    def daily(frame: pd.DataFrame, column: str, name: str) -> pd.DataFrame:
        keyed = frame.assign(date=pd.to_datetime(frame["date"]).dt.normalize().astype("datetime64[us]"),
                             campaign_id=_text(frame["campaign_id"]))
        return keyed.groupby(["date", "campaign_id"], as_index=False)[column].sum().rename(columns={column: name})

    joined = daily(cost_per_sql, "spend", "mart_spend").merge(
        daily(campaign_performance, "cost", "campaign_spend"), on=["date", "campaign_id"], how="outer").merge(
        daily(ad_performance, "cost", "ad_spend"), on=["date", "campaign_id"], how="outer")
    values = joined[["mart_spend", "campaign_spend", "ad_spend"]].fillna(0.0)
    spread = values.max(axis=1) - values.min(axis=1)
    return joined[(spread >= tolerance).to_numpy()].reset_index(drop=True).assign(
        difference=spread[(spread >= tolerance).to_numpy()].to_numpy())


# ---------------------------------------------------------------------------- channel economics


def build_channel_economics(
    funnel: pd.DataFrame,
    campaign_performance: pd.DataFrame,
    campaigns: pd.DataFrame,
    gross_margin: float = 0.8,
    monthly_churn: float = 0.02,
    contract_months: float = 12.0,
) -> pd.DataFrame:
    """Per lead channel: spend, customers, CAC, LTV, LTV:CAC and payback months.

    spend: campaign_performance over its window, by the campaign's channel (Search -> paid_search,
      Display -> paid_display, YouTube -> paid_video, Performance Max -> paid_pmax).
    customers: leads of the channel created inside the spend window that became customers
      (the cohort rule of cost_per_sql); cac = spend / customers, NULL without spend (a
      non-paid channel's cost is not tracked here) or without customers.
    arpa_monthly: won revenue per paying customer of the channel (every lead, any date) /
      contract_months (deal amounts are annual contract values when contract_months = 12).
    ltv = arpa_monthly x gross_margin / monthly_churn; payback_months = cac / (arpa_monthly x gross_margin).
    """
    for name, value in (("gross_margin", gross_margin), ("monthly_churn", monthly_churn)):
        if not (isinstance(value, (int, float)) and np.isfinite(value) and 0 < value <= 1):
            raise ValueError(f"{name} must be a fraction in (0, 1], got {value!r} (e.g. 0.8 for 80%).")
    if not (isinstance(contract_months, (int, float)) and np.isfinite(contract_months) and contract_months > 0):
        raise ValueError(f"contract_months must be a positive number of months, got {contract_months!r}.")
    _require(funnel, ["contact_id", "lead_date", "channel", "reached_sql", "reached_customer", "won_revenue"],
             "lead_funnel")
    _require(campaign_performance, ["date", "campaign_id", "cost"], "campaign_performance")
    _require(campaigns, ["campaign_id", "channel"], "campaigns")

    google = campaigns.assign(campaign_id=_text(campaigns["campaign_id"])).drop_duplicates("campaign_id")
    channel_of = pd.Series(google_channel(google["channel"]).to_numpy(), index=google["campaign_id"].to_numpy())
    spend = (campaign_performance.assign(channel=_text(campaign_performance["campaign_id"]).map(channel_of)
                                         .fillna("paid_other"))
             .groupby("channel")["cost"].sum().rename("spend"))

    leads = funnel.assign(channel=funnel["channel"].fillna("direct").astype("str"))
    window = spend_window(campaign_performance)
    dates = pd.to_datetime(leads["lead_date"])
    in_window = (dates >= window[0]) & (dates <= window[1]) if window else pd.Series(True, index=leads.index)
    cohort = leads[in_window.to_numpy()].groupby("channel").agg(
        leads=("contact_id", "size"), sqls=("reached_sql", "sum"), customers=("reached_customer", "sum"))
    paying = leads[leads["reached_customer"] & (leads["won_revenue"] > 0)]
    revenue = paying.groupby("channel").agg(revenue=("won_revenue", "sum"), paying_customers=("contact_id", "size"))

    table = pd.concat([spend, cohort, revenue], axis=1).rename_axis("channel").reset_index()
    table[["leads", "sqls", "customers", "paying_customers"]] = (
        table[["leads", "sqls", "customers", "paying_customers"]].fillna(0).astype("int64"))
    table[["spend", "revenue"]] = table[["spend", "revenue"]].fillna(0.0)
    table["is_paid"] = table["channel"].str.startswith("paid_") | (table["spend"] > 0)
    table["arpa_monthly"] = safe_ratio(table["revenue"], table["paying_customers"]) / contract_months
    table["cac"] = np.where(table["spend"] > 0, safe_ratio(table["spend"], table["customers"]), np.nan)
    table["ltv"] = table["arpa_monthly"] * gross_margin / monthly_churn
    table["ltv_to_cac"] = safe_ratio(table["ltv"], table["cac"])
    table["payback_months"] = safe_ratio(table["cac"], table["arpa_monthly"] * gross_margin)
    table["gross_margin"] = float(gross_margin)
    table["monthly_churn"] = float(monthly_churn)
    table = table.sort_values(["is_paid", "spend", "channel"], ascending=[False, False, True]).reset_index(drop=True)
    return table[["channel", "is_paid", "spend", "leads", "sqls", "customers", "paying_customers", "revenue",
                  "arpa_monthly", "cac", "ltv", "ltv_to_cac", "payback_months", "gross_margin", "monthly_churn"]]


# ---------------------------------------------------------------------------- checks


def infinite_values(frame: pd.DataFrame) -> dict[str, int]:
    """Numeric columns holding +/-inf, with their counts (empty when there are none)."""
    numeric = frame.select_dtypes(include=[np.number])
    counts = np.isinf(numeric.to_numpy(dtype=float, na_value=np.nan)).sum(axis=0) if len(numeric.columns) else []
    return {column: int(count) for column, count in zip(numeric.columns, counts) if count}


def zero_denominator_violations(frame: pd.DataFrame, ratios: dict[str, str | tuple[str, ...]]) -> dict[str, int]:
    """Ratios that are not NULL where a denominator (one column or several) is zero or NULL, with row counts."""
    violations = {}
    for ratio, denominators in ratios.items():
        denominators = (denominators,) if isinstance(denominators, str) else tuple(denominators)
        if ratio not in frame.columns or any(d not in frame.columns for d in denominators):
            continue
        zero = np.zeros(len(frame), dtype=bool)
        for denominator in denominators:
            den = pd.to_numeric(frame[denominator], errors="coerce")
            zero |= (den.isna() | (den == 0)).to_numpy()
        bad = int((zero & frame[ratio].notna().to_numpy()).sum())
        if bad:
            violations[ratio] = bad
    return violations


# ---------------------------------------------------------------------------- charts


def png_markdown(figure, alt: str) -> str:
    """A matplotlib Figure as an inline markdown image (base64 PNG data URI)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"


def funnel_chart(funnel: pd.DataFrame) -> str:
    """Horizontal bars: leads reaching each stage, with the step conversion rate."""
    from matplotlib.figure import Figure

    counts = [int(funnel[f"reached_{stage}"].sum()) for stage in STAGES]
    figure = Figure(figsize=(6, 2.6))
    axes = figure.subplots()
    axes.barh(list(STAGES)[::-1], counts[::-1], color="#4C72B0")
    for i, (stage, count) in enumerate(zip(STAGES, counts)):
        previous = counts[i - 1] if i else None
        rate = f" ({count / previous:.0%})" if previous else ""
        axes.text(count, len(STAGES) - 1 - i, f" {count}{rate}", va="center", fontsize=8)
    axes.set_xlim(0, max(counts + [1]) * 1.25)
    axes.set_title("Lead funnel (share of previous stage)", fontsize=9)
    axes.tick_params(labelsize=8)
    return png_markdown(figure, "funnel")


def cost_per_sql_trend_chart(weekly: pd.DataFrame) -> str:
    """Weekly cost per SQL per campaign (lead cohorts of the week); gaps are weeks without SQLs."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.2))
    axes = figure.subplots()
    if not weekly.empty:
        table = weekly.pivot_table(index="week", columns="campaign_name", values="cost_per_sql", dropna=False)
        for name in table.columns:
            axes.plot(table.index, table[name], marker="o", markersize=2.5, linewidth=1.2, label=str(name))
        axes.legend(fontsize=6, ncol=2, loc="upper left", frameon=False)
    axes.set_title("Cost per SQL by lead-creation week (recent weeks are still maturing)", fontsize=9)
    axes.set_ylabel("cost per SQL", fontsize=8)
    axes.tick_params(labelsize=7)
    figure.autofmt_xdate()
    return png_markdown(figure, "cost per SQL trend")
