"""Specifications of the campaign-quality signals on small synthetic campaign worlds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gtm_assets.quality import (
    QUALITY_COLUMNS, QualityConfig, evaluate_campaign_quality, evaluate_range, prob_rate_below, sql_shortfall_p,
)

START = pd.Timestamp("2025-01-06")  # a Monday
DAYS = 84


def world(campaigns: dict[str, dict], days: int = DAYS, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily facts and leads. Per campaign: spend, cpc, lead_rate, sql_rate, and optional overrides by day:
    sql_rate_from=(day, rate), cpc_from=(day, cpc), clicks_on=(day, clicks, lead_rate), lost_share, junk_on=(day, n)."""
    rng = np.random.default_rng(seed)
    daily_frames, lead_frames = [], []
    for cid, p in campaigns.items():
        day = np.arange(days)
        spend = np.full(days, float(p.get("spend", 500.0)))
        cpc = np.full(days, float(p.get("cpc", 2.0)))
        if "cpc_from" in p:
            cpc[p["cpc_from"][0]:] = p["cpc_from"][1]
        clicks = np.round(spend / cpc).astype(int)
        lead_rate = np.full(days, float(p.get("lead_rate", 0.05)))
        if "clicks_on" in p:
            d, n, lr = p["clicks_on"]
            clicks[d], lead_rate[d] = n, lr
        leads = rng.binomial(clicks, lead_rate)
        sql_rate = np.full(days, float(p.get("sql_rate", 0.3)))
        if "sql_rate_from" in p:
            sql_rate[p["sql_rate_from"][0]:] = p["sql_rate_from"][1]
        daily_frames.append(pd.DataFrame({
            "date": START + pd.to_timedelta(day, "D"), "campaign_id": cid, "campaign_name": f"{cid} name",
            "spend": spend, "clicks": clicks, "impressions": clicks * 25, "leads": leads, "sqls": 0,
            "search_budget_lost_impression_share": p.get("lost_share", 0.0), "channel": "search",
        }))
        lead_day = np.repeat(day, leads)
        n = len(lead_day)
        lead_at = START + pd.to_timedelta(lead_day, "D") + pd.to_timedelta(rng.uniform(0, 86000, n), "s")
        is_sql = rng.random(n) < sql_rate[lead_day]
        lag = rng.lognormal(np.log(p.get("lag_days", 4.0)), 0.7, n)
        domain = np.where(rng.random(n) < 0.1, "free", "business").astype(object)
        if "junk_on" in p:
            d, extra = p["junk_on"]
            lead_day = np.concatenate([lead_day, np.full(extra, d)])
            lead_at = lead_at.append(pd.DatetimeIndex([START + pd.Timedelta(days=d, hours=12)] * extra))
            is_sql = np.concatenate([is_sql, np.zeros(extra, bool)])
            lag = np.concatenate([lag, np.ones(extra)])
            domain = np.concatenate([domain, np.full(extra, "disposable", dtype=object)])
            n += extra
        lead_frames.append(pd.DataFrame({
            "contact_id": [f"{cid}-{i}" for i in range(n)], "campaign_id": cid,
            "lead_at": pd.DatetimeIndex(lead_at).tz_localize("UTC"),
            "sql_at": pd.Series(pd.DatetimeIndex(lead_at).tz_localize("UTC") + pd.to_timedelta(lag, "D")).where(is_sql),
            "email_domain_type": domain,
        }))
    return pd.concat(daily_frames, ignore_index=True), pd.concat(lead_frames, ignore_index=True)


def row(quality: pd.DataFrame, campaign: str, signal: str) -> pd.Series:
    picked = quality[(quality["campaign_id"] == campaign) & (quality["signal"] == signal)]
    assert len(picked) == 1, picked
    return picked.iloc[0]


AS_OF = START + pd.Timedelta(days=DAYS - 1)


