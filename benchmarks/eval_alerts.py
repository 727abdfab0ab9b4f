"""Benchmark of the campaign-quality alerts on synthetic campaign worlds with planted declines.

Run: .venv/bin/python benchmarks/eval_alerts.py [--campaigns 240] [--seeds 3]

Each world has stable campaigns and campaigns with a planted decline of known start day:
an SQL-rate drop of 40-75% or a cost-per-SQL rise (CPC up 1.6-2.5x, SQL rate unchanged).
Leads become SQLs after a log-normal lag (median ~4 days, some past the 30-day horizon).
`evaluate_range` runs over the evaluation period; each as-of day sees only spend and leads
up to that day and SQLs that had happened by then (the morning-after view; the test suite
checks that this equals evaluating truncated data).

Metrics
- recall: planted declines with a decline alert (sql_rate_drop or cost_per_sql_rise) on or
  after the start day, before the end of the world.
- false alerts per 100 campaign-weeks: decline-alert episodes (runs of alert days, as posted
  by gtm_assets.alerts) that start on a stable campaign or before a planted start.
- days from start to first alert, and days from *evidence* to first alert. Evidence is the
  first as-of day on which an oracle that knows the start day (compares every lead since the
  start, as known that morning, with the 28 days before it, same lag adjustment and same bar:
  P(drop > 20%) > 0.95 with 30 mature leads, or SQL shortfall p < 0.01) would alert. It is
  the earliest any detector not told the start day could fairly be expected to fire.
- the naive rule: alert when this week's SQL rate (leads of the last 7 days, SQLs as known
  that morning) is 20% below last week's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from gtm_assets.quality import (
    QualityConfig, age_slices, build_panel, evaluate_range, lag_cdf, prob_rate_below, sql_shortfall_p,
)

DAYS = 140
EVAL_START = 63
ONSET_RANGE = (70, 106)
DECLINE_SIGNALS = ("sql_rate_drop", "cost_per_sql_rise")


def make_world(n_campaigns: int, seed: int, planted_share: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(daily, leads, truth) for one synthetic account. truth: campaign_id, kind, onset_day, size."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-01-06")
    day_index = np.arange(DAYS)
    weekday_factor = np.where((start + pd.to_timedelta(day_index, "D")).day_of_week >= 5, 0.7, 1.0)
    daily_frames, lead_frames, truth = [], [], []
    lead_counter = 0
    for c in range(n_campaigns):
        cid = f"c{seed}_{c:03d}"
        budget = float(np.exp(rng.uniform(np.log(120), np.log(1500))))
        cpc = rng.uniform(2.0, 6.0)
        ctr = rng.uniform(0.02, 0.06)
        lead_rate = rng.uniform(0.03, 0.08)
        sql_rate = rng.uniform(0.15, 0.40)
        kind, onset, size = "stable", -1, 0.0
        if rng.random() < planted_share:
            kind = "sql_rate_drop" if rng.random() < 0.6 else "cost_rise"
            onset = int(rng.integers(*ONSET_RANGE))
            size = rng.uniform(0.40, 0.75) if kind == "sql_rate_drop" else rng.uniform(1.6, 2.5)
        spend = budget * weekday_factor * rng.uniform(0.9, 1.1, DAYS)
        day_cpc = np.full(DAYS, cpc)
        day_sql_rate = np.full(DAYS, sql_rate)
        if kind == "sql_rate_drop":
            day_sql_rate[onset:] *= 1 - size
        elif kind == "cost_rise":
            day_cpc[onset:] *= size
        clicks = rng.poisson(spend / day_cpc)
        impressions = rng.poisson(clicks / ctr)
        leads = rng.binomial(clicks, lead_rate)
        budget_lost = np.clip(rng.normal(0.05, 0.05, DAYS), 0, 1)
        daily_frames.append(pd.DataFrame({
            "date": start + pd.to_timedelta(day_index, "D"), "campaign_id": cid, "campaign_name": f"Campaign {cid}",
            "spend": spend.round(2), "clicks": clicks, "impressions": impressions, "leads": leads,
            "sqls": 0, "search_budget_lost_impression_share": budget_lost, "channel": "search",
        }))
        lead_day = np.repeat(day_index, leads)
        n = len(lead_day)
        lead_at = start + pd.to_timedelta(lead_day, "D") + pd.to_timedelta(rng.uniform(0, 86400, n), "s")
        becomes_sql = rng.random(n) < day_sql_rate[lead_day]
        lag_days = rng.lognormal(np.log(4.0), 0.8, n)
        sql_at = pd.Series(lead_at + pd.to_timedelta(lag_days, "D")).where(becomes_sql)
        lead_frames.append(pd.DataFrame({
            "contact_id": [f"L{lead_counter + i}" for i in range(n)], "campaign_id": cid,
            "lead_at": pd.Series(lead_at).dt.tz_localize("UTC"), "sql_at": sql_at.dt.tz_localize("UTC"),
            "email_domain_type": np.where(rng.random(n) < 0.2, "free", "business"),
        }))
        lead_counter += n
        truth.append({"campaign_id": cid, "kind": kind, "onset_day": onset, "size": size})
    return pd.concat(daily_frames, ignore_index=True), pd.concat(lead_frames, ignore_index=True), pd.DataFrame(truth)


def evidence_days(daily, leads, truth, config: QualityConfig) -> pd.Series:
    """First as-of day index on which the known-onset oracle would alert, per planted campaign."""
    end = daily["date"].max()
    panel = build_panel(daily, leads, end, config)
    as_of_idx = np.arange(EVAL_START, DAYS)
    cdf, _ = lag_cdf(panel, as_of_idx, config)
    ages = age_slices(panel, as_of_idx, cdf, DAYS, config)
    cum = {f: np.cumsum(getattr(ages, f), axis=0) for f in ("sqls", "mature_leads", "effective_spend")}
    position = {cid: i for i, cid in enumerate(panel.campaign_ids)}
    result = {}
    for row in truth[truth["kind"] != "stable"].itertuples():
        c = position[row.campaign_id]
        length = as_of_idx - row.onset_day + 1
        valid = length >= 1
        L = np.clip(length, 1, None)
        cols = np.arange(len(as_of_idx))

        def window(field, offset, size):
            top = cum[field][np.clip(offset + size - 1, 0, DAYS - 1), c, cols]
            bottom = np.where(offset > 0, cum[field][np.clip(offset - 1, 0, DAYS - 1), c, cols], 0.0)
            return top - bottom

        rs, rm = window("sqls", 0, L), window("mature_leads", 0, L)
        bs, bm = window("sqls", L, config.baseline_days), window("mature_leads", L, config.baseline_days)
        re_, be = window("effective_spend", 0, L), window("effective_spend", L, config.baseline_days)
        rate_hit = (
            (prob_rate_below(rs, rm, bs, bm, config.rate_drop_ratio) > config.rate_alert_probability)
            & (rm >= config.min_recent_mature_leads) & (bm >= config.min_baseline_mature_leads)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = bs * re_ / be
        cost_hit = (sql_shortfall_p(rs, re_, bs, be) < config.cost_alert_p) & (np.nan_to_num(expected) >= config.min_expected_sqls)
        hits = np.flatnonzero(valid & (rate_hit | cost_hit))
        result[row.campaign_id] = as_of_idx[hits[0]] if len(hits) else np.nan
    return pd.Series(result, name="evidence_day", dtype=float)


def naive_alert_days(daily, leads, config: QualityConfig) -> pd.DataFrame:
    """(campaign_id, day) where this week's SQL rate is 20% below last week's, as known that morning."""
    end = daily["date"].max()
    panel = build_panel(daily, leads, end, config)
    as_of_idx = np.arange(EVAL_START, DAYS)
    no_lag = np.ones((len(as_of_idx), config.sql_horizon_days + 1))
    ages = age_slices(panel, as_of_idx, no_lag, 14, config)
    this_rate = ages.window("sqls", 0, 7) / np.where(ages.window("leads", 0, 7) > 0, ages.window("leads", 0, 7), np.nan)
    last_rate = ages.window("sqls", 7, 7) / np.where(ages.window("leads", 7, 7) > 0, ages.window("leads", 7, 7), np.nan)
    fired = np.nan_to_num(this_rate, nan=np.inf) < 0.8 * np.nan_to_num(last_rate, nan=-np.inf)
    c, d = np.nonzero(fired)
    return pd.DataFrame({"campaign_id": panel.campaign_ids[c], "day": as_of_idx[d]})


def score(alert_days: pd.DataFrame, truth: pd.DataFrame, evidence: pd.Series | None) -> dict:
    """Recall, false-alert episodes per 100 campaign-weeks and delays from alert days (campaign_id, day)."""
    alert_days = alert_days.drop_duplicates().sort_values(["campaign_id", "day"])
    previous = alert_days.groupby("campaign_id")["day"].shift()
    episodes = alert_days[previous.isna() | (alert_days["day"] - previous > 1)]
    onset = alert_days["campaign_id"].map(truth.set_index("campaign_id")["onset_day"])
    planted = truth[truth["kind"] != "stable"].set_index("campaign_id")
    episode_onset = episodes["campaign_id"].map(truth.set_index("campaign_id")["onset_day"])
    false_episodes = int(((episode_onset < 0) | (episodes["day"] < episode_onset)).sum())
    # Clean exposure: stable campaigns over the whole period, planted ones until their start.
    clean_days = np.where(truth["onset_day"] < 0, DAYS - EVAL_START, np.clip(truth["onset_day"] - EVAL_START, 0, None)).sum()
    after = alert_days[alert_days["day"] >= onset]
    first = after.groupby("campaign_id")["day"].min()
    caught = first.reindex(planted.index)
    delay = caught - planted["onset_day"]
    out = {
        "planted": len(planted), "caught": int(caught.notna().sum()),
        "recall": caught.notna().mean() if len(planted) else np.nan,
        "false_per_100_cw": 100 * false_episodes / (clean_days / 7),
        "median_days_from_start": float(np.nanmedian(delay)) if caught.notna().any() else np.nan,
    }
    if evidence is not None:
        lag = (caught - evidence.reindex(planted.index)).dropna()
        evident = evidence.reindex(planted.index).notna()
        out.update({
            "evident": int(evident.sum()),
            "median_days_from_evidence": float(lag.median()) if len(lag) else np.nan,
            "max_days_from_evidence": float(lag.max()) if len(lag) else np.nan,
            "within_3_days_of_evidence": float(((lag <= 3)).sum() / evident.sum()) if evident.sum() else np.nan,
        })
    return out


def run(n_campaigns: int, seeds: int, config: QualityConfig = QualityConfig()) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        daily, leads, truth = make_world(n_campaigns, seed)
        started = time.perf_counter()
        quality = evaluate_range(daily, leads, daily["date"].min() + pd.Timedelta(days=EVAL_START), daily["date"].max(), config)
        seconds = time.perf_counter() - started
        alerts = quality[(quality["status"] == "alert") & quality["signal"].isin(DECLINE_SIGNALS)]
        alert_days = pd.DataFrame({
            "campaign_id": alerts["campaign_id"].to_numpy(),
            "day": (alerts["as_of"] - daily["date"].min()).dt.days.to_numpy(),
        })
        evidence = evidence_days(daily, leads, truth, config)
        for name, days, ev in (("quality", alert_days, evidence), ("naive_week_over_week", naive_alert_days(daily, leads, config), evidence)):
            rows.append({"seed": seed, "detector": name, "eval_seconds": seconds if name == "quality" else np.nan, **score(days, truth, ev)})
            # Per-kind recall for the product detector.
            if name == "quality":
                for kind in ("sql_rate_drop", "cost_rise"):
                    sub = truth[truth["kind"].isin(["stable", kind])]
                    s = score(days[days["campaign_id"].isin(sub["campaign_id"])], sub, ev)
                    rows.append({"seed": seed, "detector": f"quality[{kind}]", **s})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=240)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    results = run(args.campaigns, args.seeds)
    summary = results.groupby("detector").agg(
        planted=("planted", "sum"), caught=("caught", "sum"), evident=("evident", "sum"),
        false_per_100_cw=("false_per_100_cw", "mean"), median_days_from_start=("median_days_from_start", "median"),
        median_days_from_evidence=("median_days_from_evidence", "median"),
        max_days_from_evidence=("max_days_from_evidence", "max"),
        within_3_days_of_evidence=("within_3_days_of_evidence", "mean"), eval_seconds=("eval_seconds", "mean"),
    )
    summary.insert(2, "recall", summary["caught"] / summary["planted"])
    print(f"{args.seeds} worlds x {args.campaigns} campaigns, {DAYS - EVAL_START} as-of days each")
    print(summary.round(3).to_markdown())


if __name__ == "__main__":
    main()
