"""Table contracts: the columns and types every ingest table carries, and conforming frames to them.

The contract columns come from DESIGN.md; extra columns are allowed and kept. Conforming
coerces types and moves rows that cannot be coerced (or lack a key) to a quarantine frame
with a reason, so bad source records never crash a run deep in pandas and are never lost.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Logical column types, mapped to SQL by the warehouse.
STR, INT, FLOAT, BOOL, DATE, TIMESTAMP, JSON = "str", "int", "float", "bool", "date", "timestamp", "json"


@dataclass(frozen=True)
class TableContract:
    name: str
    columns: dict[str, str]
    key: tuple[str, ...] = ()
    # Columns a row cannot live without (besides the key); a null here quarantines the row.
    required: tuple[str, ...] = ()
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # Key columns that may legitimately be NULL (a keyword-less ad group's keyword).
    nullable: tuple[str, ...] = ()

    @property
    def all_columns(self) -> dict[str, str]:
        return {**self.columns, **self.extra}


CAMPAIGNS = TableContract(
    "campaigns",
    {"campaign_id": STR, "campaign_name": STR, "channel": STR, "status": STR, "daily_budget": FLOAT},
    key=("campaign_id",),
    extra={"advertising_channel_type": STR, "updated_at": TIMESTAMP},
    description="One row per campaign: its latest known settings (upserted by campaign_id).",
)
CAMPAIGN_PERFORMANCE = TableContract(
    "campaign_performance",
    {
        "date": DATE, "campaign_id": STR, "impressions": INT, "clicks": INT, "cost": FLOAT,
        "conversions": FLOAT, "daily_budget": FLOAT, "search_budget_lost_impression_share": FLOAT,
    },
    key=("date", "campaign_id"),
    description="Date x campaign spend (the authoritative spend: keyword reports miss Display, "
    "Video and Performance Max) and the budget-limit signal.",
)
AD_PERFORMANCE = TableContract(
    "ad_performance",
    {
        "date": DATE, "campaign_id": STR, "ad_group_id": STR, "keyword": STR,
        "impressions": INT, "clicks": INT, "cost": FLOAT, "conversions": FLOAT,
    },
    key=("date", "campaign_id", "ad_group_id", "keyword", "match_type"),
    extra={"match_type": STR},
    # Performance Max has asset groups, not ad groups: its spend sits on campaign-level rows.
    nullable=("ad_group_id", "keyword", "match_type"),
    description="Date x campaign x ad group x keyword metrics; keyword is NULL for ad groups "
    "without keywords (Display, Video, Performance Max).",
)
AD_CLICKS = TableContract(
    "ad_clicks",
    {"gclid": STR, "clicked_at": TIMESTAMP, "date": DATE, "campaign_id": STR, "ad_group_id": STR, "keyword": STR},
    key=("gclid",),
    required=("date", "campaign_id"),
    description="One row per paid click with its Google click id.",
)
CONTACTS = TableContract(
    "contacts",
    {
        "contact_id": STR, "email": STR, "company": STR, "domain": STR, "lifecycle_stage": STR,
        "created_at": TIMESTAMP, "gclid": STR, "utm_source": STR, "utm_medium": STR, "utm_campaign": STR,
    },
    key=("contact_id",),
    required=("created_at",),
    extra={
        "firstname": STR, "lastname": STR, "last_modified_at": TIMESTAMP, "analytics_source": STR,
        "lead_at": TIMESTAMP, "mql_at": TIMESTAMP, "sql_at": TIMESTAMP,
        "opportunity_at": TIMESTAMP, "customer_at": TIMESTAMP,
    },
    description="One row per CRM contact, latest state (upserted by contact_id).",
)
DEALS = TableContract(
    "deals",
    {
        "deal_id": STR, "contact_id": STR, "amount": FLOAT, "stage": STR,
        "created_at": TIMESTAMP, "closed_at": TIMESTAMP, "is_won": BOOL,
    },
    key=("deal_id",),
    required=("created_at",),
    extra={"last_modified_at": TIMESTAMP},
    description="One row per CRM deal, latest state (upserted by deal_id).",
)
ENGAGEMENTS = TableContract(
    "engagements",
    {"contact_id": STR, "occurred_at": TIMESTAMP, "event_type": STR, "channel": STR},
    key=("engagement_id",),
    required=("contact_id", "occurred_at"),
    extra={"engagement_id": STR, "date": DATE, "detail": STR},
    description="One row per touch (page view, download, webinar, demo booked, email click, meeting).",
)

INGEST_CONTRACTS: dict[str, TableContract] = {
    c.name: c for c in (CAMPAIGNS, CAMPAIGN_PERFORMANCE, AD_PERFORMANCE, AD_CLICKS, CONTACTS, DEALS, ENGAGEMENTS)
}


class ContractError(ValueError):
    """A source returned a frame that cannot fit its table's contract at all."""


