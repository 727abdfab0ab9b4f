"""Specification of the marts: funnel stage rules, touchpoints, attribution through the mart, cost per SQL, economics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gtm_assets import marts
from gtm_assets.attribution import MODELS

T0 = pd.Timestamp("2026-10-05 09:00", tz="UTC")  # a Monday


def at(days: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=days)


def lead(contact_id: str, **fields) -> dict:
    row = {
        "contact_id": contact_id, "merged_contact_ids": contact_id, "lead_at": at(0), "mql_at": pd.NaT,
        "sql_at": pd.NaT, "opportunity_at": pd.NaT, "customer_at": pd.NaT, "gclid": None, "match_source": "none",
        "campaign_id": None, "campaign_name": None, "ad_group_id": None, "keyword": None, "utm_source": None,
        "utm_medium": None, "utm_campaign": None, "channel": "organic_search",
    }
    row.update(fields)
    return row


def leads_frame(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    for column in marts.STAGE_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


CAMPAIGNS = pd.DataFrame({
    "campaign_id": ["10001", "10002"], "campaign_name": ["Search - Brand", "Display - Retargeting"],
    "channel": ["Search", "Display"],
})
NO_DEALS = pd.DataFrame(columns=["deal_id", "contact_id", "amount", "is_won", "closed_at"])
NO_CLICKS = pd.DataFrame(columns=["gclid", "clicked_at", "campaign_id", "ad_group_id", "keyword"])
NO_EVENTS = pd.DataFrame(columns=["engagement_id", "contact_id", "occurred_at", "event_type", "channel"])


def deals_frame(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["deal_id", "contact_id", "amount", "is_won", "closed_at"])
    frame["closed_at"] = pd.to_datetime(frame["closed_at"], utc=True)
    return frame


def events_frame(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["engagement_id", "contact_id", "occurred_at", "event_type", "channel"])
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    return frame


# ---------------------------------------------------------------------------- funnel


def test_a_skipped_mql_counts_as_reached_but_keeps_no_invented_date():
    funnel = marts.build_lead_funnel(leads_frame(lead("a", sql_at=at(2))), NO_DEALS).iloc[0]
    assert funnel["reached_mql"] and funnel["reached_sql"] and not funnel["reached_opportunity"]
    assert pd.isna(funnel["mql_at"])
    assert funnel["skipped_stages"] == "mql" and funnel["has_skipped_stage"]
    assert funnel["days_to_sql"] == pytest.approx(2.0)
    assert np.isnan(funnel["days_mql_to_sql"]) and np.isnan(funnel["days_lead_to_mql"])
    assert funnel["furthest_stage"] == "sql"


def test_a_skipped_sql_takes_the_next_stage_date_for_conversions():
    funnel = marts.build_lead_funnel(
        leads_frame(lead("a", mql_at=at(1), opportunity_at=at(4), customer_at=at(9))), NO_DEALS).iloc[0]
    assert funnel["skipped_stages"] == "sql"
    assert pd.isna(funnel["sql_at"]) and funnel["sql_reached_at"] == at(4)
    assert funnel["days_to_sql"] == pytest.approx(4.0)
    assert funnel["days_opportunity_to_customer"] == pytest.approx(5.0)


def test_a_stage_dated_before_an_earlier_one_is_a_regression_with_null_negative_duration():
    funnel = marts.build_lead_funnel(
        leads_frame(lead("a", mql_at=at(3), sql_at=at(1)), lead("b", mql_at=at(1), sql_at=at(3))), NO_DEALS)
    regressed, clean = funnel.iloc[0], funnel.iloc[1]
    assert regressed["regressed_stages"] == "sql" and regressed["has_stage_regression"]
    assert regressed["sql_at"] == at(1)  # kept as recorded
    assert np.isnan(regressed["days_mql_to_sql"])
    assert regressed["days_to_sql"] == pytest.approx(1.0)
    assert clean["regressed_stages"] == "" and clean["days_mql_to_sql"] == pytest.approx(2.0)
    summary = marts.funnel_summary(funnel)
    assert summary["regressed_sql"] == 1 and summary["leads_with_stage_regression"] == 1
    assert summary["reached_sql"] == 2 and summary["skipped_mql"] == 0


def test_a_won_deal_on_a_merged_contact_makes_the_lead_a_customer_with_its_revenue():
    leads = leads_frame(lead("a", merged_contact_ids="a;a2", mql_at=at(1), sql_at=at(2), opportunity_at=at(3)),
                        lead("b"))
    deals = deals_frame(("d1", "a2", 12_000.0, True, at(20)), ("d2", "a", 5_000.0, False, at(21)),
                        ("d3", "ghost", 9_000.0, True, at(22)))
    funnel = marts.build_lead_funnel(leads, deals).set_index("contact_id")
    assert funnel.loc["a", "reached_customer"] and pd.isna(funnel.loc["a", "customer_at"])
    assert funnel.loc["a", "customer_reached_at"] == at(20)
    assert funnel.loc["a", "skipped_stages"] == ""  # the deal dates the customer stage
    assert funnel.loc["a", "won_revenue"] == 12_000.0 and funnel.loc["b", "won_revenue"] == 0.0
    _, issues = marts.won_revenue(leads, deals)
    assert issues["deals_on_unknown_contacts"] == 1


def test_leads_without_a_creation_time_are_refused_with_the_fix():
    leads = leads_frame(lead("a"))
    leads.loc[0, "lead_at"] = pd.NaT
    with pytest.raises(ValueError, match="without lead_at"):
        marts.build_lead_funnel(leads, NO_DEALS)


# ---------------------------------------------------------------------------- touchpoints


def journey_world():
    """Three leads: a paid click (merged duplicate with engagements), a UTM lead, an organic lead."""
    leads = leads_frame(
        lead("a", merged_contact_ids="a;a_dup", gclid="g1", match_source="gclid", campaign_id="10001",
             ad_group_id="1000101", keyword="acme crm", channel="paid_search", lead_at=at(0.01),
             mql_at=at(1), sql_at=at(2), opportunity_at=at(5)),
        lead("b", match_source="utm", campaign_id="10002", channel="paid_display", utm_source="google",
             utm_medium="display", lead_at=at(1), mql_at=at(1.5), sql_at=at(3), opportunity_at=at(4),
             customer_at=at(10)),
        lead("c", channel="organic_search", lead_at=at(2)),
    )
    clicks = pd.DataFrame({"gclid": ["g1", "g_other"], "clicked_at": [at(0), at(0)], "campaign_id": ["10001", "10001"],
                           "ad_group_id": ["1000101", "1000101"], "keyword": ["acme crm", "acme crm"]})
    events = events_frame(
        ("e1", "a_dup", at(1.5), "pricing_page_view", "web"),   # between lead and SQL, via the merged id
        ("e2", "a", at(3), "email_click", "email"),            # after SQL, before opportunity
        ("e3", "a", at(6), "meeting", "sales"),                # after the opportunity
        ("e4", "b", at(0.5), "page_view", "web"),              # before lead creation
        ("e5", "nobody", at(1), "page_view", "web"),           # no such lead
    )
    deals = deals_frame(("d1", "b", 24_000.0, True, at(10)))
    funnel = marts.build_lead_funnel(leads, deals)
    touches, stats = marts.build_touchpoints(leads, funnel, clicks, events, CAMPAIGNS)
    return leads, funnel, touches, stats


def test_touchpoints_are_in_time_order_with_types_and_milestones():
    _, _, touches, stats = journey_world()
    a = touches[touches["contact_id"] == "a"]
    assert a["touch_type"].tolist() == ["ad_click", "engagement", "engagement", "engagement"]
    assert a["touch_index"].tolist() == [1, 2, 3, 4]
    assert a["channel"].tolist() == ["paid_search", "web", "email", "sales"]
    assert a["lead_touch"].tolist() == [True, False, False, False]
    assert a["opportunity_touch"].tolist() == [False, False, True, False]  # last touch at or before day 5
    b = touches[touches["contact_id"] == "b"]
    assert b["touch_type"].tolist() == ["engagement", "utm_visit"]
    assert b["campaign_id"].tolist()[1] == "10002" and b["channel"].tolist()[1] == "paid_display"
    assert b["lead_touch"].tolist() == [False, True] and b["opportunity_touch"].tolist() == [False, True]
    c = touches[touches["contact_id"] == "c"]
    assert c["touch_type"].tolist() == ["lead_created"] and c["lead_touch"].all() and not c["opportunity_touch"].any()
    assert stats["engagements_not_on_a_lead"] == 1 and stats["leads_without_lead_touch"] == 0
    assert touches["touched_at"].is_monotonic_increasing is False  # sorted per lead, not globally
    assert (touches.groupby("contact_id")["touched_at"].apply(lambda s: s.is_monotonic_increasing)).all()


# ---------------------------------------------------------------------------- attribution


def test_hand_worked_journeys_through_the_attribution_mart():
    _, funnel, touches, _ = journey_world()
    credited = marts.build_campaign_attribution(touches, funnel, CAMPAIGNS)
    get = lambda model, campaign, column: float(  # noqa: E731
        credited[(credited["model"] == model) & (credited["campaign_name"] == campaign)][column].sum())
    # a: click (10001) then a web visit before its SQL; the e-mail click after the SQL does not count.
    # b: a web visit, then the UTM visit (10002) that created it; SQL and a 24k customer.
    assert get("first_touch", "Search - Brand", "sqls") == 1.0
    assert get("first_touch", "Display - Retargeting", "sqls") == 0.0  # b's first touch was a web visit
    assert get("last_touch", "Search - Brand", "sqls") == 0.0
    assert get("last_touch", "Display - Retargeting", "sqls") == 1.0
    assert get("linear", "Search - Brand", "sqls") == pytest.approx(0.5)
    assert get("linear", "non-paid", "sqls") == pytest.approx(1.0)  # half of a, half of b
    assert get("last_touch", "Display - Retargeting", "revenue") == pytest.approx(24_000.0)
    assert get("linear", "Display - Retargeting", "revenue") == pytest.approx(12_000.0)
    email = credited[(credited["channel"] == "email") & (credited["model"] == "linear")]
    assert email["sqls"].sum() == 0.0  # after the conversion
    non_paid = credited[credited["campaign_name"] == "non-paid"]
    assert non_paid["campaign_id"].isna().all() and not non_paid["is_paid"].any()
    conservation = marts.attribution_conservation(credited, funnel)
    assert conservation["conserved"].all() and sorted(conservation["model"]) == sorted(MODELS)
    assert conservation["expected_sqls"].iloc[0] == 2 and conservation["expected_revenue"].iloc[0] == 24_000.0


def test_a_conversion_dated_before_every_touch_still_gets_credited_to_the_first_touch():
    leads = leads_frame(lead("a", gclid="g1", match_source="gclid", campaign_id="10001", channel="paid_search",
                             lead_at=at(1), sql_at=at(-3)))
    clicks = pd.DataFrame({"gclid": ["g1"], "clicked_at": [at(1)], "campaign_id": ["10001"],
                           "ad_group_id": ["1000101"], "keyword": ["acme crm"]})
    events = events_frame(("e1", "a", at(2), "page_view", "web"))
    funnel = marts.build_lead_funnel(leads, NO_DEALS)
    touches, _ = marts.build_touchpoints(leads, funnel, clicks, events, CAMPAIGNS)
    credited = marts.build_campaign_attribution(touches, funnel, CAMPAIGNS)
    assert marts.attribution_conservation(credited, funnel)["conserved"].all()
    last = credited[(credited["model"] == "last_touch") & (credited["sqls"] > 0)]
    assert last["campaign_id"].tolist() == ["10001"]


# ---------------------------------------------------------------------------- cost per SQL


def performance(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["date", "campaign_id", "clicks", "cost"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_cost_per_sql_counts_outcomes_on_the_lead_creation_date():
    leads = leads_frame(
        lead("a", campaign_id="10001", match_source="gclid", lead_at=at(0), mql_at=at(1), sql_at=at(4)),
        lead("b", campaign_id="10001", match_source="utm", lead_at=at(0.2)),
        lead("c", campaign_id="10001", match_source="gclid", lead_at=at(1), customer_at=at(30)),
    )
    deals = deals_frame(("d1", "c", 6_000.0, True, at(30)))
    spend = performance(("2026-10-05", "10001", 40, 100.0), ("2026-10-06", "10001", 10, 50.0),
                        ("2026-10-07", "10001", 8, 30.0), ("2026-10-05", "10002", 5, 20.0))
    table, stats = marts.build_cost_per_sql(marts.build_lead_funnel(leads, deals), spend, CAMPAIGNS)
    day = table.set_index(["date", "campaign_id"])
    monday = day.loc[(pd.Timestamp("2026-10-05"), "10001")]
    assert (monday["leads"], monday["gclid_leads"], monday["utm_leads"], monday["mqls"], monday["sqls"]) == (2, 1, 1, 1, 1)
    assert monday["cost_per_sql"] == pytest.approx(100.0) and monday["cost_per_lead"] == pytest.approx(50.0)
    assert monday["mql_to_sql_rate"] == pytest.approx(1.0) and monday["campaign_name"] == "Search - Brand"
    # a's SQL happened on 2026-10-09 and stays on its cohort day; c became a customer, so it counts
    # as an SQL too (skipped stages count as reached), on its own creation day.
    assert day["sqls"].sum() == 2 and day.loc[(pd.Timestamp("2026-10-06"), "10001"), "sqls"] == 1
    tuesday = day.loc[(pd.Timestamp("2026-10-06"), "10001")]
    assert tuesday["customers"] == 1 and tuesday["roas"] == pytest.approx(6_000.0 / 50.0)
    wednesday = day.loc[(pd.Timestamp("2026-10-07"), "10001")]
    assert wednesday["spend"] == 30.0 and np.isnan(wednesday["cost_per_sql"])  # spend, no SQL: NULL, not inf
    assert wednesday["leads"] == 0 and np.isnan(wednesday["cost_per_lead"]) and wednesday["roas"] == 0.0
    assert stats["paid_leads_outside_spend_window"] == 0
    assert not marts.infinite_values(table)
    assert not marts.zero_denominator_violations(table, marts.COST_PER_SQL_RATIOS)


def test_a_campaign_day_with_leads_but_no_spend_has_null_roas_and_leads_outside_the_window_are_counted():
    leads = leads_frame(lead("a", campaign_id="10002", match_source="utm", lead_at=at(0), sql_at=at(1)),
                        lead("b", campaign_id="10001", lead_at=at(-40)))
    spend = performance(("2026-10-05", "10001", 40, 100.0))
    table, stats = marts.build_cost_per_sql(marts.build_lead_funnel(leads, NO_DEALS), spend, CAMPAIGNS)
    row = table.set_index("campaign_id").loc["10002"]
    assert row["spend"] == 0.0 and row["sqls"] == 1
    assert np.isnan(row["roas"]) and row["cost_per_sql"] == 0.0
    assert stats["paid_leads_outside_spend_window"] == 1 and stats["leads_on_campaign_days_without_spend"] == 1


def test_spend_reconciliation_flags_a_one_cent_difference_only():
    spend = performance(("2026-10-05", "10001", 40, 100.0), ("2026-10-06", "10001", 4, 10.0))
    ads = pd.DataFrame({"date": pd.to_datetime(["2026-10-05", "2026-10-05", "2026-10-06"]),
                        "campaign_id": ["10001"] * 3, "cost": [60.0, 40.001, 9.99]})
    mart = spend.rename(columns={"cost": "spend"})
    mismatches = marts.spend_reconciliation(mart, spend, ads)
    assert mismatches["date"].tolist() == [pd.Timestamp("2026-10-06")]
    assert mismatches["difference"].iloc[0] == pytest.approx(0.01)


def test_zero_denominator_and_infinity_detectors_name_the_offending_columns():
    frame = pd.DataFrame({"spend": [10.0, 0.0], "sqls": [0, 2], "cost_per_sql": [0.0, 0.0],
                          "revenue": [1.0, 5.0], "roas": [0.1, np.inf]})
    assert marts.zero_denominator_violations(frame, {"cost_per_sql": "sqls", "roas": "spend"}) == {
        "cost_per_sql": 1, "roas": 1}
    assert marts.infinite_values(frame) == {"roas": 1}
    assert np.isnan(marts.safe_ratio([1.0, 2.0], [0.0, np.nan])).all()


# ---------------------------------------------------------------------------- channel economics


def test_channel_economics_by_hand():
    leads = leads_frame(
        lead("a", channel="paid_search", campaign_id="10001", customer_at=at(20)),
        lead("b", channel="paid_search", campaign_id="10001", customer_at=at(25)),
        lead("c", channel="organic_search", customer_at=at(22)),
        lead("d", channel="paid_display", campaign_id="10002"),
    )
    deals = deals_frame(("d1", "a", 24_000.0, True, at(20)), ("d2", "b", 12_000.0, True, at(25)),
                        ("d3", "c", 6_000.0, True, at(22)))
    spend = performance(("2026-10-05", "10001", 40, 600.0), ("2026-10-06", "10001", 40, 400.0),
                        ("2026-10-05", "10002", 40, 300.0))
    table = marts.build_channel_economics(marts.build_lead_funnel(leads, deals), spend, CAMPAIGNS,
                                          gross_margin=0.8, monthly_churn=0.02).set_index("channel")
    search = table.loc["paid_search"]
    assert search["spend"] == 1000.0 and search["customers"] == 2
    assert search["arpa_monthly"] == pytest.approx(18_000 / 12)
    assert search["cac"] == pytest.approx(500.0)
    assert search["ltv"] == pytest.approx(1500 * 0.8 / 0.02)
    assert search["ltv_to_cac"] == pytest.approx(60_000 / 500)
    assert search["payback_months"] == pytest.approx(500 / 1200)
    organic = table.loc["organic_search"]
    assert organic["spend"] == 0.0 and np.isnan(organic["cac"]) and np.isnan(organic["ltv_to_cac"])
    assert organic["ltv"] == pytest.approx(500 * 0.8 / 0.02)
    display = table.loc["paid_display"]
    assert display["spend"] == 300.0 and np.isnan(display["cac"]) and np.isnan(display["arpa_monthly"])
    assert not marts.zero_denominator_violations(table.reset_index(), marts.CHANNEL_ECONOMICS_RATIOS)
    with pytest.raises(ValueError, match="gross_margin must be a fraction"):
        marts.build_channel_economics(marts.build_lead_funnel(leads, deals), spend, CAMPAIGNS, gross_margin=80)


def test_charts_are_small_inline_pngs():
    _, funnel, _, _ = journey_world()
    spend = performance(("2026-10-05", "10001", 40, 100.0), ("2026-10-12", "10001", 40, 100.0))
    table, _ = marts.build_cost_per_sql(funnel, spend, CAMPAIGNS)
    for chart in (marts.funnel_chart(funnel), marts.cost_per_sql_trend_chart(marts.weekly_cost_per_sql(table))):
        assert chart.startswith("![") and "data:image/png;base64," in chart
        assert len(chart) < 100_000 * 4 / 3


# ---------------------------------------------------------------------------- the whole graph


def test_the_demo_graph_builds_all_five_marts_and_they_reconcile(gtm_env, capsys):
    from gtm_assets.cli import main
    from gtm_assets.warehouse.store import Warehouse

    code = main(["run", "--start", "2026-11-09", "--end", "2026-11-22"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "FAILED check" not in out, out
    store = Warehouse(f"duckdb:///{gtm_env / 'warehouse.duckdb'}")
    tables = {name: store.read(name) for name in
              ("lead_funnel", "touchpoints", "campaign_attribution", "cost_per_sql", "channel_economics")}
    assert all(len(frame) for frame in tables.values())
    assert tables["cost_per_sql"]["spend"].sum() == pytest.approx(store.read("campaign_performance")["cost"].sum(), abs=0.005)
    assert marts.spend_reconciliation(tables["cost_per_sql"], store.read("campaign_performance"),
                                      store.read("ad_performance")).empty
    assert marts.attribution_conservation(tables["campaign_attribution"], tables["lead_funnel"])["conserved"].all()
    assert tables["lead_funnel"]["contact_id"].is_unique
    for frame in tables.values():
        assert not marts.infinite_values(frame)
