"""Leads: normalized, deduplicated, click-joined and enriched leads, the scoring model and the scores."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    MetadataValue,
    asset,
    asset_check,
)

from gtm_assets import contracts
from gtm_assets import leads as lead_logic
from gtm_assets.resources.enrichment import FirmographicsSource
from gtm_assets.warehouse.io_manager import WarehouseResource, table_preview


@asset(
    group_name="model",
    ins={
        "contacts": AssetIn(key=AssetKey(["hubspot", "contacts"])),
        "ad_clicks": AssetIn(key=AssetKey(["google_ads", "ad_clicks"])),
        "campaigns": AssetIn(key=AssetKey(["google_ads", "campaigns"])),
    },
    kinds={"pandas"},
    description="One row per lead: contacts normalized and deduplicated by e-mail (earliest created wins, "
    "stage dates take the earliest), joined to their ad click by gclid, else to a campaign by UTM, with "
    "a channel. Contacts with an invalid e-mail are quarantined (table quarantine).",
)
def leads(
    context: AssetExecutionContext,
    contacts: pd.DataFrame,
    ad_clicks: pd.DataFrame,
    campaigns: pd.DataFrame,
    warehouse: WarehouseResource,
) -> pd.DataFrame:
    built, quarantined = lead_logic.build_leads(contacts, ad_clicks, campaigns)
    if not quarantined.empty:
        records = contracts.quarantine_records("leads", quarantined, ("contact_id",))
        records["quarantined_at"] = pd.Timestamp.now(tz="UTC")
        records["run_id"] = context.run.run_id
        warehouse.get().write("quarantine", records, key=["source_table", "record_key"])
        context.log.warning(f"leads: {len(quarantined)} contact(s) quarantined, e.g. {quarantined['reason'].iloc[0]}")
    match_rate = lead_logic.gclid_match_rate(built)
    context.add_output_metadata({
        "leads": len(built),
        "contacts_in": len(contacts),
        "duplicates_merged": int((built["merged_contacts"] - 1).sum()),
        "quarantined": len(quarantined),
        "gclid_match_rate": MetadataValue.float(round(match_rate, 4)) if match_rate is not None else None,
        "matched_by": MetadataValue.json({str(k): int(v) for k, v in built["match_source"].value_counts().items()}),
        "channels": MetadataValue.json({str(k): int(v) for k, v in built["channel"].value_counts().items()}),
        "preview": table_preview(built),
    })
    return built


@asset(
    group_name="model",
    kinds={"pandas"},
    description="Leads with e-mail domain type (business/free/disposable, from maintained lists) and "
    "firmographics (company size, industry, country, tech stack) from the enrichment resource.",
)
def enriched_leads(context: AssetExecutionContext, leads: pd.DataFrame, firmographics: FirmographicsSource) -> pd.DataFrame:
    enriched = lead_logic.build_enriched_leads(leads, firmographics.lookup)
    context.add_output_metadata({
        "leads": len(enriched),
        "enriched_share": MetadataValue.float(round(float(enriched["company_size"].notna().mean()), 4) if len(enriched) else 0.0),
        "email_domain_types": MetadataValue.json({str(k): int(v) for k, v in enriched["email_domain_type"].value_counts().items()}),
        "preview": table_preview(enriched),
    })
    return enriched


@asset_check(asset=enriched_leads, description="One lead per normalized e-mail and per contact id.")
def one_lead_per_person(warehouse: WarehouseResource) -> AssetCheckResult:
    dup = warehouse.get().query(
        "SELECT COUNT(*) - COUNT(DISTINCT email) AS dup_emails, COUNT(*) - COUNT(DISTINCT contact_id) AS dup_ids "
        "FROM enriched_leads"
    ).iloc[0]
    return AssetCheckResult(passed=int(dup["dup_emails"]) == 0 and int(dup["dup_ids"]) == 0,
                            metadata={"duplicate_emails": int(dup["dup_emails"]), "duplicate_ids": int(dup["dup_ids"])})


assets: list = [leads, enriched_leads]
checks: list = [one_lead_per_person]
