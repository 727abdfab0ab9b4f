"""Marts: lead funnel, touchpoints, campaign attribution, cost per SQL and channel economics, with their checks.

Thin assets: read upstream tables, call gtm_assets.marts, describe the result. The business
rules (skipped stages, cohort rule, non-paid credit, NULL on zero denominators) live and are
documented in gtm_assets.marts.
"""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    Config,
    MetadataValue,
    asset,
    asset_check,
)
from pydantic import Field

from gtm_assets import marts
from gtm_assets.attribution import MODELS
from gtm_assets.warehouse.io_manager import WarehouseResource, table_preview

GOOGLE_ADS = {
    "campaigns": AssetIn(key=AssetKey(["google_ads", "campaigns"])),
    "campaign_performance": AssetIn(key=AssetKey(["google_ads", "campaign_performance"])),
    "ad_clicks": AssetIn(key=AssetKey(["google_ads", "ad_clicks"])),
}
HUBSPOT = {
    "deals": AssetIn(key=AssetKey(["hubspot", "deals"])),
    "engagements": AssetIn(key=AssetKey(["hubspot", "engagements"])),
}


def _md(frame: pd.DataFrame, digits: int = 2) -> MetadataValue:
    if frame.empty:
        return MetadataValue.md("_no rows_")
    return MetadataValue.md(frame.round(digits).to_markdown(index=False))


@asset(
    group_name="model",
    ins={"deals": HUBSPOT["deals"]},
    kinds={"pandas"},
    description="One row per lead: stage dates as recorded, reached flags, durations and won revenue. "
    "A stage is reached when it or a later stage is dated (or, for customer, the lead has a won deal). "
    "A skipped stage (e.g. SQL without MQL) stays NULL in its own column, counts as reached, is named in "
    "skipped_stages, and its *_reached_at takes the next dated stage's date. A stage dated before an "
    "earlier one is a regression (regressed_stages); negative durations are NULL.",
)
def lead_funnel(context: AssetExecutionContext, enriched_leads: pd.DataFrame, deals: pd.DataFrame) -> pd.DataFrame:
    funnel = marts.build_lead_funnel(enriched_leads, deals)
    _, deal_issues = marts.won_revenue(enriched_leads, deals)
    summary = marts.funnel_summary(funnel)
    context.add_output_metadata({
        "rows": len(funnel),
        **{key: value for key, value in summary.items() if key != "won_revenue"},
        "won_revenue": MetadataValue.float(round(summary["won_revenue"], 2)),
        "deal_issues": MetadataValue.json(deal_issues),
        "median_days_to_sql": MetadataValue.float(round(float(funnel["days_to_sql"].median()), 2))
        if funnel["days_to_sql"].notna().any() else None,
        "funnel": MetadataValue.md(marts.funnel_chart(funnel)),
        "preview": table_preview(funnel),
    })
    return funnel


@asset(
    group_name="model",
    ins={"ad_clicks": GOOGLE_ADS["ad_clicks"], "engagements": HUBSPOT["engagements"], "campaigns": GOOGLE_ADS["campaigns"]},
    kinds={"pandas"},
    description="Every known touch of every lead in time order: its ad click (by gclid), else the lead-creation "
    "touch at lead_at (utm_visit when UTM-tagged, else lead_created), and its CRM engagements (any merged "
    "contact id). lead_touch = last touch at or before lead_at; opportunity_touch = last touch at or before "
    "the opportunity. Only ad clicks and UTM-matched touches carry a campaign.",
)
def touchpoints(
    context: AssetExecutionContext,
    enriched_leads: pd.DataFrame,
    lead_funnel: pd.DataFrame,
    ad_clicks: pd.DataFrame,
    engagements: pd.DataFrame,
    campaigns: pd.DataFrame,
) -> pd.DataFrame:
    touches, stats = marts.build_touchpoints(enriched_leads, lead_funnel, ad_clicks, engagements, campaigns)
    if stats["engagements_not_on_a_lead"]:
        context.log.info(f"touchpoints: {stats['engagements_not_on_a_lead']} engagement(s) belong to no lead "
                         "(quarantined or unknown contacts) and are left out")
    context.add_output_metadata({
        "rows": len(touches),
        **{key: value for key, value in stats.items() if key != "touches_by_type"},
        "touches_by_type": MetadataValue.json(stats["touches_by_type"]),
        "touches_per_lead": MetadataValue.float(round(len(touches) / max(stats["leads_with_touches"], 1), 2)),
        "preview": table_preview(touches, rows=8),
    })
    return touches


class AttributionConfig(Config):
    half_life_days: float = Field(default=7.0, gt=0, description="time_decay half-life in days (Google's default: 7).")


