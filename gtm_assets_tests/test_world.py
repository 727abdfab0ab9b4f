"""The demo world: deterministic, believable, and carrying the planted scenarios with readable ground truth."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from gtm_assets.demo import world as w
from gtm_assets_tests.conftest import END_DATE


def test_same_seed_same_world_and_other_seed_other_world(world):
    again = w.generate_world(END_DATE)
    for name in ("campaign_performance", "clicks", "contacts", "deals", "engagements"):
        pd.testing.assert_frame_equal(getattr(world, name), getattr(again, name))
    other = w.generate_world(END_DATE, seed=8)
    assert not other.clicks["gclid"].equals(world.clicks["gclid"].iloc[: len(other.clicks)])
    assert other.campaign_performance["clicks"].sum() != world.campaign_performance["clicks"].sum()


def test_volumes_at_scale_one_and_scale_grows_them(world):
    assert 40_000 <= len(world.clicks) <= 65_000
    assert 2_500 <= len(world.contacts) <= 3_800
    double = w.generate_world(END_DATE, scale=2.0)
    assert 1.8 <= len(double.clicks) / len(world.clicks) <= 2.2
    assert 1.7 <= len(double.contacts) / len(world.contacts) <= 2.3


def test_shape_of_the_account(world):
    campaigns = world.campaigns
    assert len(campaigns) >= 8
    assert {"Search", "Display", "YouTube", "Performance Max"} <= set(campaigns["channel"])
    assert (campaigns["daily_budget"] > 0).all()
    # 90 days ending on the end date, nothing after it
    dates = world.campaign_performance["date"]
    assert dates.min() == pd.Timestamp(END_DATE - timedelta(days=89)) and dates.max() == pd.Timestamp(END_DATE)
    end = pd.Timestamp(END_DATE, tz="UTC") + pd.Timedelta(days=1)
    for frame, column in ((world.clicks, "clicked_at"), (world.contacts, "created_at"),
                          (world.engagements, "occurred_at"), (world.contacts, "customer_at")):
        assert (frame[column].dropna() < end).all(), column
    assert set(world.engagements["event_type"]) >= {"page_view", "content_download", "webinar", "demo_booked", "email_click"}


def test_weekday_seasonality(world):
    perf = world.campaign_performance.assign(weekday=lambda f: f["date"].dt.day_of_week)
    clicks_by_day = perf[perf["campaign_id"] != w.BOT_TRAFFIC].groupby("weekday")["clicks"].mean()
    assert clicks_by_day.loc[[0, 1, 2, 3]].min() > 1.5 * clicks_by_day.loc[[5, 6]].max()


def test_clicks_and_contacts_join_by_gclid(world):
    assert world.clicks["gclid"].is_unique
    with_gclid = world.contacts.dropna(subset=["gclid"])
    assert with_gclid["gclid"].isin(world.clicks["gclid"]).all()
    share = len(with_gclid) / len(world.clicks)
    assert 0.01 < share < 0.08  # a few percent of clicks become contacts
    no_gclid = world.contacts[world.contacts["gclid"].isna()]
    assert no_gclid["utm_source"].notna().sum() > 200 and no_gclid["utm_source"].isna().sum() > 200


def test_lifecycle_stages_are_ordered_with_realistic_lags(world):
    c = world.contacts
    stages = ["lead_at", "mql_at", "sql_at", "opportunity_at", "customer_at"]
    for earlier, later in zip(stages, stages[1:]):
        both = c[[earlier, later]].dropna()
        assert (both[later] >= both[earlier]).all(), (earlier, later)
        assert c[later].notna().sum() <= c[earlier].notna().sum()
    lag_days = (c["sql_at"] - c["lead_at"]).dt.total_seconds().dropna() / 86_400
    assert 1 < lag_days.median() < 14 and lag_days.max() > 10
    assert 0.10 < c["sql_at"].notna().mean() < 0.40  # most leads never qualify
    won = world.deals[world.deals["is_won"]]
    assert len(won) > 10 and (won["amount"] > 0).all() and won["closed_at"].notna().all()
    assert set(world.deals["contact_id"]) <= set(c["contact_id"])


def _paid_leads(world):
    return world.contacts.dropna(subset=["gclid"]).merge(world.clicks[["gclid", "campaign_id"]], on="gclid")


def test_planted_sql_rate_collapse_while_clicks_hold(world):
    cid = w.SQL_RATE_COLLAPSE
    truth = world.campaign_truth.set_index("campaign_id").loc[cid]
    assert truth["scenario"] == "sql_rate_drop"
    assert truth["recent_sql_rate"] < 0.45 * truth["baseline_sql_rate"]
    leads = _paid_leads(world)
    leads = leads[leads["campaign_id"] == cid]
    cut = pd.Timestamp(END_DATE - timedelta(days=13), tz="UTC")
    # judge SQL within 7 days, on leads old enough for that
    mature = leads[leads["lead_at"] < pd.Timestamp(END_DATE, tz="UTC") - pd.Timedelta(days=6)]
    sql7 = (mature["sql_at"] - mature["lead_at"]) <= pd.Timedelta(days=7)
    recent_rate = sql7[mature["lead_at"] >= cut].mean()
    before_rate = sql7[mature["lead_at"] < cut].mean()
    assert recent_rate < 0.5 * before_rate
    perf = world.campaign_performance[world.campaign_performance["campaign_id"] == cid]
    recent_clicks = perf[perf["date"] >= cut.tz_localize(None)]["clicks"].mean()
    assert recent_clicks > 0.85 * perf[perf["date"] < cut.tz_localize(None)]["clicks"].mean()


def test_planted_cost_per_sql_climb(world):
    cid = w.COST_PER_SQL_CLIMB
    truth = world.campaign_truth.set_index("campaign_id").loc[cid]
    assert truth["recent_cost_per_sql"] > 1.5 * truth["baseline_cost_per_sql"]
    perf = world.campaign_performance[world.campaign_performance["campaign_id"] == cid]
    monthly_cpc = perf.assign(m=(perf["date"] - perf["date"].min()).dt.days // 30).groupby("m").apply(
        lambda f: f["cost"].sum() / f["clicks"].sum(), include_groups=False)
    assert monthly_cpc.is_monotonic_increasing and monthly_cpc.iloc[-1] > 1.6 * monthly_cpc.iloc[0]


def test_planted_bot_burst_spikes_clicks_not_leads(world):
    scenario = world.scenarios.set_index("signal").loc["bot_traffic"]
    cid = scenario["campaign_id"]
    perf = world.campaign_performance[world.campaign_performance["campaign_id"] == cid].set_index("date")
    burst = (perf.index >= pd.Timestamp(scenario["start_date"])) & (perf.index <= pd.Timestamp(scenario["end_date"]))
    assert burst.sum() == 4
    assert perf.loc[burst, "clicks"].mean() > 4 * perf.loc[~burst, "clicks"].mean()
    leads = _paid_leads(world)
    leads = leads[leads["campaign_id"] == cid]
    per_day = leads.groupby(leads["lead_at"].dt.tz_localize(None).dt.normalize()).size().reindex(perf.index, fill_value=0)
    leads_per_click = per_day / perf["clicks"]
    assert leads_per_click[burst].mean() < 0.35 * leads_per_click[~burst].mean()


def test_planted_budget_capped_winner(world):
    cid = w.BUDGET_CAPPED_WINNER
    perf = world.campaign_performance[world.campaign_performance["campaign_id"] == cid]
    assert (perf["search_budget_lost_impression_share"] > 0.10).all()  # every single day
    assert (perf["cost"] >= 0.85 * perf["daily_budget"]).mean() > 0.9
    truth = world.campaign_truth.set_index("campaign_id")["baseline_cost_per_sql"]
    assert truth[cid] <= truth.median()
    assert world.campaign_truth.set_index("campaign_id").loc[cid, "baseline_sql_rate"] == pytest.approx(
        world.campaign_truth["baseline_sql_rate"].max())


def test_campaigns_differ_in_true_quality(world):
    rates = world.campaign_truth["baseline_sql_rate"]
    assert rates.max() > 2.5 * rates.min()
    assert np.isfinite(world.campaign_truth["baseline_cost_per_sql"]).all()


def test_messy_crm_records_are_planted_for_normalization(world):
    emails = world.contacts["email"]
    normalized = emails.str.strip().str.lower()
    assert normalized.duplicated().sum() >= 20  # same person twice, other case/spacing
    assert (~emails.str.contains(r"^[^@\s]+@[^@\s]+\.[a-z]+$", regex=True)).sum() >= 5
    assert emails.str.contains("gmail.com|yahoo.com").sum() > 100
    assert emails.str.contains("mailinator.com|yopmail.com|guerrillamail.com").sum() > 5


def test_world_needs_enough_history_and_a_positive_scale():
    with pytest.raises(ValueError, match="28 days"):
        w.generate_world(END_DATE, days=10)
    with pytest.raises(ValueError, match="scale"):
        w.generate_world(END_DATE, scale=0)
