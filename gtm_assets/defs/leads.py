"""Leads: normalized, deduplicated, click-joined and enriched leads, the scoring model and the scores."""

import base64
from datetime import datetime, timezone

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    Config,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    MetadataValue,
    asset,
    asset_check,
)

from pydantic import Field

from gtm_assets import leads as lead_logic
from gtm_assets import scoring
from gtm_assets.resources.enrichment import FirmographicsSource
from gtm_assets.warehouse.io_manager import WarehouseResource, gtm_home, record_quarantine, table_preview

# What the model may know about a lead at scoring time: fit, source and (from engagements) intent.
MODEL_INPUT_COLUMNS = [
    "contact_id", "lead_at", "sql_at", "email_domain_type", "company_size", "employees", "industry", "country",
    "tech_stack", "channel", "campaign_id", "ad_group_id", "keyword", "match_source", "utm_source", "utm_medium",
]


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
    record_quarantine(context, warehouse, "leads", quarantined, ("contact_id",))
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


class LeadModelConfig(Config):
    cutoff_days: float = Field(default=7, description="Engagements in the first N days after lead creation are features.")
    outcome_days: float = Field(default=30, description="Label: the lead reached SQL within N days of creation.")
    holdout_fraction: float = Field(default=0.25, description="Newest share of labelled leads held out for evaluation.")


def _png_markdown(png: bytes, alt: str) -> MetadataValue:
    return MetadataValue.md(f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})")


def _model_inputs(enriched: pd.DataFrame) -> pd.DataFrame:
    return enriched[[c for c in MODEL_INPUT_COLUMNS if c in enriched.columns]]


@asset(
    group_name="model",
    ins={"engagements": AssetIn(key=AssetKey(["hubspot", "engagements"]))},
    kinds={"scikitlearn"},
    description="The lead-scoring model: trained on leads whose outcome (SQL within outcome_days) is known, "
    "evaluated on the newest leads (time-based holdout) beside the points score (page view 10, content "
    "download 20, demo booked 40). Features: firmographics, source and engagement before the cut-off only. "
    "Falls back to the points score when there is too little labelled history. One row per training run.",
)
def lead_scoring_model(context: AssetExecutionContext, config: LeadModelConfig, enriched_leads: pd.DataFrame,
                       engagements: pd.DataFrame) -> pd.DataFrame:
    as_of = pd.to_datetime(enriched_leads["lead_at"], utc=True).max()
    frame = scoring.training_frame(_model_inputs(enriched_leads), engagements, cutoff_days=config.cutoff_days,
                                   outcome_days=config.outcome_days, as_of=as_of)
    train, holdout = scoring.time_split(frame, scoring.TIME_COLUMN, config.holdout_fraction)
    train_x, train_y = scoring.split_xy(train)
    holdout_x, holdout_y = scoring.split_xy(holdout)
    evaluated = scoring.fit_lead_model(train_x, train_y)
    points = scoring.rule_score(holdout_x)
    baseline_metrics = scoring.evaluate_scores(holdout_y, points, probabilities=False)
    metadata: dict = {
        "status": evaluated.status,
        "reason": evaluated.reason,
        "labelled_leads": len(frame),
        "train_rows": len(train),
        "holdout_rows": len(holdout),
        "excluded_leads": MetadataValue.json(frame.attrs.get("excluded_leads", {})),
    }
    model_metrics = {}
    final = evaluated
    if not evaluated.is_fallback:
        model_scores = evaluated.model.predict_proba(holdout_x)[:, 1]
        model_metrics = scoring.evaluate_scores(holdout_y, model_scores, probabilities=True)
        metadata["calibration_plot"] = _png_markdown(
            scoring.calibration_plot_png(holdout_y, model_scores, points), "calibration")
        metadata["lift_chart"] = _png_markdown(scoring.lift_chart_png(holdout_y, model_scores, points), "lift")
        # Serve a model refit on every labelled lead; the figures above are from the holdout.
        final = scoring.fit_lead_model(*scoring.split_xy(frame))
    comparison = pd.DataFrame({"model": model_metrics, "points": baseline_metrics}).reindex(
        ["roc_auc", "pr_auc", "top_decile_lift", "brier", "n", "positives", "base_rate"])
    metadata["holdout_metrics"] = MetadataValue.md(comparison.to_markdown())
    for name in ("roc_auc", "pr_auc", "top_decile_lift", "brier"):
        if model_metrics.get(name) is not None:
            metadata[f"model_{name}"] = MetadataValue.float(float(model_metrics[name]))
        if baseline_metrics.get(name) is not None:
            metadata[f"points_{name}"] = MetadataValue.float(float(baseline_metrics[name]))

    trained_at = datetime.now(timezone.utc)
    window = f"{frame[scoring.TIME_COLUMN].min():%Y-%m-%d}..{frame[scoring.TIME_COLUMN].max():%Y-%m-%d}" if len(frame) else ""
    version = trained_at.strftime("%Y%m%dT%H%M%SZ")
    path = None
    if not final.is_fallback:
        path = str(scoring.save_model(final.model, gtm_home() / "models" / f"lead_model_{version}.joblib",
                                      {"version": version, "training_window": window, "run_id": context.run.run_id}))
        metadata["model_path"] = path
    context.add_output_metadata(metadata)
    return pd.DataFrame([{
        "version": version, "trained_at": pd.Timestamp(trained_at), "status": final.status, "reason": final.reason,
        "model_path": path, "training_window": window, "cutoff_days": config.cutoff_days,
        "outcome_days": config.outcome_days, "base_rate": final.base_rate, "labelled_leads": len(frame),
        "holdout_roc_auc": model_metrics.get("roc_auc"), "points_roc_auc": baseline_metrics.get("roc_auc"),
        "holdout_pr_auc": model_metrics.get("pr_auc"), "points_pr_auc": baseline_metrics.get("pr_auc"),
        "holdout_top_decile_lift": model_metrics.get("top_decile_lift"),
        "points_top_decile_lift": baseline_metrics.get("top_decile_lift"), "holdout_brier": model_metrics.get("brier"),
    }])