@asset(
    group_name="marts",
    ins={"campaigns": GOOGLE_ADS["campaigns"]},
    kinds={"pandas"},
    description="SQLs, customers and won revenue credited to channel x campaign x ad group x keyword under each "
    f"model ({', '.join(MODELS)}). Journeys are leads; touches after the conversion do not count. Non-paid "
    "touches keep their channel with campaign_id NULL (campaign_name 'non-paid'), so each model's totals equal "
    "the funnel's SQLs, customers and revenue.",
)
def campaign_attribution(
    context: AssetExecutionContext,
    config: AttributionConfig,
    touchpoints: pd.DataFrame,
    lead_funnel: pd.DataFrame,
    campaigns: pd.DataFrame,
) -> pd.DataFrame:
    credited = marts.build_campaign_attribution(touchpoints, lead_funnel, campaigns, half_life_days=config.half_life_days)
    conservation = marts.attribution_conservation(credited, lead_funnel)
    by_sqls = marts.model_comparison(credited, "sqls").reset_index()
    by_revenue = marts.model_comparison(credited, "revenue").reset_index()
    context.add_output_metadata({
        "rows": len(credited),
        "models": ", ".join(MODELS),
        "half_life_days": config.half_life_days,
        "total_sqls": MetadataValue.float(float(lead_funnel["reached_sql"].sum())),
        "total_customers": MetadataValue.float(float(lead_funnel["reached_customer"].sum())),
        "sqls_by_model": _md(by_sqls, 1),
        "revenue_by_model": _md(by_revenue, 0),
        "paid_share_of_sqls_by_model": MetadataValue.json({
            model: round(float(share), 4) for model, share in
            (credited[credited["is_paid"]].groupby("model")["sqls"].sum()
             / credited.groupby("model")["sqls"].sum().where(lambda s: s > 0)).items()
        }),
        "conserved": bool(conservation["conserved"].all()),
        "preview": table_preview(credited),
    })
    return credited


@asset(
    group_name="marts",
    ins={"campaign_performance": GOOGLE_ADS["campaign_performance"], "campaigns": GOOGLE_ADS["campaigns"]},
    kinds={"pandas"},
    description="One row per date x campaign. spend and clicks from campaign_performance (the authoritative "
    "spend). COHORT RULE: leads, MQLs, SQLs, customers and revenue count on the lead's creation date, against "
    "that day's spend of the campaign the lead was matched to (gclid first, UTM second), even when the SQL "
    "happens days later, so recent days are still maturing. Rows cover the dates with spend data. "
    "cost_per_lead/mql/sql/customer, sql_rate, mql_to_sql_rate and roas are NULL when their denominator is 0.",
)
def cost_per_sql(
    context: AssetExecutionContext,
    lead_funnel: pd.DataFrame,
    campaign_performance: pd.DataFrame,
    campaigns: pd.DataFrame,
) -> pd.DataFrame:
    table, stats = marts.build_cost_per_sql(lead_funnel, campaign_performance, campaigns)
    totals = marts.campaign_totals(table)
    ranked = totals[totals["cost_per_sql"].notna()].sort_values("cost_per_sql")
    shown = ["campaign_name", "spend", "leads", "sqls", "cost_per_sql", "sql_rate", "roas"]
    context.add_output_metadata({
        "rows": len(table),
        **stats,
        "spend": MetadataValue.float(round(float(table["spend"].sum()), 2)),
        "sqls": int(table["sqls"].sum()),
        "cost_per_sql_overall": MetadataValue.float(round(float(marts.safe_ratio(table["spend"].sum(), table["sqls"].sum())[0]), 2))
        if table["sqls"].sum() else None,
        "best_campaigns_by_cost_per_sql": _md(ranked.head(5)[shown]),
        "worst_campaigns_by_cost_per_sql": _md(ranked.tail(5).iloc[::-1][shown]),
        "campaigns_without_sqls": ", ".join(totals.loc[totals["cost_per_sql"].isna(), "campaign_name"].astype(str)) or "none",
        "cost_per_sql_trend": MetadataValue.md(marts.cost_per_sql_trend_chart(marts.weekly_cost_per_sql(table))),
        "preview": table_preview(table),
    })
    return table


class ChannelEconomicsConfig(Config):
    gross_margin: float = Field(default=0.8, gt=0, le=1, description="Gross margin on subscription revenue (0..1].")
    monthly_churn: float = Field(default=0.02, gt=0, le=1, description="Share of customers lost per month (0..1].")
    contract_months: float = Field(
        default=12.0, gt=0,
        description="Months one won deal amount pays for: 12 when deal amounts are annual contract values.",
    )