def test_planted_sql_rate_collapse_is_flagged_and_a_stable_campaign_is_not():
    daily, leads = world({
        "collapsing": {"spend": 800, "sql_rate": 0.30, "sql_rate_from": (DAYS - 28, 0.09)},
        "stable": {"spend": 800, "sql_rate": 0.30},
    })
    quality = evaluate_campaign_quality(daily, leads, AS_OF)
    assert list(quality.columns) == QUALITY_COLUMNS
    drop = row(quality, "collapsing", "sql_rate_drop")
    assert drop["status"] == "alert" and drop["severity"] == "critical"  # 70% drop: below half the baseline
    assert drop["recent"] < 0.5 * drop["baseline"]
    assert drop["probability"] > 0.99 and drop["recent_n"] >= 30
    assert "SQLs from" in drop["evidence"] and "mature" in drop["evidence"]
    assert drop["suggested_action"]
    assert row(quality, "stable", "sql_rate_drop")["status"] == "ok"
    assert row(quality, "stable", "cost_per_sql_rise")["status"] == "ok"
    # Same SQL rate, same spend: the collapsing campaign's SQLs per spend fell too.
    assert row(quality, "collapsing", "cost_per_sql_rise")["status"] == "alert"


def test_young_leads_are_not_a_drop_when_sqls_simply_have_not_happened_yet():
    # Long SQL lag (median 10 days): last week's leads have few SQLs *yet*.
    daily, leads = world({f"c{i}": {"spend": 800, "sql_rate": 0.3, "lag_days": 10.0} for i in range(4)}, seed=3)
    quality = evaluate_campaign_quality(daily, leads, AS_OF)
    drops = quality[quality["signal"] == "sql_rate_drop"]
    assert (drops["status"] == "ok").all(), drops[["campaign_id", "recent", "baseline", "probability"]]
    # The naive view would see a collapse: raw SQLs per lead of the last 7 days vs the 28 before.
    recent_leads = leads[leads["lead_at"] > AS_OF.tz_localize("UTC") - pd.Timedelta(days=6)]
    known = recent_leads["sql_at"] <= AS_OF.tz_localize("UTC") + pd.Timedelta(days=1)
    assert known.mean() < 0.5 * 0.3
    # ...while the lag-adjusted rate (of the most drop-like window, so biased low) stays near the true 30%.
    assert 0.2 < drops["recent"].mean() < 0.4


def test_evaluating_history_equals_the_morning_after_view():
    daily, leads = world({"a": {"sql_rate_from": (60, 0.1)}, "b": {}}, seed=5)
    as_of = START + pd.Timedelta(days=70)
    full = evaluate_range(daily, leads, as_of, AS_OF)
    cut = as_of.tz_localize("UTC") + pd.Timedelta(days=1)
    known_then = leads[leads["lead_at"] < cut].assign(sql_at=lambda f: f["sql_at"].where(f["sql_at"] < cut))
    morning_after = evaluate_campaign_quality(daily[daily["date"] <= as_of], known_then, as_of)
    from_range = full[full["as_of"] == as_of].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        from_range.drop(columns=["evidence"]), morning_after.drop(columns=["evidence"]), check_dtype=False
    )
    assert full["as_of"].nunique() == (AS_OF - as_of).days + 1
    assert len(full) == full["as_of"].nunique() * 2 * 5  # every day x campaign x signal


def test_bot_spike_with_collapsing_lead_rate_is_an_alert():
    spike_day = DAYS - 1
    daily, leads = world({
        "bots": {"spend": 500, "clicks_on": (spike_day, 1500, 0.002)},
        "busy_but_real": {"spend": 500, "clicks_on": (spike_day, 1500, 0.05)},
    })
    quality = evaluate_campaign_quality(daily, leads, AS_OF)
    bots = row(quality, "bots", "bot_traffic")
    assert bots["status"] == "alert" and bots["z"] > 3 and bots["recent"] == 1500
    assert row(quality, "busy_but_real", "bot_traffic")["status"] == "watch"  # a spike, but leads kept pace


def test_junk_email_cluster_on_a_click_spike_is_an_alert():
    daily, leads = world({"junk": {"spend": 500, "clicks_on": (DAYS - 1, 900, 0.05), "junk_on": (DAYS - 1, 40)}})
    assert row(evaluate_campaign_quality(daily, leads, AS_OF), "junk", "bot_traffic")["status"] == "alert"


