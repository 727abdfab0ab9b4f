"""Campaign-quality monitoring: decline and opportunity signals per campaign and as-of day.

`evaluate_campaign_quality` / `evaluate_range` turn daily campaign facts and paid leads into
the `campaign_quality` table: one row per as-of day x campaign x signal with the recent
value, the baseline, plain-words evidence, status (ok / watch / alert) and severity.

Everything is computed on a dense campaign x day panel with numpy, for all as-of days at
once, and only with what was knowable on the morning after the as-of day: spend and leads
up to that day, and SQL outcomes that had happened by the end of it.

SQL lag. A lead becomes an SQL days or weeks after it is created, so last week's leads
always look worse than older ones. We define a lead's outcome as "SQL within
`sql_horizon_days` of creation" and estimate, account-wide, the lag distribution F(a) =
P(SQL within a days | SQL within the horizon) from leads old enough to have run the whole
horizon. A lead that is a days old then counts as F(a) of a mature lead ("mature-lead
equivalents"), so a week-old cohort is compared like with like against the baseline
instead of being punished for being young.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gtm_assets.contracts import require_columns
from scipy import special, stats

log = logging.getLogger(__name__)

SIGNALS = ("sql_rate_drop", "cost_per_sql_rise", "bot_traffic", "budget_capped_winner", "spend_anomaly")
STATUSES = ("ok", "watch", "alert")
SEVERITIES = ("info", "warning", "critical")

QUALITY_COLUMNS = [
    "as_of", "campaign_id", "signal", "recent", "baseline", "evidence", "status", "severity",
    "campaign_name", "channel", "window_days", "recent_n", "baseline_n", "probability", "p_value",
    "z", "spend_at_stake", "suggested_action",
]

SUGGESTED_ACTIONS = {
    "sql_rate_drop": "Check search terms, audiences and the landing page for the recent window; "
    "ask sales whether these leads are a worse fit.",
    "cost_per_sql_rise": "Review bids, CPCs and targeting changes; cap the budget until cost per SQL recovers.",
    "bot_traffic": "Inspect placements and search terms for invalid clicks; exclude them and "
    "request a refund from Google Ads.",
    "budget_capped_winner": "Raise the daily budget: this campaign is losing impressions to budget "
    "while converting cheaper than the account median.",
    "spend_anomaly": "Check budget and bid changes and the campaign's status in Google Ads.",
}


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the quality signals. Defaults are tuned by benchmarks/eval_alerts.py."""

    # SQL rate drop (lag-adjusted beta-binomial)
    # Every window from 5 to 41 days is scanned (a scan statistic: like a CUSUM it catches a
    # decline on roughly the day the data since its start shows it, whatever its start).
    recent_windows: tuple[int, ...] = tuple(range(5, 43, 2))
    baseline_days: int = 28
    sql_horizon_days: int = 30
    min_lag_sqls: int = 30  # SQLs with a full horizon needed to trust the account's lag estimate
    rate_drop_ratio: float = 0.8  # alert on P(p_recent < ratio x p_baseline)
    rate_alert_probability: float = 0.99  # 0.95 over a window scan gave 3x the false alerts
    rate_watch_probability: float = 0.90
    min_recent_mature_leads: float = 30.0
    min_baseline_mature_leads: float = 30.0
    critical_rate_ratio: float = 0.5  # recent/baseline at or below this is critical
    # Cost per SQL rise (gamma-Poisson predictive on SQLs per unit of spend)
    cost_alert_p: float = 0.001  # per window; the scan tests many windows a day
    cost_watch_p: float = 0.01
    min_expected_sqls: float = 2.0  # i.e. recent spend of at least 2x the baseline cost per SQL
    critical_cost_ratio: float = 2.0
    trend_weeks: int = 8
    trend_z: float = 3.0  # Mann-Kendall one-sided p < 0.002 (evaluated daily)
    trend_min_rise: float = 0.25  # Theil-Sen rise over the span, relative to the median level
    trend_min_weekly_sqls: int = 3  # weekly cost per SQL on fewer SQLs is noise
    # Bot or bad traffic
    bot_weeks: int = 6
    bot_z: float = 3.0
    bot_critical_z: float = 6.0
    bot_min_clicks: float = 30.0
    lead_rate_collapse: float = 0.5  # today's leads per click below this fraction of usual
    junk_share_min: float = 0.5
    junk_share_lift: float = 0.3
    min_junk_leads: int = 5
    # Budget-capped winner
    budget_lost_share: float = 0.10
    budget_lookback_days: int = 7
    budget_cost_days: int = 28
    budget_min_sqls: int = 5
    # Spend anomaly (robust z against the same weekday)
    spend_weeks: int = 6
    spend_z_watch: float = 3.0
    spend_z_alert: float = 5.0
    spend_mad_floor: float = 0.10  # MAD floor as a fraction of the median (flat budgets have MAD 0)
    min_spend_history: int = 3

    def __post_init__(self) -> None:
        if not self.recent_windows or min(self.recent_windows) < 1:
            raise ValueError("QualityConfig.recent_windows needs at least one window of 1 day or more")
        if self.sql_horizon_days < 1 or self.baseline_days < 7:
            raise ValueError("QualityConfig: sql_horizon_days must be >= 1 and baseline_days >= 7")