@asset(
    group_name="marts",
    ins={"campaign_performance": GOOGLE_ADS["campaign_performance"], "campaigns": GOOGLE_ADS["campaigns"]},
    kinds={"pandas"},
    description="One row per lead channel: spend (campaign_performance, Google channel mapped to paid_search / "
    "paid_display / paid_video / paid_pmax), customers from leads created in the spend window, "
    "CAC = spend / customers (NULL without spend or customers), ARPA = won revenue per paying customer / "
    "contract_months (deal amounts are annual contract values), LTV = ARPA x gross margin / monthly churn, "
    "LTV:CAC and payback months = CAC / (ARPA x gross margin). Assumptions are asset config.",
)
def channel_economics(
    context: AssetExecutionContext,
    config: ChannelEconomicsConfig,
    lead_funnel: pd.DataFrame,
    campaign_performance: pd.DataFrame,
    campaigns: pd.DataFrame,
) -> pd.DataFrame:
    table = marts.build_channel_economics(
        lead_funnel, campaign_performance, campaigns,
        gross_margin=config.gross_margin, monthly_churn=config.monthly_churn, contract_months=config.contract_months,
    )
    paid = table[table["spend"] > 0]
    context.add_output_metadata({
        "rows": len(table),
        "assumptions": MetadataValue.md(
            f"- gross margin **{config.gross_margin:.0%}**, monthly churn **{config.monthly_churn:.1%}** "
            f"(expected lifetime {1 / config.monthly_churn:.0f} months)\n"
            f"- ARPA = won revenue per paying customer / {config.contract_months:g} months "
            "(deal amounts taken as annual contract values)\n"
            "- CAC counts Google Ads spend only; channels without tracked spend have CAC NULL"
        ),
        "paid_cac": MetadataValue.float(round(float(marts.safe_ratio(paid["spend"].sum(), paid["customers"].sum())[0]), 2))
        if paid["customers"].sum() else None,
        "economics": _md(table[["channel", "spend", "customers", "arpa_monthly", "cac", "ltv", "ltv_to_cac",
                                "payback_months"]]),
    })
    return table


# ---------------------------------------------------------------------------- checks


@asset_check(
    asset=cost_per_sql,
    additional_deps=[AssetKey(["google_ads", "campaign_performance"]), AssetKey(["google_ads", "ad_performance"])],
    description="Spend per date x campaign in cost_per_sql equals campaign_performance and ad_performance, to the cent.",
)
def cost_per_sql_spend_reconciles(warehouse: WarehouseResource) -> AssetCheckResult:
    store = warehouse.get()
    mismatches = marts.spend_reconciliation(
        store.read("cost_per_sql"), store.read("campaign_performance"), store.read("ad_performance"))
    return AssetCheckResult(
        passed=mismatches.empty,
        metadata={"mismatched_campaign_days": len(mismatches),
                  "worst_difference": float(mismatches["difference"].max()) if len(mismatches) else 0.0,
                  "examples": _md(mismatches.head(10))},
    )


@asset_check(
    asset=campaign_attribution,
    additional_deps=[AssetKey(["lead_funnel"])],
    description="Under every model, credited SQLs, customers and revenue equal the funnel's totals.",
)
def attribution_totals_match_funnel(warehouse: WarehouseResource) -> AssetCheckResult:
    store = warehouse.get()
    conservation = marts.attribution_conservation(store.read("campaign_attribution"), store.read("lead_funnel"))
    return AssetCheckResult(
        passed=bool(conservation["conserved"].all()) and len(conservation) == len(MODELS),
        metadata={"models_checked": len(conservation), "totals": _md(conservation)},
    )


def _no_infinities_check(asset_def, table: str):
    @asset_check(asset=asset_def, name="no_infinite_values", description=f"No +/-inf in any numeric column of {table}.")
    def _check(warehouse: WarehouseResource) -> AssetCheckResult:
        infinite = marts.infinite_values(warehouse.get().read(table))
        return AssetCheckResult(passed=not infinite, metadata={"columns_with_infinity": MetadataValue.json(infinite)})

    return _check


def _zero_denominator_check(asset_def, table: str, ratios: dict):
    @asset_check(asset=asset_def, name="null_where_denominator_is_zero",
                 description=f"Ratios of {table} are NULL wherever their denominator is 0: "
                 + ", ".join(f"{r} ({d if isinstance(d, str) else ' or '.join(d)})" for r, d in ratios.items()))
    def _check(warehouse: WarehouseResource) -> AssetCheckResult:
        violations = marts.zero_denominator_violations(warehouse.get().read(table), ratios)
        return AssetCheckResult(passed=not violations, severity=AssetCheckSeverity.ERROR,
                                metadata={"violations": MetadataValue.json(violations)})

    return _check


assets: list = [lead_funnel, touchpoints, campaign_attribution, cost_per_sql, channel_economics]
checks: list = [
    cost_per_sql_spend_reconciles,
    attribution_totals_match_funnel,
    *(_no_infinities_check(a, a.key.path[-1]) for a in assets),
    _zero_denominator_check(cost_per_sql, "cost_per_sql", marts.COST_PER_SQL_RATIOS),
    _zero_denominator_check(channel_economics, "channel_economics", marts.CHANNEL_ECONOMICS_RATIOS),
]
