"""Lead scoring: the leakage-safe training frame, the scikit-learn lead model, the points baseline, evaluation, per-lead reasons, charts and model files.

No Dagster here: assets call these functions. The flow is

    frame = training_frame(leads, engagements, cutoff_days=14, outcome_days=60, as_of=today)
    train, holdout = time_split(frame, "lead_at")
    result = fit_lead_model(*split_xy(train))     # status "fallback" + reason when history is thin
    holdout_X, holdout_y = split_xy(holdout)
    evaluate_scores(holdout_y, result.model.predict_proba(holdout_X)[:, 1])
        vs evaluate_scores(holdout_y, rule_score(holdout_X), probabilities=False)
    scored = score_leads(result.model, scoring_frame(leads, engagements, cutoff_days=14, as_of=today))
    (score_leads(None, ...) ranks by points when the result is a fallback)
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gtm_assets.contracts import require_columns
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

LABEL = "reached_sql"
TIME_COLUMN = "lead_at"

# Columns never used as features: identifiers, free text that names a person or company,
# and anything recorded at or after the outcome (lifecycle stage and its dates, deal links),
# which would let the model read the answer. Prefixes catch families such as deal_amount.
EXCLUDED_COLUMNS = frozenset({
    "contact_id", "email", "firstname", "lastname", "company", "domain", "gclid", "phone",
    "lifecycle_stage", "lead_status", "mql_at", "sql_at", "opportunity_at", "customer_at",
    "days_to_sql", "is_won", "amount", "closed_at", "last_modified_at", "created_at",
    "became_customer", "engagement_id", LABEL, TIME_COLUMN,
})
EXCLUDED_PREFIXES = ("deal_", "hs_lifecyclestage_", "opportunity_", "customer_", "closed_")

# event_type -> feature column. Other event types become "<event_type>_count".
ENGAGEMENT_COLUMNS = {
    "page_view": "page_views",
    "pricing_page_view": "pricing_page_views",
    "content_download": "content_downloads",
    "webinar": "webinars",
    "demo_booked": "demo_booked",
    "email_click": "email_clicks",
    "meeting": "meetings",
}

# The points baseline (a classic marketing-automation score): points per counted event.
RULE_POINTS = {"page_views": 10, "content_downloads": 20, "demo_booked": 40}

# Tiers on calibrated probability relative to the base rate (lift = score / base rate):
# A >= 3x base rate, B >= 1.5x, C >= 0.5x, D below. Absolute cut points (not quantiles)
# keep a tier's meaning stable from day to day: a weak week gives fewer A leads instead of
# relabelling mediocre leads as A. Each cut is capped at halfway between the base rate and
# certainty so the top tiers stay reachable when SQLs are common.
TIER_LIFTS = {"A": 3.0, "B": 1.5, "C": 0.5}
# A: hand to sales now; B and C: weekly nurture; D: bi-weekly nurture.
NURTURE_TRACKS = {"A": "High", "B": "Mid", "C": "Mid", "D": "Low"}
# Points tiers for the fallback (no model): a demo (40) plus any engagement is A.
POINTS_TIERS = {"A": 60, "B": 40, "C": 20}

# Cap per categorical column: rare values are pooled into "other" so a 5,000-value keyword
# column costs 64 bins, not 5,000 (and histogram gradient boosting allows at most 255).
MAX_CATEGORIES = 63
MIN_CATEGORY_ROWS = 10
OTHER_CATEGORY = "(other)"


# --------------------------------------------------------------------------- the model


class LeadFrameCleaner(TransformerMixin, BaseEstimator):
    """Turns any lead frame into float64 numeric and pandas-category columns.

    At fit it records which columns exist and what kind each is; at transform it aligns to
    them (absent -> missing, extra ignored) so a scoring frame with a new or lost column
    still scores. Dropped at fit: columns with no value at all (nothing to learn, and they
    would break the category encoder) and date/time columns (absolute dates do not carry
    over across a time split). Booleans and numbers-stored-as-text become numbers;
    str/string/object/category become categories, values compared as text.
    """

    def fit(self, X: pd.DataFrame, y: Any = None) -> "LeadFrameCleaner":
        frame = _as_frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.numeric_columns_: list[str] = []
        self.categorical_columns_: list[str] = []
        self.dropped_columns_: dict[str, str] = {}
        for column in frame.columns:
            series = frame[column]
            if series.isna().all():
                self.dropped_columns_[column] = "no values"
            elif pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
                self.dropped_columns_[column] = "date/time"
            elif _is_numeric_like(series):
                self.numeric_columns_.append(column)
            else:
                self.categorical_columns_.append(column)
        if not self.numeric_columns_ and not self.categorical_columns_:
            raise ValueError(
                f"lead model: no usable feature column among {list(frame.columns)} "
                f"(dropped: {self.dropped_columns_}); pass at least one column with values"
            )
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "numeric_columns_")
        frame = _as_frame(X)
        out = {}
        for column in self.numeric_columns_:
            out[column] = _to_float(frame[column]) if column in frame.columns else np.full(len(frame), np.nan)
        for column in self.categorical_columns_:
            values = frame[column] if column in frame.columns else pd.Series(np.nan, index=frame.index, dtype="object")
            out[column] = _as_category(values).array
        return pd.DataFrame(out, index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.numeric_columns_ + self.categorical_columns_, dtype=object)


class TopCategories(TransformerMixin, BaseEstimator):
    """Keeps each categorical column's frequent values and pools the rest into "(other)".

    Values seen fewer than `min_rows` times, or beyond the `max_categories` most common,
    become "(other)"; values never seen at fit do too. Missing stays missing (the booster
    learns where missing goes). Output columns have a fixed category set, so the booster
    sees the same codes at fit and at scoring.
    """

    def __init__(self, max_categories: int = MAX_CATEGORIES, min_rows: int = MIN_CATEGORY_ROWS):
        self.max_categories = max_categories
        self.min_rows = min_rows

    def fit(self, X: pd.DataFrame, y: Any = None) -> "TopCategories":
        frame = _as_frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.categories_: dict[str, list[str]] = {}
        for column in frame.columns:
            counts = _as_category(frame[column]).value_counts(dropna=True)
            kept = counts[counts >= self.min_rows].index[: self.max_categories]
            self.categories_[column] = sorted(str(v) for v in kept) + [OTHER_CATEGORY]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "categories_")
        frame = _as_frame(X)
        out = {}
        for column, categories in self.categories_.items():
            values = _as_category(frame[column])
            # Recode through the (small) category list, not the rows: code k = "(other)".
            # Integer category labels make the booster's own encoding a numeric lookup,
            # several times faster than matching strings on every predict.
            position = {value: code for code, value in enumerate(categories[:-1])}
            other = len(categories) - 1
            lookup = np.array([position.get(str(v), other) for v in values.cat.categories] + [-1], dtype="int64")
            codes = lookup[values.cat.codes.to_numpy()]  # code -1 (missing) indexes the trailing -1
            out[column] = pd.Categorical.from_codes(codes, categories=np.arange(len(categories)))
        return pd.DataFrame(out, index=frame.index)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(list(self.categories_), dtype=object)


def make_lead_model() -> Pipeline:
    """An unfitted Pipeline: any frame of numeric/categorical columns -> calibrated P(SQL).

    Model choice: class-weighted HistGradientBoostingClassifier with native categorical
    splits and native missing-value handling, Platt-calibrated (sigmoid) over 3 folds,
    averaging the 3 calibrated boosters (ensemble=True: with 2% SQLs a single refit
    booster lost 0.05-0.15 ROC-AUC to the average in our tests, early stopping on a few
    dozen positives being noisy; the price is 3 boosters to evaluate at scoring).
    Compared with one-hot + class-weighted logistic regression (same calibration) on the
    tests' synthetic leads (demo booked x company size interaction, a campaign effect, a
    threshold on pricing views; 1k-10k training rows, 5k newer holdout), the booster won
    PR-AUC by 0.01-0.05 and top-decile lift in 5 of 6 runs, at ROC-AUC within 0.02 and
    equal Brier. PR-AUC and lift are what matter with rare SQLs and a sales team working
    the top of the list, and the trees find interactions without hand-made crosses.
    Class weights keep the rare SQL class visible to the trees; the calibration layer maps
    the re-weighted outputs back to real probabilities. Sigmoid, not isotonic: isotonic
    overfits under ~1,000 samples (DOMAIN.md), and per-fold calibration sets are often
    that small.
    """
    encode = ColumnTransformer(
        [
            ("numeric", "passthrough", make_column_selector(dtype_include="number")),
            ("categorical", TopCategories(), make_column_selector(dtype_include="category")),
        ],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    booster = HistGradientBoostingClassifier(
        categorical_features="from_dtype",
        class_weight="balanced",
        learning_rate=0.08,
        max_iter=300,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=15,
        random_state=0,
    )
    return Pipeline(
        [
            ("prepare", LeadFrameCleaner()),
            ("encode", encode),
            ("classify", CalibratedClassifierCV(booster, method="sigmoid", cv=3)),
        ]
    )


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    raise TypeError(f"lead model expects a pandas DataFrame of lead features, got {type(X).__name__}")


def _is_numeric_like(series: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return True
    if isinstance(series.dtype, pd.CategoricalDtype) or (pd.api.types.is_string_dtype(series.dtype) and series.dtype != object):
        return False
    # object columns: numbers (or booleans) stored as Python objects count as numbers
    return pd.api.types.infer_dtype(series, skipna=True) in {"integer", "floating", "mixed-integer-float", "decimal", "boolean"}


def _to_float(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series) or series.dtype == object:
        series = series.astype("object").where(series.notna(), np.nan).astype("float64")
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _as_category(series: pd.Series) -> pd.Series:
    """The column as a categorical of text values (missing stays missing)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        if pd.api.types.infer_dtype(series.cat.categories, skipna=True) == "string":
            return series.reset_index(drop=True)
        series = series.astype("object")
    elif series.dtype == object and pd.api.types.infer_dtype(series, skipna=True) not in {"string", "empty"}:
        series = series.map(str, na_action="ignore")
    return series.astype("category").reset_index(drop=True)