DAILY_REQUIRED = ("date", "campaign_id", "spend", "clicks", "impressions")
LEADS_REQUIRED = ("contact_id", "campaign_id", "lead_at")


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    require_columns(frame, columns, f"campaign quality: the {name} frame")


def _utc_day(values: pd.Series) -> pd.Series:
    """Calendar day in UTC of timestamps (naive timestamps are taken as UTC)."""
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return parsed.dt.tz_localize(None).dt.normalize()


def _as_day(value) -> pd.Timestamp:
    day = pd.Timestamp(value)
    if day.tzinfo is not None:
        day = day.tz_convert("UTC").tz_localize(None)
    return day.normalize()


@dataclass
class Panel:
    """Campaign x day arrays over a dense day grid; days before a campaign's first row are NaN spend."""

    campaign_ids: np.ndarray
    campaign_names: np.ndarray
    channels: np.ndarray
    days: pd.DatetimeIndex
    spend: np.ndarray
    clicks: np.ndarray
    impressions: np.ndarray
    budget_lost: np.ndarray
    leads: np.ndarray
    junk_leads: np.ndarray
    active: np.ndarray  # campaign had a daily row or a lead that day
    sql_by_age: np.ndarray  # (C, T, H+1): leads of day d with an SQL within a days
    lag_counts: np.ndarray  # (T, H+1): account-wide leads of day d whose SQL came exactly a days later