def test_budget_capped_winner_is_an_info_alert_only_when_cheaper_than_the_account_median():
    daily, leads = world({
        "cheap_capped": {"spend": 400, "cpc": 1.0, "lost_share": 0.3},
        "dear_capped": {"spend": 400, "cpc": 4.0, "lost_share": 0.3},
        "mid": {"spend": 400, "cpc": 2.0},
    })
    quality = evaluate_campaign_quality(daily, leads, AS_OF)
    winner = row(quality, "cheap_capped", "budget_capped_winner")
    assert (winner["status"], winner["severity"]) == ("alert", "info")
    assert winner["recent"] <= winner["baseline"]
    assert row(quality, "dear_capped", "budget_capped_winner")["status"] == "ok"
    assert row(quality, "mid", "budget_capped_winner")["status"] == "ok"  # not losing impressions


def test_a_steady_cost_per_sql_rise_is_flagged_by_the_trend():
    daily, leads = world({"creeping": {"spend": 1500, "cpc": 1.0}}, seed=11)
    # CPC creeps up 12% a week: no single week is a shock, the trend is.
    week = (daily["date"] - START).dt.days // 7
    factor = 1.12 ** week.to_numpy()
    daily["clicks"] = (daily["clicks"] / factor).round().astype(int)
    keep = leads.merge(daily[["campaign_id", "date"]].assign(factor=factor), how="left",
                       left_on=["campaign_id", leads["lead_at"].dt.tz_localize(None).dt.normalize()], right_on=["campaign_id", "date"])
    rng = np.random.default_rng(1)
    leads = leads[rng.random(len(leads)) < 1 / keep["factor"].to_numpy()]
    cost = row(evaluate_campaign_quality(daily, leads, AS_OF), "creeping", "cost_per_sql_rise")
    assert cost["status"] == "alert"
    assert cost["z"] > 3.0 and "risen" in cost["evidence"]


def test_spend_anomaly_flags_a_tripled_day_and_a_stopped_campaign():
    daily, leads = world({"tripled": {"spend": 300}, "stopped": {"spend": 300}, "steady": {"spend": 300}})
    last = daily["date"] == AS_OF
    daily.loc[last & (daily["campaign_id"] == "tripled"), "spend"] = 900
    daily.loc[last & (daily["campaign_id"] == "stopped"), "spend"] = 0
    quality = evaluate_campaign_quality(daily, leads, AS_OF)
    assert row(quality, "tripled", "spend_anomaly")["status"] == "alert"
    assert row(quality, "stopped", "spend_anomaly")["status"] == "alert"
    assert row(quality, "steady", "spend_anomaly")["status"] == "ok"


def test_zero_sqls_give_null_ratios_not_zero_or_infinity():
    daily, leads = world({"no_sqls": {"spend": 300, "sql_rate": 0.0}})
    cost = row(evaluate_campaign_quality(daily, leads, AS_OF), "no_sqls", "cost_per_sql_rise")
    assert pd.isna(cost["recent"]) and pd.isna(cost["baseline"])
    assert np.isfinite(evaluate_campaign_quality(daily, leads, AS_OF)["recent"].dropna()).all()


def test_probability_helpers_are_monotone_and_match_hand_values():
    # More recent SQLs on the same exposure: a drop is less likely.
    probs = prob_rate_below(np.array([2, 6, 10, 14]), 40.0, 120.0, 400.0, 0.8)
    assert np.all(np.diff(probs) < 0)
    assert probs[0] > 0.99 and probs[-1] < 0.5  # 5% vs 30% is a drop; 35% vs 30% is not
    # With a (nearly) known baseline, the shortfall p is the Poisson CDF: P(X<=3 | mean 10) = 0.0103.
    assert sql_shortfall_p(3, 100.0, 1e6, 1e7) == pytest.approx(0.0103, abs=5e-4)


def test_missing_columns_name_the_frame_and_the_fix():
    daily, leads = world({"a": {}}, days=10)
    with pytest.raises(ValueError, match=r"leads frame lacks column\(s\) \['lead_at'\]"):
        evaluate_campaign_quality(daily, leads.drop(columns=["lead_at"]), AS_OF)
    with pytest.raises(ValueError, match="daily frame lacks"):
        evaluate_campaign_quality(daily.drop(columns=["spend"]), leads, AS_OF)


def test_sixty_days_of_ten_campaigns_take_seconds():
    import time
    daily, leads = world({f"c{i}": {"spend": 400} for i in range(10)}, days=120)
    started = time.perf_counter()
    quality = evaluate_range(daily, leads, START + pd.Timedelta(days=60), START + pd.Timedelta(days=119), QualityConfig())
    assert time.perf_counter() - started < 5
    assert len(quality) == 60 * 10 * 5