# --------------------------------------------------------------------------- the points baseline


def rule_score(features: pd.DataFrame) -> pd.Series:
    """Points score: 10 per page view, 20 per content download, 40 per demo booked.

    Reads count columns `page_views`, `content_downloads`, `demo_booked` (the names
    `training_frame` produces). A missing value or an absent column counts as no events;
    a frame with none of the three columns is an error, since every lead would score 0.
    """
    present = [c for c in RULE_POINTS if c in features.columns]
    if not present:
        raise ValueError(
            f"rule_score needs at least one of {list(RULE_POINTS)} (event counts per lead); "
            f"got columns {list(features.columns)}"
        )
    points = pd.Series(0.0, index=features.index, name="rule_score")
    for column in present:
        counts = pd.to_numeric(features[column], errors="coerce").astype("float64").fillna(0.0)
        points = points + RULE_POINTS[column] * counts
    return points


# --------------------------------------------------------------------------- evaluation


def evaluate_scores(y_true: Any, scores: Any, *, probabilities: bool | None = None) -> dict[str, Any]:
    """ROC-AUC, PR-AUC, top-decile lift and Brier score of `scores` against 0/1 `y_true`.

    Rows with a missing label or score are left out (`n` counts the rows used). A metric
    that is undefined is None: AUCs and lift with a single class, lift when no positives.
    top_decile_lift = SQL rate among the top 10% by score / overall SQL rate; leads tied at
    the cut share it (each tied lead counts by the fraction of the tie that fits), so a
    points score full of ties gets the lift a random tie-break would give on average.
    Brier only means something for probabilities: it is None when `probabilities` is False
    or (auto) when any score lies outside [0, 1]. Points are not rescaled to fake one.
    """
    labels = pd.to_numeric(pd.Series(np.asarray(y_true, dtype=object)), errors="coerce")
    values = pd.to_numeric(pd.Series(np.asarray(scores, dtype=object)), errors="coerce")
    if len(labels) != len(values):
        raise ValueError(f"evaluate_scores: {len(labels)} labels but {len(values)} scores")
    usable = labels.notna() & values.notna()
    y = labels[usable].to_numpy(dtype="float64")
    s = values[usable].to_numpy(dtype="float64")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("evaluate_scores: y_true must be 0/1 (or True/False)")
    n, positives = int(len(y)), int(y.sum())
    both_classes = 0 < positives < n
    if probabilities is None:
        probabilities = bool(n) and bool(((s >= 0) & (s <= 1)).all())
    return {
        "n": n,
        "positives": positives,
        "base_rate": positives / n if n else None,
        "roc_auc": float(roc_auc_score(y, s)) if both_classes else None,
        "pr_auc": float(average_precision_score(y, s)) if both_classes else None,
        "top_decile_lift": _top_fraction_lift(y, s, 0.10) if positives else None,
        "brier": float(brier_score_loss(y, s)) if probabilities and n else None,
    }