def build_panel(daily: pd.DataFrame, leads: pd.DataFrame, end, config: QualityConfig) -> Panel:
    _require(daily, DAILY_REQUIRED, "daily")
    _require(leads, LEADS_REQUIRED, "leads")
    horizon = config.sql_horizon_days
    end_day = _as_day(end)

    facts = daily.copy()
    facts["day"] = _utc_day(facts["date"])
    bad_dates = facts["day"].isna() | facts["campaign_id"].isna()
    if bad_dates.any():
        log.warning("campaign quality: ignoring %d daily row(s) without a date or campaign_id", int(bad_dates.sum()))
        facts = facts[~bad_dates]
    facts["campaign_id"] = facts["campaign_id"].astype(str)
    for column in ("spend", "clicks", "impressions"):
        facts[column] = pd.to_numeric(facts[column], errors="coerce")
    facts["budget_lost"] = pd.to_numeric(
        facts.get("search_budget_lost_impression_share", pd.Series(np.nan, index=facts.index)), errors="coerce"
    )

    paid = leads.copy()
    paid["lead_day"] = _utc_day(paid["lead_at"])
    unplaced = paid["lead_day"].isna() | paid["campaign_id"].isna()
    if unplaced.any():
        log.warning("campaign quality: ignoring %d lead(s) without lead_at or campaign_id", int(unplaced.sum()))
        paid = paid[~unplaced]
    paid["campaign_id"] = paid["campaign_id"].astype(str)
    sql_at = paid["sql_at"] if "sql_at" in paid.columns else pd.Series(pd.NaT, index=paid.index)
    paid["sql_day"] = _utc_day(sql_at)
    domain_type = paid.get("email_domain_type", pd.Series("business", index=paid.index))
    paid["is_junk"] = domain_type.astype(str).str.lower().isin(["free", "disposable"]).to_numpy()

    starts = [s for s in (facts["day"].min(), paid["lead_day"].min()) if pd.notna(s)]
    first_day = min(starts) if starts else end_day
    days = pd.date_range(min(first_day, end_day), end_day, freq="D")
    campaign_ids = np.array(sorted(set(facts["campaign_id"]) | set(paid["campaign_id"])), dtype=object)
    n_campaigns, n_days = len(campaign_ids), len(days)
    c_index = {cid: i for i, cid in enumerate(campaign_ids)}

    def grid(frame: pd.DataFrame, day_column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        inside = (frame[day_column] >= days[0]) & (frame[day_column] <= days[-1])
        frame = frame[inside]
        return frame, frame["campaign_id"].map(c_index).to_numpy(int), ((frame[day_column] - days[0]).dt.days).to_numpy(int)

    facts_in, fc, fd = grid(facts, "day")
    shape = (n_campaigns, n_days)
    spend, clicks, impressions = (np.zeros(shape) for _ in range(3))
    np.add.at(spend, (fc, fd), facts_in["spend"].fillna(0).to_numpy(float))
    np.add.at(clicks, (fc, fd), facts_in["clicks"].fillna(0).to_numpy(float))
    np.add.at(impressions, (fc, fd), facts_in["impressions"].fillna(0).to_numpy(float))
    budget_sum, budget_n = np.zeros(shape), np.zeros(shape)
    has_budget = facts_in["budget_lost"].notna().to_numpy()
    np.add.at(budget_sum, (fc[has_budget], fd[has_budget]), facts_in["budget_lost"].to_numpy(float)[has_budget])
    np.add.at(budget_n, (fc[has_budget], fd[has_budget]), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        budget_lost = np.where(budget_n > 0, budget_sum / budget_n, np.nan)
    has_row = np.zeros(shape, dtype=bool)
    has_row[fc, fd] = True
    # Before a campaign's first daily row its spend is unknown, not zero.
    started = np.maximum.accumulate(has_row, axis=1)
    for arr in (spend, clicks, impressions):
        arr[~started] = np.nan

    leads_in, lc, ld = grid(paid, "lead_day")
    lead_counts, junk_counts = np.zeros(shape), np.zeros(shape)
    np.add.at(lead_counts, (lc, ld), 1)
    np.add.at(junk_counts, (lc, ld), leads_in["is_junk"].to_numpy(float))
    lag = (leads_in["sql_day"] - leads_in["lead_day"]).dt.days.to_numpy(float)
    # An SQL stamped before its lead (CRM backfill) counts as same-day.
    lag = np.where(np.isfinite(lag), np.maximum(lag, 0), np.nan)
    within = np.isfinite(lag) & (lag <= horizon)
    lag_int = lag[within].astype(int)
    sql_hist = np.zeros((n_campaigns, n_days, horizon + 1))
    np.add.at(sql_hist, (lc[within], ld[within], lag_int), 1)
    lag_counts = sql_hist.sum(axis=0)

    names = facts.sort_values("day").groupby("campaign_id")["campaign_name"].last() if "campaign_name" in facts else pd.Series(dtype=object)
    channels = facts.sort_values("day").groupby("campaign_id")["channel"].last() if "channel" in facts else pd.Series(dtype=object)
    return Panel(
        campaign_ids=campaign_ids,
        campaign_names=np.array([names.get(cid, cid) for cid in campaign_ids], dtype=object),
        channels=np.array([channels.get(cid, None) for cid in campaign_ids], dtype=object),
        days=days, spend=spend, clicks=clicks, impressions=impressions, budget_lost=budget_lost,
        leads=lead_counts, junk_leads=junk_counts, active=has_row | (lead_counts > 0),
        sql_by_age=np.cumsum(sql_hist, axis=2), lag_counts=lag_counts,
    )


def lag_cdf(panel: Panel, as_of_idx: np.ndarray, config: QualityConfig) -> tuple[np.ndarray, np.ndarray]:
    """F(a) per as-of day, shape (nD, H+1), and the number of SQLs it was estimated from.

    Uses leads old enough to have run the whole horizon. With fewer than `min_lag_sqls` of
    those (young account), falls back to every lag observed so far, which leans short.
    """
    horizon = config.sql_horizon_days
    cum = np.vstack([np.zeros((1, horizon + 1)), np.cumsum(panel.lag_counts, axis=0)])
    mature = cum[np.clip(as_of_idx - horizon + 1, 0, None)]
    ages = np.arange(horizon + 1)
    observed = cum[np.clip(as_of_idx[:, None] - ages[None, :] + 1, 0, None), ages[None, :]]
    mature_total = mature.sum(axis=1)
    use_mature = mature_total >= config.min_lag_sqls
    counts = np.where(use_mature[:, None], mature, observed)
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf = np.where(total[:, None] > 0, np.cumsum(counts, axis=1) / total[:, None], 1.0)
    cdf[:, -1] = 1.0
    return cdf, total


@dataclass
class AgeSlices:
    """Per age k (days before the as-of day): leads, mature-lead equivalents, SQLs known, spend."""

    leads: np.ndarray  # (K, C, nD)
    mature_leads: np.ndarray
    sqls: np.ndarray
    spend: np.ndarray
    effective_spend: np.ndarray  # spend weighted by the completeness of its leads' SQLs

    def window(self, field: str, offset: int, length: int) -> np.ndarray:
        return getattr(self, field)[offset : offset + length].sum(axis=0)


def age_slices(panel: Panel, as_of_idx: np.ndarray, cdf: np.ndarray, max_age: int, config: QualityConfig) -> AgeSlices:
    horizon = config.sql_horizon_days
    n_campaigns = len(panel.campaign_ids)
    shape = (max_age, n_campaigns, len(as_of_idx))
    out = {name: np.zeros(shape) for name in ("leads", "mature_leads", "sqls", "spend", "effective_spend")}
    spend = np.nan_to_num(panel.spend)
    for age in range(max_age):
        day = as_of_idx - age
        ok = day >= 0
        day_c = np.clip(day, 0, None)
        capped = min(age, horizon)
        completeness = cdf[:, capped]
        leads = np.where(ok, panel.leads[:, day_c], 0.0)
        out["leads"][age] = leads
        out["mature_leads"][age] = leads * completeness
        out["sqls"][age] = np.where(ok, panel.sql_by_age[:, day_c, capped], 0.0)
        out["spend"][age] = np.where(ok, spend[:, day_c], 0.0)
        out["effective_spend"][age] = out["spend"][age] * completeness
    return AgeSlices(**out)


def prob_rate_below(sqls_recent, mature_recent, sqls_base, mature_base, ratio: float, grid: int = 48) -> np.ndarray:
    """P(p_recent < ratio x p_baseline) given SQL counts and mature-lead equivalents.

    Baseline: p ~ Beta(1 + SQLs, 1 + non-SQLs). Recent: p ~ Gamma(1 + SQLs, mature-lead
    equivalents), the Poisson form, because a young cohort's SQL count is a sum of many
    small-probability outcomes (p x F(age)) and varies more than a binomial over its
    mature-equivalent count would; the binomial form was overconfident and raised false alerts.
    Integrates over quantiles of the baseline posterior (logit-normal match of the Beta:
    exact mean and variance of logit p), accurate for the counts we alert on and 5x faster
    than inverting the incomplete beta.
    """
    sqls_recent = np.asarray(sqls_recent, float)
    mature_recent = np.asarray(mature_recent, float)
    a_b = 1.0 + np.asarray(sqls_base, float)
    b_b = 1.0 + np.maximum(np.asarray(mature_base, float) - np.asarray(sqls_base, float), 0.0)
    quantiles = stats.norm.ppf((np.arange(grid) + 0.5) / grid)
    mean = special.digamma(a_b) - special.digamma(b_b)
    spread = np.sqrt(special.polygamma(1, a_b) + special.polygamma(1, b_b))
    base = special.expit(mean[..., None] + spread[..., None] * quantiles)
    below = special.gammainc(1.0 + sqls_recent[..., None], mature_recent[..., None] * ratio * base)
    return np.where(mature_recent > 0, below.mean(axis=-1), np.nan)


def sql_shortfall_p(sqls_recent, spend_recent, sqls_base, spend_base) -> np.ndarray:
    """P(X <= observed SQLs) when SQLs per unit spend keep the baseline rate (gamma-Poisson predictive).

    The baseline rate is itself uncertain (Gamma(SQLs + 1/2, spend)), so the predictive is
    negative binomial: a plain Poisson with the baseline plugged in over-alerts on small accounts.
    """
    spend_recent = np.asarray(spend_recent, float)
    spend_base = np.asarray(spend_base, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = spend_base / (spend_base + spend_recent)
        p = stats.nbinom.cdf(np.asarray(sqls_recent, float), np.asarray(sqls_base, float) + 0.5, share)
    return np.where((spend_base > 0) & (spend_recent > 0), p, np.nan)


@contextmanager
def _quiet():
    """Silence numpy's all-NaN-slice warnings: a campaign without history is expected, not a fault."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _ratio(numerator, denominator) -> np.ndarray:
    numerator = np.asarray(numerator, float)
    denominator = np.asarray(denominator, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _trend(weekly_cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mann-Kendall z and Theil-Sen slope along the last axis (oldest week first)."""
    n = weekly_cost.shape[-1]
    i, j = np.triu_indices(n, k=1)
    diffs = weekly_cost[..., j] - weekly_cost[..., i]
    valid = np.isfinite(diffs)
    score = np.where(valid, np.sign(diffs), 0).sum(axis=-1)
    pairs = valid.sum(axis=-1)
    # Variance scaled to the number of usable pairs, so a missing week does not inflate z.
    variance = n * (n - 1) * (2 * n + 5) / 18 * pairs / len(i)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        z = np.where(variance > 0, (score - np.sign(score)) / np.sqrt(variance), 0.0)
        slope = np.nanmedian(np.where(valid, diffs / (j - i), np.nan), axis=-1)
    return z, slope


def _fmt_money(values) -> pd.Series:
    return pd.Series(values).map(lambda v: "n/a" if pd.isna(v) else f"{v:,.0f}")


def _fmt_pct(values) -> pd.Series:
    return pd.Series(values).map(lambda v: "n/a" if pd.isna(v) else f"{100 * v:.1f}%")


def _fmt_num(values, digits: int = 0) -> pd.Series:
    return pd.Series(values).map(lambda v: "n/a" if pd.isna(v) else f"{v:,.{digits}f}")


def _status(alert: np.ndarray, watch: np.ndarray) -> np.ndarray:
    return np.where(alert, "alert", np.where(watch, "watch", "ok"))


def evaluate_range(
    daily: pd.DataFrame, leads: pd.DataFrame, start, end, config: QualityConfig = QualityConfig()
) -> pd.DataFrame:
    """campaign_quality rows for every as-of day in [start, end], each seeing only what was known then."""
    start_day, end_day = _as_day(start), _as_day(end)
    if end_day < start_day:
        raise ValueError(f"campaign quality: end {end_day.date()} is before start {start_day.date()}")
    panel = build_panel(daily, leads, end_day, config)
    as_of_days = pd.date_range(max(start_day, panel.days[0]), end_day, freq="D")
    as_of_idx = np.asarray((as_of_days - panel.days[0]).days, dtype=int)
    if len(as_of_idx) == 0:
        return pd.DataFrame(columns=QUALITY_COLUMNS)

    windows = tuple(sorted(config.recent_windows))
    max_age = max(
        max(windows) + config.baseline_days, 7 * config.trend_weeks, config.budget_cost_days,
        7 * max(config.bot_weeks, config.spend_weeks) + 1,
    )
    cdf, lag_sqls = lag_cdf(panel, as_of_idx, config)
    ages = age_slices(panel, as_of_idx, cdf, max_age, config)
    context = {
        "as_of": np.broadcast_to(as_of_days.to_numpy()[None, :], (len(panel.campaign_ids), len(as_of_idx))),
        "campaign_id": np.broadcast_to(panel.campaign_ids[:, None], (len(panel.campaign_ids), len(as_of_idx))),
        "campaign_name": np.broadcast_to(panel.campaign_names[:, None], (len(panel.campaign_ids), len(as_of_idx))),
        "channel": np.broadcast_to(panel.channels[:, None], (len(panel.campaign_ids), len(as_of_idx))),
    }
    # Judge only campaigns with a daily row or a lead in the last four weeks.
    active_cum = np.hstack([np.zeros((len(panel.campaign_ids), 1)), np.cumsum(panel.active, axis=1)])
    recent_activity = active_cum[:, as_of_idx + 1] - active_cum[:, np.clip(as_of_idx - 27, 0, None)]
    keep = recent_activity > 0

    parts = [
        _sql_rate_drop(ages, lag_sqls, windows, config),
        _cost_per_sql_rise(ages, windows, config),
        _bot_traffic(panel, as_of_idx, config),
        _budget_capped_winner(panel, ages, as_of_idx, config),
        _spend_anomaly(panel, as_of_idx, config),
    ]
    frames = []
    for part in parts:
        columns = {**context, **part}
        flat = {name: np.asarray(values)[keep] for name, values in columns.items()}
        frames.append(pd.DataFrame(flat))
    quality = pd.concat(frames, ignore_index=True)
    quality["as_of"] = pd.to_datetime(quality["as_of"]).astype("datetime64[us]")
    quality["suggested_action"] = np.where(
        quality["status"] == "ok", None, quality["signal"].map(SUGGESTED_ACTIONS)
    )
    for column in QUALITY_COLUMNS:
        if column not in quality:
            quality[column] = np.nan
    quality = quality[QUALITY_COLUMNS].sort_values(["as_of", "campaign_id", "signal"], ignore_index=True)
    return quality


def evaluate_campaign_quality(
    daily: pd.DataFrame, leads: pd.DataFrame, as_of, config: QualityConfig = QualityConfig()
) -> pd.DataFrame:
    """campaign_quality rows for one as-of day (the morning-after view of that day)."""
    return evaluate_range(daily, leads, as_of, as_of, config)


def _sql_rate_drop(ages: AgeSlices, lag_sqls: np.ndarray, windows: tuple[int, ...], config: QualityConfig) -> dict:
    per_window = []
    for window in windows:
        recent_sqls = ages.window("sqls", 0, window)
        recent_mature = ages.window("mature_leads", 0, window)
        base_sqls = ages.window("sqls", window, config.baseline_days)
        base_mature = ages.window("mature_leads", window, config.baseline_days)
        probability = prob_rate_below(recent_sqls, recent_mature, base_sqls, base_mature, config.rate_drop_ratio)
        enough = (recent_mature >= config.min_recent_mature_leads) & (base_mature >= config.min_baseline_mature_leads)
        half = (recent_mature >= config.min_recent_mature_leads / 2) & (base_mature >= config.min_baseline_mature_leads / 2)
        per_window.append(dict(
            recent_sqls=recent_sqls, recent_mature=recent_mature, recent_leads=ages.window("leads", 0, window),
            base_sqls=base_sqls, base_mature=base_mature, base_leads=ages.window("leads", window, config.baseline_days),
            probability=probability, enough=enough, half=half, spend=ages.window("spend", 0, window),
            window=np.full(probability.shape, window),
        ))
    stacked = {k: np.stack([w[k] for w in per_window]) for k in per_window[0]}
    # The window with the strongest evidence among those with enough leads; the shortest otherwise.
    score = np.where(stacked["half"], stacked["probability"], -1.0)
    best = np.argmax(score, axis=0)
    pick = {k: np.take_along_axis(v, best[None], axis=0)[0] for k, v in stacked.items()}
    recent = _ratio(pick["recent_sqls"], pick["recent_mature"])
    baseline = _ratio(pick["base_sqls"], pick["base_mature"])
    alert = pick["enough"] & (pick["probability"] > config.rate_alert_probability)
    watch = pick["half"] & (pick["probability"] > config.rate_watch_probability)
    critical = alert & (_ratio(recent, baseline) <= config.critical_rate_ratio)
    shape = recent.shape
    flat = lambda a: np.asarray(a).ravel()  # noqa: E731
    lag_note = np.broadcast_to(lag_sqls[None, :], shape)
    evidence = (
        "Lag-adjusted SQL rate " + _fmt_pct(flat(recent)) + " over the last " + _fmt_num(flat(pick["window"]))
        + " days (" + _fmt_num(flat(pick["recent_sqls"])) + " SQLs from " + _fmt_num(flat(pick["recent_leads"]))
        + " leads, " + _fmt_num(flat(pick["recent_mature"]), 1) + " mature-lead equivalents) vs "
        + _fmt_pct(flat(baseline)) + " in the " + str(config.baseline_days) + " days before ("
        + _fmt_num(flat(pick["base_sqls"])) + " SQLs from " + _fmt_num(flat(pick["base_leads"])) + " leads, "
        + _fmt_num(flat(pick["base_mature"]), 1) + " mature); P(rate fell more than "
        + f"{100 * (1 - config.rate_drop_ratio):.0f}%) = " + _fmt_num(flat(pick["probability"]), 3)
        + "; SQL lag estimated from " + _fmt_num(flat(lag_note)) + " SQLs."
    )
    too_few = ~flat(pick["half"])
    evidence = evidence.where(
        ~too_few,
        "Too few mature leads to judge: " + _fmt_num(flat(pick["recent_mature"]), 1) + " recent mature-lead equivalents ("
        + f"need {config.min_recent_mature_leads:.0f}) and " + _fmt_num(flat(pick["base_mature"]), 1) + " in the baseline.",
    )
    return dict(
        signal=np.full(shape, "sql_rate_drop"), recent=recent, baseline=baseline,
        evidence=evidence.to_numpy().reshape(shape), status=_status(alert, watch),
        severity=np.where(critical, "critical", np.where(alert, "warning", "info")),
        window_days=pick["window"], recent_n=pick["recent_mature"], baseline_n=pick["base_mature"],
        probability=pick["probability"], spend_at_stake=pick["spend"],
    )


def _cost_per_sql_rise(ages: AgeSlices, windows: tuple[int, ...], config: QualityConfig) -> dict:
    per_window = []
    for window in windows:
        recent_sqls = ages.window("sqls", 0, window)
        recent_eff = ages.window("effective_spend", 0, window)
        base_sqls = ages.window("sqls", window, config.baseline_days)
        base_eff = ages.window("effective_spend", window, config.baseline_days)
        expected = base_sqls * _ratio(recent_eff, base_eff)
        p_value = sql_shortfall_p(recent_sqls, recent_eff, base_sqls, base_eff)
        enough = np.nan_to_num(expected) >= config.min_expected_sqls
        per_window.append(dict(
            recent_sqls=recent_sqls, recent_eff=recent_eff, base_sqls=base_sqls, base_eff=base_eff,
            expected=expected, p_value=p_value, enough=enough, spend=ages.window("spend", 0, window),
            window=np.full(recent_sqls.shape, window),
        ))
    stacked = {k: np.stack([w[k] for w in per_window]) for k in per_window[0]}
    score = np.where(stacked["enough"] & np.isfinite(stacked["p_value"]), stacked["p_value"], 2.0)
    best = np.argmin(score, axis=0)
    pick = {k: np.take_along_axis(v, best[None], axis=0)[0] for k, v in stacked.items()}
    recent = _ratio(pick["recent_eff"], pick["recent_sqls"])
    baseline = _ratio(pick["base_eff"], pick["base_sqls"])
    shortfall_alert = pick["enough"] & (pick["p_value"] < config.cost_alert_p)
    shortfall_watch = pick["enough"] & (pick["p_value"] < config.cost_watch_p)

    # Steady rise: weekly lag-adjusted cost per SQL over the last `trend_weeks` weeks.
    weeks = config.trend_weeks
    week_eff = np.stack([ages.window("effective_spend", 7 * w, 7) for w in range(weeks)])[::-1]
    week_sqls = np.stack([ages.window("sqls", 7 * w, 7) for w in range(weeks)])[::-1]
    # A week with no SQL is counted at half an SQL so it reads as "expensive" rather than missing.
    weekly_cost = np.where(week_eff > 0, week_eff / np.maximum(week_sqls, 0.5), np.nan)
    weekly_cost = np.moveaxis(weekly_cost, 0, -1)
    trend_z, slope = _trend(weekly_cost)
    with _quiet():
        level = np.nanmedian(np.where(np.isfinite(weekly_cost), weekly_cost, np.nan), axis=-1) if weekly_cost.size else slope
    rise = _ratio(slope * (weeks - 1), level)
    trend_alert = (
        (trend_z > config.trend_z) & (rise > config.trend_min_rise)
        & (week_sqls.min(axis=0) >= config.trend_min_weekly_sqls)
    )
    alert = shortfall_alert | trend_alert
    watch = shortfall_watch
    critical = shortfall_alert & (_ratio(recent, baseline) >= config.critical_cost_ratio) | (
        shortfall_alert & (pick["recent_sqls"] == 0)
    )
    shape = recent.shape
    flat = lambda a: np.asarray(a).ravel()  # noqa: E731
    evidence = (
        _fmt_num(flat(pick["recent_sqls"])) + " SQLs so far on " + _fmt_money(flat(pick["spend"])) + " spend over the last "
        + _fmt_num(flat(pick["window"])) + " days where the " + str(config.baseline_days) + "-day baseline ("
        + _fmt_num(flat(pick["base_sqls"])) + " SQLs, cost per SQL " + _fmt_money(flat(baseline))
        + ") predicts " + _fmt_num(flat(pick["expected"]), 1) + " by now; lag-adjusted cost per SQL "
        + _fmt_money(flat(recent)) + "; P(this few or fewer) = " + _fmt_num(flat(pick["p_value"]), 4) + "."
    )
    trend_words = (
        " Weekly cost per SQL has risen " + _fmt_pct(flat(rise)) + f" over {weeks} weeks (Mann-Kendall z = "
        + _fmt_num(flat(trend_z), 2) + ")."
    )
    evidence = evidence + trend_words.where(flat(trend_alert), "")
    return dict(
        signal=np.full(shape, "cost_per_sql_rise"), recent=recent, baseline=baseline,
        evidence=evidence.to_numpy().reshape(shape), status=_status(alert, watch),
        severity=np.where(critical, "critical", np.where(alert, "warning", "info")),
        window_days=pick["window"], recent_n=pick["recent_sqls"], baseline_n=pick["base_sqls"],
        p_value=pick["p_value"], z=trend_z, spend_at_stake=pick["spend"],
    )


def _same_weekday(values: np.ndarray, as_of_idx: np.ndarray, weeks: int) -> np.ndarray:
    """(C, nD, weeks) values on the same weekday 1..weeks weeks before each as-of day (NaN if none)."""
    idx = as_of_idx[:, None] - 7 * np.arange(1, weeks + 1)[None, :]
    return np.where(idx >= 0, values[:, np.clip(idx, 0, None)], np.nan)


def _bot_traffic(panel: Panel, as_of_idx: np.ndarray, config: QualityConfig) -> dict:
    clicks = panel.clicks[:, as_of_idx]
    impressions = panel.impressions[:, as_of_idx]
    leads = panel.leads[:, as_of_idx]
    junk = panel.junk_leads[:, as_of_idx]
    past_clicks = _same_weekday(panel.clicks, as_of_idx, config.bot_weeks)
    past_impr = _same_weekday(panel.impressions, as_of_idx, config.bot_weeks)
    past_leads = _same_weekday(np.where(np.isnan(panel.clicks), np.nan, panel.leads), as_of_idx, config.bot_weeks)
    past_junk = _same_weekday(np.where(np.isnan(panel.clicks), np.nan, panel.junk_leads), as_of_idx, config.bot_weeks)
    history = np.isfinite(past_clicks).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), _quiet():
        mean_clicks = np.nanmean(past_clicks, axis=-1)
        sd_clicks = np.nanstd(past_clicks, axis=-1, ddof=1)
        past_ctr = np.where(past_impr > 0, past_clicks / past_impr, np.nan)
        mean_ctr = np.nanmean(past_ctr, axis=-1)
        sd_ctr = np.nanstd(past_ctr, axis=-1, ddof=1)
        # Floors: a quiet campaign's sd can be ~0; clicks are at least Poisson-noisy.
        click_z = (clicks - mean_clicks) / np.fmax(np.fmax(sd_clicks, np.sqrt(mean_clicks)), 1.0)
        ctr = _ratio(clicks, impressions)
        ctr_z = (ctr - mean_ctr) / np.fmax(sd_ctr, 0.1 * mean_ctr)
        base_lpc = _ratio(np.nansum(past_leads, axis=-1), np.nansum(past_clicks, axis=-1))
        base_junk = _ratio(np.nansum(past_junk, axis=-1), np.nansum(past_leads, axis=-1))
    lpc = _ratio(leads, clicks)
    junk_share = _ratio(junk, leads)
    z = np.fmax(np.nan_to_num(click_z, nan=-np.inf), np.nan_to_num(ctr_z, nan=-np.inf))
    z = np.where(np.isfinite(z), z, np.nan)
    spike = (history >= 3) & (clicks >= config.bot_min_clicks) & (np.nan_to_num(z) > config.bot_z)
    collapse = np.nan_to_num(lpc, nan=0.0) < config.lead_rate_collapse * np.nan_to_num(base_lpc, nan=0.0)
    junk_cluster = (
        (junk >= config.min_junk_leads) & (np.nan_to_num(junk_share) >= config.junk_share_min)
        & (np.nan_to_num(junk_share) >= np.nan_to_num(base_junk) + config.junk_share_lift)
    )
    alert = spike & (collapse | junk_cluster)
    watch = spike | junk_cluster
    shape = clicks.shape
    flat = lambda a: np.asarray(a).ravel()  # noqa: E731
    evidence = (
        _fmt_num(flat(clicks)) + " clicks (CTR " + _fmt_pct(flat(ctr)) + ") vs a usual "
        + _fmt_num(flat(mean_clicks), 1) + " (CTR " + _fmt_pct(flat(mean_ctr)) + ") on the same weekday of the last "
        + _fmt_num(flat(history)) + " weeks, z = " + _fmt_num(flat(z), 1) + "; leads per click "
        + _fmt_pct(flat(lpc)) + " vs " + _fmt_pct(flat(base_lpc)) + "; " + _fmt_num(flat(junk)) + " of "
        + _fmt_num(flat(leads)) + " leads on free/disposable email domains (usual share " + _fmt_pct(flat(base_junk)) + ")."
    )
    return dict(
        signal=np.full(shape, "bot_traffic"), recent=clicks, baseline=mean_clicks,
        evidence=evidence.to_numpy().reshape(shape), status=_status(alert, watch),
        severity=np.where(alert & (z >= config.bot_critical_z), "critical", np.where(alert, "warning", "info")),
        window_days=np.ones(shape), recent_n=leads, baseline_n=np.nansum(past_leads, axis=-1), z=z,
        spend_at_stake=panel.spend[:, as_of_idx],
    )


def _budget_capped_winner(panel: Panel, ages: AgeSlices, as_of_idx: np.ndarray, config: QualityConfig) -> dict:
    lookback = config.budget_lookback_days
    idx = as_of_idx[:, None] - np.arange(lookback)[None, :]
    lost = np.where(idx >= 0, panel.budget_lost[:, np.clip(idx, 0, None)], np.nan)
    with _quiet():
        lost_share = np.nanmean(lost, axis=-1)
    sqls = ages.window("sqls", 0, config.budget_cost_days)
    cost_per_sql = _ratio(ages.window("effective_spend", 0, config.budget_cost_days), sqls)
    qualified = np.where(sqls >= config.budget_min_sqls, cost_per_sql, np.nan)
    with _quiet():
        account_median = np.nanmedian(qualified, axis=0, keepdims=True) * np.ones_like(qualified)
    alert = (
        (np.nan_to_num(lost_share) > config.budget_lost_share) & (sqls >= config.budget_min_sqls)
        & (np.nan_to_num(cost_per_sql, nan=np.inf) <= np.nan_to_num(account_median, nan=-np.inf))
    )
    shape = sqls.shape
    flat = lambda a: np.asarray(a).ravel()  # noqa: E731
    evidence = (
        "Lost " + _fmt_pct(flat(lost_share)) + " of search impressions to budget over the last " + str(lookback)
        + " days; lag-adjusted cost per SQL " + _fmt_money(flat(cost_per_sql)) + " on " + _fmt_num(flat(sqls))
        + f" SQLs in {config.budget_cost_days} days vs the account median " + _fmt_money(flat(account_median)) + "."
    )
    return dict(
        signal=np.full(shape, "budget_capped_winner"), recent=cost_per_sql, baseline=account_median,
        evidence=evidence.to_numpy().reshape(shape), status=_status(alert, np.zeros(shape, bool)),
        severity=np.full(shape, "info"), window_days=np.full(shape, config.budget_cost_days),
        recent_n=sqls, probability=lost_share, spend_at_stake=ages.window("spend", 0, lookback),
    )


def _spend_anomaly(panel: Panel, as_of_idx: np.ndarray, config: QualityConfig) -> dict:
    spend = panel.spend[:, as_of_idx]
    past = _same_weekday(panel.spend, as_of_idx, config.spend_weeks)
    history = np.isfinite(past).sum(axis=-1)
    with _quiet():
        median = np.nanmedian(past, axis=-1)
        mad = 1.4826 * np.nanmedian(np.abs(past - median[..., None]), axis=-1)
    scale = np.fmax(mad, np.fmax(config.spend_mad_floor * median, 1.0))
    z = (spend - median) / scale
    judged = (history >= config.min_spend_history) & np.isfinite(z)
    alert = judged & (np.abs(z) >= config.spend_z_alert)
    watch = judged & (np.abs(z) >= config.spend_z_watch)
    shape = spend.shape
    flat = lambda a: np.asarray(a).ravel()  # noqa: E731
    evidence = (
        "Spent " + _fmt_money(flat(spend)) + " vs a median of " + _fmt_money(flat(median)) + " on the same weekday of the last "
        + _fmt_num(flat(history)) + " weeks (robust z = " + _fmt_num(flat(z), 1) + ")."
    )
    return dict(
        signal=np.full(shape, "spend_anomaly"), recent=spend, baseline=median,
        evidence=evidence.to_numpy().reshape(shape), status=_status(alert, watch),
        severity=np.where(alert, "warning", "info"), window_days=np.ones(shape), recent_n=history, z=z,
        spend_at_stake=np.abs(spend - median),
    )