@asset(
    group_name="model",
    ins={"engagements": AssetIn(key=AssetKey(["hubspot", "engagements"]))},
    kinds={"scikitlearn", "pandas"},
    description="One row per lead: score (calibrated probability of SQL), tier A-D, nurture track "
    "(High: hand to sales now; Mid: weekly nurture; Low: bi-weekly), the points score and the top "
    "reasons in plain words.",
)
def lead_scores(context: AssetExecutionContext, enriched_leads: pd.DataFrame, engagements: pd.DataFrame,
                lead_scoring_model: pd.DataFrame) -> pd.DataFrame:
    registry = lead_scoring_model.iloc[-1]
    as_of = pd.to_datetime(enriched_leads["lead_at"], utc=True).max()
    features_frame = scoring.scoring_frame(_model_inputs(enriched_leads), engagements,
                                           cutoff_days=float(registry["cutoff_days"]), as_of=as_of)
    features = scoring.features_of(features_frame)
    model = None
    if registry["status"] == "model" and isinstance(registry["model_path"], str):
        model, _ = scoring.load_model(registry["model_path"])
    else:
        context.log.warning(f"no trained model ({registry['reason']}); scoring with points")
    scored = scoring.score_leads(model, features, base_rate=registry["base_rate"] if model is not None else None)
    out = scored.reset_index()
    out["rule_score"] = scoring.rule_score(features).to_numpy()
    out["reasons"] = out["reasons"].map(lambda r: "; ".join(r) if isinstance(r, (list, tuple)) else r)
    out["model_version"] = registry["version"] if model is not None else "points"
    out = out[["contact_id", "score", "tier", "nurture_track", "rule_score", "reasons", "model_version"]]
    context.add_output_metadata({
        "leads": len(out),
        "tiers": MetadataValue.json({str(k): int(v) for k, v in out["tier"].value_counts().sort_index().items()}),
        "nurture_tracks": MetadataValue.json({str(k): int(v) for k, v in out["nurture_track"].value_counts().items()}),
        "model_version": str(out["model_version"].iloc[0]) if len(out) else None,
        "preview": table_preview(out.sort_values("score", ascending=False)),
    })
    return out


@asset_check(asset=lead_scoring_model, description="The model's holdout ROC AUC is not below the points score's.")
def model_beats_points(lead_scoring_model: pd.DataFrame) -> AssetCheckResult:
    row = lead_scoring_model.iloc[-1]
    if row["status"] != "model":
        return AssetCheckResult(passed=True, severity=AssetCheckSeverity.WARN,
                                metadata={"note": f"no model trained: {row['reason']}"})
    model_auc, points_auc = float(row["holdout_roc_auc"]), float(row["points_roc_auc"])
    return AssetCheckResult(passed=model_auc >= points_auc,
                            metadata={"model_roc_auc": model_auc, "points_roc_auc": points_auc})


@asset_check(asset=lead_scores, additional_ins={"enriched_leads": AssetIn()},
             description="Every lead is scored exactly once, with a score in [0, 1].")
def every_lead_scored_once(lead_scores: pd.DataFrame, enriched_leads: pd.DataFrame) -> AssetCheckResult:
    duplicates = int(lead_scores["contact_id"].duplicated().sum())
    missing = int((~enriched_leads["contact_id"].isin(lead_scores["contact_id"])).sum())
    out_of_range = int((~lead_scores["score"].between(0, 1)).sum())
    return AssetCheckResult(passed=duplicates == 0 and missing == 0 and out_of_range == 0,
                            metadata={"duplicates": duplicates, "unscored_leads": missing, "scores_outside_0_1": out_of_range})


@asset_check(asset=enriched_leads, description="One lead per normalized e-mail and per contact id.")
def one_lead_per_person(warehouse: WarehouseResource) -> AssetCheckResult:
    dup = warehouse.get().query(
        "SELECT COUNT(*) - COUNT(DISTINCT email) AS dup_emails, COUNT(*) - COUNT(DISTINCT contact_id) AS dup_ids "
        "FROM enriched_leads"
    ).iloc[0]
    return AssetCheckResult(passed=int(dup["dup_emails"]) == 0 and int(dup["dup_ids"]) == 0,
                            metadata={"duplicate_emails": int(dup["dup_emails"]), "duplicate_ids": int(dup["dup_ids"])})


assets: list = [leads, enriched_leads, lead_scoring_model, lead_scores]
checks: list = [one_lead_per_person, model_beats_points, every_lead_scored_once]