def _top_fraction_lift(y: np.ndarray, s: np.ndarray, fraction: float) -> float | None:
    n = len(y)
    if n == 0 or y.sum() == 0:
        return None
    k = max(1, math.ceil(fraction * n))
    cut = np.sort(s)[::-1][k - 1]
    above = s > cut
    tied = s == cut
    take_from_tie = k - above.sum()
    hits = y[above].sum() + take_from_tie * y[tied].mean()
    return float((hits / k) / y.mean())


# --------------------------------------------------------------------------- time split and training frame


def time_split(frame: pd.DataFrame, time_col: str, holdout_fraction: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): the newest ~`holdout_fraction` of rows by `time_col` are the holdout.

    Rows sharing the cut timestamp all go to the holdout, so no instant straddles the split.
    """
    if time_col not in frame.columns:
        raise ValueError(f"time_split: column {time_col!r} not in frame; columns are {list(frame.columns)}")
    if not 0 < holdout_fraction < 1:
        raise ValueError(f"time_split: holdout_fraction must be between 0 and 1, got {holdout_fraction}")
    times = frame[time_col]
    if times.isna().any():
        raise ValueError(
            f"time_split: {int(times.isna().sum())} row(s) have no {time_col}; drop or fill them before splitting"
        )
    if len(frame) < 2:
        raise ValueError(f"time_split: need at least 2 rows to split, got {len(frame)}")
    ordered = times.sort_values(kind="stable")
    cut = ordered.iloc[min(len(frame) - 1, int(math.floor(len(frame) * (1 - holdout_fraction))))]
    is_holdout = times >= cut
    train, holdout = frame[~is_holdout], frame[is_holdout]
    if train.empty:
        raise ValueError(
            f"time_split: every row shares the newest {time_col} ({cut}); nothing older to train on"
        )
    return train, holdout


def is_excluded_column(name: str) -> bool:
    """True for identifiers and columns recorded after the outcome (see EXCLUDED_COLUMNS)."""
    lowered = str(name).lower()
    return lowered in EXCLUDED_COLUMNS or lowered.startswith(EXCLUDED_PREFIXES)


def engagement_column(event_type: str) -> str:
    """Feature column name for an engagement event type (page_view -> page_views)."""
    key = re.sub(r"[^a-z0-9]+", "_", str(event_type).strip().lower()).strip("_")
    return ENGAGEMENT_COLUMNS.get(key, f"{key}_count")


def lead_features(
    leads: pd.DataFrame, engagements: pd.DataFrame, window_end: pd.Series
) -> pd.DataFrame:
    """Per-lead features: pass-through firmographic/source columns + engagement counts.

    Only engagements strictly before the lead's `window_end` count. Index is contact_id.
    Every known event type gets a column (0 when the lead had none), so training and
    scoring frames line up.
    """
    _require(leads, ("contact_id", TIME_COLUMN), "leads")
    _require(engagements, ("contact_id", "occurred_at", "event_type"), "engagements")
    if leads["contact_id"].duplicated().any():
        dupes = leads.loc[leads["contact_id"].duplicated(), "contact_id"].head(5).tolist()
        raise ValueError(f"leads: contact_id must be unique (one row per lead); duplicates e.g. {dupes}. Deduplicate first")
    lead_index = pd.Index(leads["contact_id"].astype("object"), name="contact_id")
    passthrough = [c for c in leads.columns if not is_excluded_column(c)]
    features = leads[passthrough].set_axis(lead_index, axis=0)

    window = pd.Series(_utc(window_end).to_numpy(), index=lead_index, name="window_end")
    touches = engagements[["contact_id", "occurred_at", "event_type"]].copy()
    touches["contact_id"] = touches["contact_id"].astype("object")
    touches["occurred_at"] = _utc(touches["occurred_at"])
    touches = touches.join(window, on="contact_id", how="inner")
    touches = touches[touches["occurred_at"] < touches["window_end"]]
    touches["feature"] = touches["event_type"].astype("object").map(engagement_column, na_action="ignore").fillna("unknown_count")
    counts = pd.crosstab(touches["contact_id"], touches["feature"])
    columns = sorted(set(ENGAGEMENT_COLUMNS.values()) | set(counts.columns))
    counts = counts.reindex(index=lead_index, columns=columns, fill_value=0).astype("int64")
    counts.columns.name = None
    clashing = [c for c in counts.columns if c in features.columns]
    if clashing:
        raise ValueError(
            f"leads already has column(s) {clashing} that engagement counts would produce; rename them in leads"
        )
    return features.join(counts)


def training_frame(
    leads: pd.DataFrame,
    engagements: pd.DataFrame,
    cutoff_days: float = 14,
    outcome_days: float = 60,
    as_of: Any = None,
) -> pd.DataFrame:
    """One row per mature lead (index contact_id): `lead_at`, label `reached_sql`, features.

    Leakage guard:
    - engagement counts only from engagements before min(lead_at + cutoff_days, sql_at): a
      touch after the cut-off, or a meeting after the lead became SQL, changes nothing;
    - columns recorded after the outcome (EXCLUDED_COLUMNS, e.g. lifecycle_stage, mql_at,
      deal_*) are not features;
    - label = sql_at - lead_at <= outcome_days, and only leads with lead_at + outcome_days
      <= as_of are kept (younger leads' outcome is not known yet).
    Leads without lead_at, or too young, are left out and counted in
    `frame.attrs["excluded_leads"]`.
    """
    _require(leads, ("contact_id", TIME_COLUMN, "sql_at"), "leads")
    if cutoff_days <= 0 or outcome_days <= 0:
        raise ValueError(f"cutoff_days and outcome_days must be positive, got {cutoff_days} and {outcome_days}")
    as_of_ts = _utc_scalar(as_of) if as_of is not None else pd.Timestamp.now(tz="UTC")
    lead_at = _utc(leads[TIME_COLUMN])
    sql_at = _utc(leads["sql_at"])
    outcome = pd.Timedelta(days=outcome_days)
    missing_time = lead_at.isna()
    mature = ~missing_time & (lead_at + outcome <= as_of_ts)
    kept = leads[mature]
    lead_at, sql_at = lead_at[mature], sql_at[mature]
    # An SQL stamped after as_of was not known at as_of.
    known_sql = sql_at.where(sql_at <= as_of_ts)
    window_end = (lead_at + pd.Timedelta(days=cutoff_days)).where(
        known_sql.isna() | (lead_at + pd.Timedelta(days=cutoff_days) <= known_sql), known_sql
    )
    features = lead_features(kept, engagements, window_end)
    label = (known_sql.notna() & (known_sql - lead_at <= outcome)).astype("int64").to_numpy()
    frame = features.copy()
    frame.insert(0, LABEL, label)
    frame.insert(0, TIME_COLUMN, lead_at.to_numpy())
    frame.attrs["excluded_leads"] = {
        "missing lead_at": int(missing_time.sum()),
        "outcome not yet known": int((~missing_time & ~mature).sum()),
    }
    return frame


def scoring_frame(leads: pd.DataFrame, engagements: pd.DataFrame, cutoff_days: float = 14, as_of: Any = None) -> pd.DataFrame:
    """Features for leads to score now: the same columns as `training_frame`, engagements
    before min(lead_at + cutoff_days, as_of), so a lead is scored as the model was trained."""
    _require(leads, ("contact_id", TIME_COLUMN), "leads")
    as_of_ts = _utc_scalar(as_of) if as_of is not None else pd.Timestamp.now(tz="UTC")
    lead_at = _utc(leads[TIME_COLUMN])
    window_end = (lead_at + pd.Timedelta(days=cutoff_days)).clip(upper=as_of_ts)
    return lead_features(leads, engagements, window_end.fillna(as_of_ts))


def features_of(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's inputs: `frame` without the label, the time column and excluded columns."""
    return frame[[c for c in frame.columns if not is_excluded_column(c)]]


def split_xy(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """(features, label) from a `training_frame` result."""
    _require(frame, (LABEL,), "training frame")
    return features_of(frame), frame[LABEL]


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    require_columns(frame, columns, what)


def _utc(values: Any) -> pd.Series:
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        return pd.to_datetime(series, utc=True)
    # Text timestamps from CSVs/APIs vary row to row (with and without time or offset).
    return pd.to_datetime(series, utc=True, errors="coerce", format="mixed")


def _utc_scalar(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


# --------------------------------------------------------------------------- fitting with a fallback


@dataclass
class LeadModelResult:
    """What `fit_lead_model` produced: a fitted model, or a fallback to the points score."""

    status: str  # "model" or "fallback"
    reason: str
    model: Pipeline | None
    n_rows: int
    n_positives: int
    base_rate: float | None
    feature_baseline: dict[str, Any] = field(default_factory=dict)

    @property
    def is_fallback(self) -> bool:
        return self.status == "fallback"


def fit_lead_model(
    train_X: pd.DataFrame, train_y: Any, min_positives: int = 30, min_rows: int = 200
) -> LeadModelResult:
    """Fit `make_lead_model()` if the history is big enough; otherwise a fallback result.

    Too little labelled history (fewer than `min_rows` leads, or fewer than `min_positives`
    SQLs or non-SQLs) gives status "fallback" with the reason: use `rule_score` rather than
    a model trained on noise. The fitted model carries `base_rate_` and
    `feature_baseline_` (median / most common value per feature) for tiers and reasons.
    """
    labels = pd.to_numeric(pd.Series(np.asarray(train_y, dtype=object)), errors="coerce")
    if len(labels) != len(train_X):
        raise ValueError(f"fit_lead_model: {len(train_X)} feature rows but {len(labels)} labels")
    if labels.isna().any():
        raise ValueError(f"fit_lead_model: {int(labels.isna().sum())} label(s) missing; drop unlabelled leads first")
    y = labels.to_numpy(dtype="int64")
    n, positives = len(y), int(y.sum())
    negatives = n - positives
    base_rate = positives / n if n else None
    shortfalls = []
    if n < min_rows:
        shortfalls.append(f"{n} labelled leads (need {min_rows})")
    if positives < min_positives:
        shortfalls.append(f"{positives} SQLs (need {min_positives})")
    if negatives < min_positives:
        shortfalls.append(f"{negatives} non-SQL leads (need {min_positives})")
    if shortfalls:
        return LeadModelResult(
            status="fallback",
            reason="too little labelled history: " + ", ".join(shortfalls) + "; using the points score instead",
            model=None, n_rows=n, n_positives=positives, base_rate=base_rate,
        )
    model = make_lead_model()
    model.fit(train_X, y)
    baseline = feature_baseline(train_X)
    model.base_rate_ = base_rate
    model.feature_baseline_ = baseline
    return LeadModelResult(
        status="model", reason=f"trained on {n} leads with {positives} SQLs",
        model=model, n_rows=n, n_positives=positives, base_rate=base_rate, feature_baseline=baseline,
    )


def feature_baseline(features: pd.DataFrame) -> dict[str, Any]:
    """A typical lead: median of each numeric column, most common value of the others.

    Columns with no value are left out (they cannot move a score)."""
    baseline: dict[str, Any] = {}
    for column in features.columns:
        series = features[column]
        if series.isna().all():
            continue
        if _is_numeric_like(series):
            baseline[column] = float(np.nanmedian(_to_float(series)))
        else:
            baseline[column] = series.astype("object").mode(dropna=True).iloc[0]
    return baseline


# --------------------------------------------------------------------------- scoring and reasons


def tier_thresholds(base_rate: float) -> dict[str, float]:
    """Lowest calibrated probability of tiers A, B and C for this base rate."""
    if not 0 < base_rate < 1:
        raise ValueError(f"base rate must be strictly between 0 and 1, got {base_rate}")
    ceiling = (1 + base_rate) / 2
    return {tier: min(lift * base_rate, ceiling) for tier, lift in TIER_LIFTS.items()}


def score_leads(model: Any, X: pd.DataFrame, *, base_rate: float | None = None, top_reasons: int = 3) -> pd.DataFrame:
    """score (P(SQL)), tier A-D, nurture_track High/Mid/Low and plain-words `reasons` per lead.

    Tiers: see TIER_LIFTS (score relative to `base_rate`, default the model's training
    base rate). Reasons: the features that moved this lead's score most, found by putting
    each feature back to its baseline (the model's `feature_baseline_`, else this frame's
    median / most common value) and re-scoring; one batched predict per feature, only for
    leads whose value differs from the baseline. A reason that lowered the score says so.

    With `model=None` (the fallback) the points score ranks leads: score is NaN, the tier
    comes from POINTS_TIERS and reasons from the points each event earned.
    """
    if model is None:
        return _score_by_points(X, top_reasons)
    scores = model.predict_proba(X)[:, 1]
    if base_rate is None:
        base_rate = getattr(model, "base_rate_", None)
    if base_rate is None:
        base_rate = float(np.mean(scores))
    cuts = tier_thresholds(base_rate)
    tier = np.select([scores >= cuts["A"], scores >= cuts["B"], scores >= cuts["C"]], ["A", "B", "C"], "D")
    baseline = getattr(model, "feature_baseline_", None) or feature_baseline(X)
    used = list(getattr(model, "feature_names_in_", X.columns))
    columns = [c for c in used if c in X.columns and c in baseline]
    effects = _feature_effects(model, X, baseline, columns, scores)
    return pd.DataFrame(
        {
            "score": scores,
            "tier": tier,
            "nurture_track": pd.Series(tier).map(NURTURE_TRACKS).to_numpy(),
            "reasons": _reason_text(X, columns, effects, top_reasons),
        },
        index=X.index,
    )


def _feature_effects(
    model: Any, X: pd.DataFrame, baseline: dict[str, Any], columns: list[str], scores: np.ndarray
) -> np.ndarray:
    """scores - score with one feature set to its baseline: one matrix column per feature.

    Any fitted classifier works (re-score the raw frame per feature). For our own pipeline
    the raw -> encoded step is done once and only the classifier re-scores, and only the
    leads whose *encoded* value differs from the baseline's (a rare keyword pooled into
    "(other)" like the baseline's is not re-scored): the same numbers, several times faster.
    """
    effects = np.zeros((len(X), len(columns)))
    head, tail = _encoder_and_classifier(model, X)
    if head is None:
        for j, column in enumerate(columns):
            differs = _differs_from(X[column], baseline[column])
            if differs.any():
                typical = X.loc[differs].copy()
                typical[column] = baseline[column]
                effects[differs, j] = scores[differs] - model.predict_proba(typical)[:, 1]
        return effects
    encoded = head.transform(X)
    typical_lead = pd.DataFrame({c: [baseline.get(c, np.nan)] for c in X.columns})
    typical_encoded = head.transform(typical_lead)
    for j, column in enumerate(columns):
        if column not in encoded.columns:
            continue  # dropped by the model (e.g. never filled): cannot move a score
        values, typical = encoded[column], typical_encoded[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            differs = values.cat.codes.to_numpy() != typical.cat.codes.iloc[0]
        else:
            actual, usual = values.to_numpy(dtype="float64"), float(typical.iloc[0])
            differs = ~((actual == usual) | (np.isnan(actual) & np.isnan(usual)))
        if not differs.any():
            continue
        replaced = encoded.loc[differs].copy()
        replaced[column] = pd.Series(
            np.repeat(typical.to_numpy(), int(differs.sum())), index=replaced.index
        ).astype(values.dtype)
        effects[differs, j] = scores[differs] - tail.predict_proba(replaced)[:, 1]
    return effects


def _encoder_and_classifier(model: Any, X: pd.DataFrame) -> tuple[Any, Any]:
    """(encoding steps, classifier) when the encoded columns map 1:1 onto raw ones, else (None, None)."""
    if not isinstance(model, Pipeline) or len(model.steps) < 2 or not isinstance(model.steps[0][1], LeadFrameCleaner):
        return None, None
    head = model[:-1]
    try:
        names = set(head.get_feature_names_out())
    except (AttributeError, ValueError):
        return None, None
    return (head, model[-1]) if names <= set(model.feature_names_in_) else (None, None)


def _score_by_points(X: pd.DataFrame, top_reasons: int) -> pd.DataFrame:
    points = rule_score(X)
    tier = np.select(
        [points >= POINTS_TIERS["A"], points >= POINTS_TIERS["B"], points >= POINTS_TIERS["C"]], ["A", "B", "C"], "D"
    )
    columns = [c for c in RULE_POINTS if c in X.columns]
    effects = np.column_stack(
        [RULE_POINTS[c] * pd.to_numeric(X[c], errors="coerce").fillna(0).to_numpy(dtype="float64") for c in columns]
    )
    return pd.DataFrame(
        {
            "score": np.nan,
            "tier": tier,
            "nurture_track": pd.Series(tier).map(NURTURE_TRACKS).to_numpy(),
            "reasons": _reason_text(X, columns, effects, top_reasons),
        },
        index=X.index,
    )


def _differs_from(series: pd.Series, typical: Any) -> np.ndarray:
    if _is_numeric_like(series):
        values = _to_float(series)
        return ~(values == float(typical))
    text = series.astype("object")
    return ~(text.notna() & (text.map(str, na_action="ignore") == str(typical))).to_numpy()


_COUNT_PHRASES = {
    # column: (singular, plural with {n}, none)
    "page_views": ("viewed 1 page", "viewed {n} pages", "no page views"),
    "pricing_page_views": ("viewed the pricing page", "viewed the pricing page {n} times", "never viewed pricing"),
    "content_downloads": ("downloaded 1 piece of content", "downloaded {n} pieces of content", "no content downloads"),
    "webinars": ("attended a webinar", "attended {n} webinars", "no webinars"),
    "demo_booked": ("booked a demo", "booked {n} demos", "no demo booked"),
    "email_clicks": ("clicked 1 email", "clicked {n} emails", "no email clicks"),
    "meetings": ("had a meeting", "had {n} meetings", "no meetings"),
}
_VALUE_PREFIXES = {
    "company_size": "company size ",
    "industry": "industry ",
    "country": "based in ",
    "email_domain_type": "email domain: ",
    "channel": "came via ",
    "campaign_id": "came from campaign ",
    "campaign_name": "came from campaign ",
    "campaign": "came from campaign ",
    "utm_campaign": "came from campaign ",
    "utm_source": "source ",
    "keyword": "searched for ",
    "match_type": "match type ",
}


def _describe(column: str, values: pd.Series) -> np.ndarray:
    """Plain-words description of each value of one feature (vectorized)."""
    if column in _COUNT_PHRASES and _is_numeric_like(values):
        one, many, none = _COUNT_PHRASES[column]
        counts = _to_float(values)
        many_text = pd.Series(counts).map(lambda v: many.format(n=_fmt(v)), na_action="ignore")
        return np.where(np.isnan(counts), f"{column.replace('_', ' ')} unknown",
                        np.where(counts == 0, none, np.where(counts == 1, one, many_text.fillna("").to_numpy(dtype=object))))
    prefix = _VALUE_PREFIXES.get(column, column.replace("_", " ") + " ")
    if _is_numeric_like(values):
        text = pd.Series(_to_float(values)).map(_fmt, na_action="ignore").astype("object")
    else:
        text = values.astype("object").map(str, na_action="ignore").reset_index(drop=True)
    return (prefix + text.fillna("unknown")).to_numpy(dtype=object)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def _reason_text(X: pd.DataFrame, columns: list[str], effects: np.ndarray, top: int) -> np.ndarray:
    reasons = np.full(len(X), "", dtype=object)
    if not columns or len(X) == 0:
        return reasons
    top = min(top, len(columns))
    order = np.argsort(-np.abs(effects), axis=1, kind="stable")[:, :top]
    for rank in range(top):
        picked = order[:, rank]
        picked_effect = np.take_along_axis(effects, picked[:, None], axis=1)[:, 0]
        meaningful = np.abs(picked_effect) > 1e-6
        for j, column in enumerate(columns):
            rows = meaningful & (picked == j)
            if not rows.any():
                continue
            text = _describe(column, X[column].iloc[np.flatnonzero(rows)])
            text = np.where(picked_effect[rows] < 0, text + " (lowers score)", text)
            sep = np.where(reasons[rows] == "", "", "; ").astype(object)
            reasons[rows] = reasons[rows] + sep + text
    return reasons


# --------------------------------------------------------------------------- charts


def calibration_plot_png(y: Any, model_scores: Any, baseline_scores: Any, bins: int = 10) -> bytes:
    """Reliability diagram: observed SQL rate per score bin, model beside the points baseline.

    Points are not probabilities, so the baseline is drawn on its rank (percentile) scale:
    the chart shows how far a rank-as-probability reading of points is from the truth."""
    plt = _pyplot()
    frame = _chart_frame(y, model_scores, baseline_scores)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    for name, column, marker in (("model", "model", "o"), ("points (rank scale)", "baseline_rank", "s")):
        binned = frame.groupby(_quantile_bins(frame[column], bins), observed=True).agg(
            predicted=(column, "mean"), observed=("y", "mean")
        )
        ax.plot(binned["predicted"], binned["observed"], marker=marker, label=name)
    ax.set_xlabel("predicted P(SQL)")
    ax.set_ylabel("observed SQL rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Calibration: model vs points")
    ax.legend(loc="upper left")
    return _png(fig, plt)


def lift_chart_png(y: Any, model_scores: Any, baseline_scores: Any) -> bytes:
    """Lift per score decile (decile 1 = highest scores), model beside the points baseline.

    Tied scores share a decile (ranked by average rank), as in evaluate_scores."""
    plt = _pyplot()
    frame = _chart_frame(y, model_scores, baseline_scores)
    rate = frame["y"].mean()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    deciles = np.arange(1, 11)
    for offset, (name, column) in zip((-0.2, 0.2), (("model", "model"), ("points", "baseline"))):
        decile = 10 - np.minimum(9, np.floor(frame[column].rank(method="average", pct=True) * 10 - 1e-9)).astype(int)
        lift = frame.groupby(decile)["y"].mean().reindex(deciles) / rate if rate > 0 else pd.Series(np.nan, index=deciles)
        ax.bar(deciles + offset, lift.to_numpy(), width=0.4, label=name)
    ax.axhline(1.0, linestyle=":", color="grey")
    ax.set_xticks(deciles)
    ax.set_xlabel("score decile (1 = top 10%)")
    ax.set_ylabel("lift (SQL rate / overall)")
    ax.set_title("Lift by decile: model vs points")
    ax.legend()
    return _png(fig, plt)


def _chart_frame(y: Any, model_scores: Any, baseline_scores: Any) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "y": pd.to_numeric(pd.Series(np.asarray(y, dtype=object)), errors="coerce"),
            "model": pd.to_numeric(pd.Series(np.asarray(model_scores, dtype=object)), errors="coerce"),
            "baseline": pd.to_numeric(pd.Series(np.asarray(baseline_scores, dtype=object)), errors="coerce"),
        }
    ).dropna()
    if frame.empty:
        raise ValueError("chart: no rows with a label and both scores")
    frame["baseline_rank"] = frame["baseline"].rank(method="average", pct=True)
    return frame


def _quantile_bins(values: pd.Series, bins: int) -> pd.Series:
    return pd.qcut(values.rank(method="average"), q=min(bins, values.nunique()), labels=False, duplicates="drop")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any, plt: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


# --------------------------------------------------------------------------- model files

MODEL_FILE_FORMAT = 1
REQUIRED_METADATA = ("version", "training_window")


def save_model(model: Any, path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Write `model` with `metadata` (must include "version" and "training_window") via joblib.

    Adds the scikit-learn version and the save time. Written to a temporary file first and
    renamed, so a crash never leaves a half-written model where the scorer looks. Model
    files are pickles: load only files this product wrote.
    """
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise ValueError(f"save_model: metadata lacks {missing}; pass e.g. version='2024-06-01' and "
                         "training_window=('2024-01-01', '2024-05-01')")
    import joblib

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": MODEL_FILE_FORMAT,
        "model": model,
        "metadata": {
            **metadata,
            "sklearn_version": sklearn.__version__,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    }
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    os.close(handle)
    try:
        joblib.dump(payload, temporary, compress=3)
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return target


def load_model(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """(model, metadata) from a file written by `save_model`.

    A file saved under another scikit-learn version still loads, with a warning to retrain."""
    import joblib

    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"lead model file {source} not found; materialize lead_scoring_model first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=InconsistentVersionWarning)
        payload = joblib.load(source)
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FILE_FORMAT or "model" not in payload:
        raise ValueError(f"{source} is not a lead model file written by save_model; retrain to replace it")
    metadata = payload["metadata"]
    if metadata.get("sklearn_version") != sklearn.__version__:
        warnings.warn(
            f"lead model {source} was saved with scikit-learn {metadata.get('sklearn_version')}, "
            f"running {sklearn.__version__}; retrain it to be safe",
            stacklevel=2,
        )
    return payload["model"], metadata