def require_columns(frame: pd.DataFrame, columns, what: str, hint: str = "") -> None:
    """Fail early, naming the columns, when a frame handed to domain code lacks some it needs."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} lacks column(s) {missing}; it needs at least {list(columns)} (got {list(frame.columns)}){hint}"
        )


def _coerce(series: pd.Series, kind: str) -> pd.Series:
    if kind == STR:
        out = series.astype("object").where(series.notna(), None)
        return out.map(lambda v: v if v is None or isinstance(v, str) else str(v)).astype("string")
    if kind == INT:
        return pd.to_numeric(series, errors="coerce").astype("Int64")
    if kind == FLOAT:
        return pd.to_numeric(series, errors="coerce").astype("float64")
    if kind == BOOL:
        mapped = series.map(
            lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
            else v if isinstance(v, (bool, np.bool_))
            else {"true": True, "false": False, "1": True, "0": False}.get(str(v).strip().lower())
        )
        return mapped.astype("boolean")
    if kind == TIMESTAMP:
        return pd.to_datetime(series, errors="coerce", utc=True, format="mixed").astype("datetime64[us, UTC]")
    if kind == DATE:
        parsed = pd.to_datetime(series, errors="coerce", format="mixed")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        return parsed.dt.normalize().astype("datetime64[us]")
    if kind == JSON:
        return series.map(lambda v: None if v is None else json.dumps(v, default=str)).astype("string")
    raise ValueError(f"unknown logical type {kind!r}")


def conform(frame: pd.DataFrame, contract: TableContract) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coerce `frame` to `contract`; return (good rows, quarantined rows with a `reason`).

    A contract column absent from the frame is a ContractError (the source is broken, not a
    row). A value that was present but cannot be coerced, or a missing key/required value,
    sends that row to quarantine.
    """
    missing = [c for c in contract.columns if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{contract.name}: source frame lacks contract column(s) {missing}; got {list(frame.columns)}"
        )
    frame = frame.reset_index(drop=True)
    # A connector may flag rows it could map but should not trust (e.g. a contact without e-mail).
    flagged = frame.pop("quarantine_reason") if "quarantine_reason" in frame.columns else None
    out = pd.DataFrame(index=frame.index)
    reasons = pd.Series("", index=frame.index, dtype="object")
    if flagged is not None:
        reasons = reasons.where(flagged.isna(), flagged.astype("object").fillna("") + "; ")
    unparseable: dict[str, pd.Series] = {}
    for column in frame.columns:
        kind = contract.all_columns.get(column)
        if kind is None:
            out[column] = frame[column]
            continue
        coerced = _coerce(frame[column], kind)
        was_present = frame[column].notna() & (frame[column].astype("string").str.strip() != "").fillna(False)
        failed = was_present & coerced.isna()
        unparseable[column] = failed
        reasons = reasons.where(~failed, reasons + f"{column}: unparseable {kind} value; ")
        out[column] = coerced
    for column in (*contract.key, *contract.required):
        if column in out.columns and column not in contract.nullable:
            absent = out[column].isna() & ~unparseable.get(column, False)
            reasons = reasons.where(~absent, reasons + f"{column}: missing; ")
    bad = reasons != ""
    quarantined = frame[bad].copy()
    quarantined["reason"] = reasons[bad].str.rstrip("; ")
    good = out[~bad]
    if contract.key and all(k in good.columns for k in contract.key):
        # Sources may repeat a record across pages; the latest occurrence wins.
        good = good.drop_duplicates(subset=list(contract.key), keep="last")
    return good.reset_index(drop=True), quarantined.reset_index(drop=True)


def quarantine_records(table: str, quarantined: pd.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
    """Shape quarantined source rows for the shared `quarantine` table."""
    if quarantined.empty:
        return pd.DataFrame(
            {"source_table": pd.Series(dtype="string"), "record_key": pd.Series(dtype="string"),
             "reason": pd.Series(dtype="string"), "record": pd.Series(dtype="string")}
        )
    payload = quarantined.drop(columns=["reason"]).astype("object").where(quarantined.notna(), None)
    records = pd.Series([json.dumps(r, default=str) for r in payload.to_dict("records")], index=quarantined.index)
    key_cols = [k for k in key if k in quarantined.columns]
    record_key = (
        quarantined[key_cols].astype("string").fillna("").agg("|".join, axis=1) if key_cols
        else pd.Series("", index=quarantined.index)
    )
    # A record without its key is keyed by its content, so the ledger's upsert by
    # (source_table, record_key) never lets one keyless record replace another.
    keyless = record_key.str.strip("|") == ""
    record_key = record_key.where(~keyless, "sha1:" + records.map(lambda r: hashlib.sha1(r.encode()).hexdigest()))
    return pd.DataFrame(
        {
            "source_table": table,
            "record_key": record_key.astype("string"),
            "reason": quarantined["reason"].astype("string"),
            "record": records,
        }
    )
