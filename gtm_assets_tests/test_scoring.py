"""Specification of gtm_assets.scoring: the lead model on messy frames, the leakage guard, evaluation, tiers and reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from gtm_assets.scoring import (
    LABEL,
    TopCategories,
    calibration_plot_png,
    evaluate_scores,
    features_of,
    fit_lead_model,
    lift_chart_png,
    load_model,
    make_lead_model,
    rule_score,
    save_model,
    score_leads,
    scoring_frame,
    split_xy,
    tier_thresholds,
    time_split,
    training_frame,
)

SIZES = ["1-10", "11-50", "51-200", "201-1000", "1000+"]


def synthetic_leads(n: int, seed: int = 0, intercept: float = -3.2) -> tuple[pd.DataFrame, pd.Series]:
    """Leads whose SQL odds rise with a demo at a big company, pricing views, three campaigns
    and a business email; a 5,000-value keyword column carries no signal."""
    rng = np.random.default_rng(seed)
    size = rng.choice(SIZES, n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    campaign = rng.choice([f"cmp-{i}" for i in range(30)], n)
    business = rng.random(n) < 0.6
    demo = (rng.random(n) < 0.12).astype(int)
    pricing = rng.poisson(0.6, n)
    frame = pd.DataFrame(
        {
            "company_size": pd.Series(size, dtype="str"),
            "industry": rng.choice(["SaaS", "Retail", "Finance", "Health", "Manufacturing"], n),
            "email_domain_type": np.where(business, "business", "free"),
            "campaign_id": campaign,
            "keyword": [f"kw {k}" for k in rng.integers(0, 5000, n)],
            "page_views": rng.poisson(3, n),
            "pricing_page_views": pricing,
            "content_downloads": rng.poisson(0.4, n),
            "demo_booked": demo,
        }
    )
    big = np.isin(size, ["201-1000", "1000+"])
    logit = (
        intercept + 2.2 * demo * big + 0.7 * demo + 1.0 * (pricing >= 2)
        + 0.8 * np.isin(campaign, ["cmp-1", "cmp-2", "cmp-3"]) + 0.7 * business
    )
    sql = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, pd.Series(sql, name=LABEL)


def messy(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every awkward dtype a warehouse hands back, with pd.NA and all-missing columns."""
    rng = np.random.default_rng(seed)
    n = len(frame)
    out = frame.copy()
    out["industry"] = pd.Series(frame["industry"], dtype="string").mask(rng.random(n) < 0.1, pd.NA)
    out["campaign_id"] = frame["campaign_id"].astype("category")
    out["page_views"] = pd.array(frame["page_views"], dtype="Int64")
    out.loc[rng.random(n) < 0.05, "page_views"] = pd.NA
    out["is_business"] = pd.array(frame["email_domain_type"] == "business", dtype="boolean")
    out.loc[rng.random(n) < 0.05, "is_business"] = pd.NA
    out["opted_in"] = rng.random(n) < 0.5
    out["employees_text"] = pd.Series(rng.integers(1, 5000, n), dtype=object)
    out["never_filled"] = None
    out["never_filled_text"] = pd.Series([pd.NA] * n, dtype="string")
    out["never_filled_number"] = np.nan
    return out


@pytest.fixture(scope="module")
def fitted():
    train_X, train_y = synthetic_leads(6000, seed=1)
    result = fit_lead_model(train_X, train_y)
    holdout_X, holdout_y = synthetic_leads(4000, seed=2)
    return result, holdout_X, holdout_y


# --------------------------------------------------------------------------- the model contract


def test_model_survives_messy_frames_with_a_rare_class():
    train_X, _ = synthetic_leads(5000, seed=3)
    # 2% positives, planted on pricing views so there is something to find
    rng = np.random.default_rng(3)
    rare = ((train_X["pricing_page_views"] >= 2) & (rng.random(len(train_X)) < 0.15)) | (rng.random(len(train_X)) < 0.005)
    train_y = rare.astype(int)
    assert 0.01 < train_y.mean() < 0.03
    model = make_lead_model().fit(messy(train_X, seed=3), train_y)

    test_X, _ = synthetic_leads(3000, seed=4)
    test_y = (((test_X["pricing_page_views"] >= 2) & (rng.random(len(test_X)) < 0.15)) | (rng.random(len(test_X)) < 0.005)).astype(int)
    scoring = messy(test_X, seed=4).drop(columns=["opted_in"])  # a column lost since training
    scoring["brand_new_column"] = "surprise"  # and one never seen at fit
    scores = model.predict_proba(scoring)[:, 1]

    assert ((scores >= 0) & (scores <= 1)).all()
    assert evaluate_scores(test_y, scores)["roc_auc"] > 0.7
    assert abs(scores.mean() - test_y.mean()) < 0.01
    prepare = model.named_steps["prepare"]
    assert set(prepare.dropped_columns_) == {"never_filled", "never_filled_text", "never_filled_number"}
    assert "employees_text" in prepare.numeric_columns_ and "opted_in" in prepare.numeric_columns_
    assert "industry" in prepare.categorical_columns_


def test_high_cardinality_categoricals_are_pooled_not_exploded():
    train_X, train_y = synthetic_leads(3000, seed=5)
    model = make_lead_model().fit(train_X, train_y)
    pooler = model.named_steps["encode"].named_transformers_["categorical"]
    assert isinstance(pooler, TopCategories)
    assert train_X["keyword"].nunique() > 2000
    # keywords seen under 10 times all share "(other)"; the 30 campaigns survive whole
    assert len(pooler.categories_["keyword"]) <= 64
    assert len(pooler.categories_["campaign_id"]) == 31


def test_model_is_calibrated_and_beats_the_points_score(fitted):
    result, holdout_X, holdout_y = fitted
    scores = result.model.predict_proba(holdout_X)[:, 1]
    model_metrics = evaluate_scores(holdout_y, scores)
    points_metrics = evaluate_scores(holdout_y, rule_score(holdout_X), probabilities=False)

    assert abs(scores.mean() - holdout_y.mean()) < 0.015
    assert model_metrics["roc_auc"] > points_metrics["roc_auc"] + 0.05
    assert model_metrics["pr_auc"] > points_metrics["pr_auc"]
    assert model_metrics["top_decile_lift"] > points_metrics["top_decile_lift"]
    assert points_metrics["brier"] is None and 0 < model_metrics["brier"] < holdout_y.mean()
    # calibration by band: observed SQL rate of the top fifth is close to its predicted rate
    top = scores >= np.quantile(scores, 0.8)
    assert abs(scores[top].mean() - holdout_y[top].mean()) < 0.05


def test_a_plain_numpy_array_is_refused_with_a_clear_error():
    train_X, train_y = synthetic_leads(300, seed=6)
    with pytest.raises(TypeError, match="pandas DataFrame"):
        make_lead_model().fit(train_X.to_numpy(), train_y)


# --------------------------------------------------------------------------- points baseline and evaluation


def test_rule_score_gives_10_per_view_20_per_download_40_per_demo():
    features = pd.DataFrame(
        {"page_views": [3, 0, None], "content_downloads": [1, 0, 2], "demo_booked": [1, 0, 0], "industry": ["a", "b", "c"]}
    )
    assert rule_score(features).tolist() == [30 + 20 + 40, 0, 40]
    assert rule_score(features[["page_views"]]).tolist() == [30, 0, 0]
    with pytest.raises(ValueError, match="page_views"):
        rule_score(features[["industry"]])


def test_evaluate_scores_matches_hand_computed_auc_and_lift():
    y = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    metrics = evaluate_scores(y, scores)
    # positives outrank 8 + 7 of the 16 positive/negative pairs
    assert metrics["roc_auc"] == pytest.approx(15 / 16)
    # precision at each positive: 1/1 and 2/3
    assert metrics["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    # top decile = the single best lead, an SQL: rate 1 / overall 0.2
    assert metrics["top_decile_lift"] == pytest.approx(5.0)
    assert metrics["brier"] == pytest.approx(np.mean((np.array(scores) - np.array(y)) ** 2))
    assert (metrics["n"], metrics["positives"]) == (10, 2)


def test_lift_shares_ties_at_the_cut_and_points_get_no_brier():
    # 20 leads, top decile = 2 leads; 4 tie at the top with 1 SQL among them
    y = [1, 0, 0, 0] + [1] * 2 + [0] * 14
    points = [80] * 4 + [10] * 16
    metrics = evaluate_scores(y, points)
    # expected top-2 rate under random tie-break = 1/4; overall 3/20
    assert metrics["top_decile_lift"] == pytest.approx((1 / 4) / (3 / 20))
    assert metrics["brier"] is None


def test_undefined_metrics_are_none_and_missing_rows_are_left_out():
    single_class = evaluate_scores([0, 0, 0], [0.1, 0.2, 0.3])
    assert single_class["roc_auc"] is None and single_class["pr_auc"] is None
    assert single_class["top_decile_lift"] is None and single_class["brier"] == pytest.approx((0.01 + 0.04 + 0.09) / 3)
    with_gaps = evaluate_scores([1, 0, None, 1, 0], [0.9, 0.1, 0.5, np.nan, 0.2])
    assert with_gaps["n"] == 3 and with_gaps["roc_auc"] == 1.0
    empty = evaluate_scores([], [])
    assert empty["n"] == 0 and empty["roc_auc"] is None and empty["brier"] is None


# --------------------------------------------------------------------------- time split and leakage guard


def test_time_split_trains_on_older_and_keeps_a_tied_instant_together():
    frame = pd.DataFrame({"lead_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-03", "2024-01-04"], utc=True),
                          "x": range(5)})
    train, holdout = time_split(frame, "lead_at", holdout_fraction=0.25)
    assert train["x"].tolist() == [0, 1]
    assert holdout["x"].tolist() == [2, 3, 4]
    assert train["lead_at"].max() < holdout["lead_at"].min()
    with pytest.raises(ValueError, match="'created'"):
        time_split(frame, "created")


AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


def crm_world() -> tuple[pd.DataFrame, pd.DataFrame]:
    leads = pd.DataFrame(
        {
            "contact_id": ["c1", "c2", "c3", "c4", "c5"],
            "lead_at": pd.to_datetime(["2024-01-01", "2024-01-10", "2024-02-01", "2024-03-01", "2024-05-20"], utc=True),
            "sql_at": pd.to_datetime(["2024-01-05", None, "2024-05-01", "2024-03-20", None], utc=True),
            "company_size": ["201-1000", "1-10", "51-200", None, "11-50"],
            "campaign_id": ["cmp-1", "cmp-2", "cmp-1", "cmp-3", "cmp-1"],
            "lifecycle_stage": ["customer", "lead", "salesqualifiedlead", "opportunity", "lead"],
            "mql_at": pd.to_datetime(["2024-01-02", None, "2024-02-05", "2024-03-02", None], utc=True),
            "deal_amount": [12000.0, None, None, 5000.0, None],
            "email": ["a@x.com", "b@y.com", "c@z.com", "d@w.com", "e@v.com"],
        }
    )
    engagements = pd.DataFrame(
        {
            "contact_id": ["c1", "c1", "c1", "c2", "c2", "c3", "c4", "c4"],
            "occurred_at": pd.to_datetime(
                ["2023-12-30", "2024-01-02", "2024-01-04", "2024-01-11", "2024-01-12", "2024-02-02", "2024-03-02", "2024-03-05"], utc=True
            ),
            "event_type": ["page_view", "Pricing Page View", "demo_booked", "page_view", "content_download", "webinar", "page_view", "email_click"],
        }
    )
    return leads, engagements


def test_training_frame_labels_mature_leads_and_counts_engagements_before_the_cutoff():
    leads, engagements = crm_world()
    frame = training_frame(leads, engagements, cutoff_days=14, outcome_days=30, as_of=AS_OF)
    # c5 (lead 2024-05-20) is younger than 30 days on 2024-06-01: outcome unknown
    assert frame.index.tolist() == ["c1", "c2", "c3", "c4"]
    assert frame.attrs["excluded_leads"] == {"missing lead_at": 0, "outcome not yet known": 1}
    # c1 SQL after 4 days, c3 after 90 (> 30), c4 after 19
    assert frame[LABEL].tolist() == [1, 0, 0, 1]
    assert frame.loc["c1", ["page_views", "pricing_page_views", "demo_booked"]].tolist() == [1, 1, 1]
    assert frame.loc["c2", ["page_views", "content_downloads"]].tolist() == [1, 1]
    assert frame.loc["c4", ["page_views", "email_clicks", "meetings"]].tolist() == [1, 1, 0]
    features = features_of(frame)
    for leaked in ("lifecycle_stage", "mql_at", "sql_at", "deal_amount", "email", "contact_id", "lead_at", LABEL):
        assert leaked not in features.columns
    assert {"company_size", "campaign_id"} <= set(features.columns)


def test_engagements_after_the_cutoff_or_after_sql_change_nothing():
    leads, engagements = crm_world()
    before = training_frame(leads, engagements, cutoff_days=14, outcome_days=30, as_of=AS_OF)
    later = pd.DataFrame(
        {
            "contact_id": ["c2", "c1", "c4", "c1"],
            # c2: 20 days after lead (cutoff 14); c1: meeting on SQL day and after; c4: demo after SQL
            "occurred_at": pd.to_datetime(["2024-01-30", "2024-01-05", "2024-03-21", "2024-01-08"], utc=True),
            "event_type": ["demo_booked", "meeting", "demo_booked", "meeting"],
        }
    )
    after = training_frame(leads, pd.concat([engagements, later]), cutoff_days=14, outcome_days=30, as_of=AS_OF)
    pd.testing.assert_frame_equal(before, after)


def test_only_leads_old_enough_to_know_their_outcome_are_kept():
    leads, engagements = crm_world()
    frame = training_frame(leads, engagements, cutoff_days=14, outcome_days=30, as_of="2024-03-15")
    # c4 (lead Mar 1) needs until Mar 31 to show whether it becomes SQL; c3's SQL on May 1
    # lies beyond both its 30-day window and as_of
    assert frame[LABEL].to_dict() == {"c1": 1, "c2": 0, "c3": 0}
    assert frame.attrs["excluded_leads"]["outcome not yet known"] == 2


def test_duplicate_leads_are_refused_with_the_fix():
    leads, engagements = crm_world()
    with pytest.raises(ValueError, match="Deduplicate"):
        training_frame(pd.concat([leads, leads.head(1)]), engagements, as_of=AS_OF)


def test_scoring_frame_lines_up_with_the_training_frame():
    leads, engagements = crm_world()
    trained = features_of(training_frame(leads, engagements, cutoff_days=14, outcome_days=30, as_of=AS_OF))
    now = scoring_frame(leads, engagements, cutoff_days=14, as_of=AS_OF)
    assert list(now.columns) == list(trained.columns)
    pd.testing.assert_frame_equal(now.loc[["c2", "c3"]], trained.loc[["c2", "c3"]])


# --------------------------------------------------------------------------- fallback


def test_too_little_history_falls_back_to_points_with_a_reason():
    train_X, train_y = synthetic_leads(150, seed=7)
    result = fit_lead_model(train_X, train_y)
    assert result.is_fallback and result.model is None
    assert "150 labelled leads (need 200)" in result.reason
    assert f"{int(train_y.sum())} SQLs (need 30)" in result.reason

    big_X, _ = synthetic_leads(1000, seed=7)
    no_sqls = fit_lead_model(big_X, np.zeros(len(big_X), dtype=int))
    assert no_sqls.is_fallback and "0 SQLs" in no_sqls.reason and "labelled leads" not in no_sqls.reason


def test_fallback_scoring_ranks_by_points_and_explains_points():
    features = pd.DataFrame({"page_views": [3, 1, 0], "content_downloads": [0, 1, 0], "demo_booked": [1, 0, 0]})
    scored = score_leads(None, features)
    assert scored["tier"].tolist() == ["A", "C", "D"]
    assert scored["score"].isna().all()
    assert scored.loc[0, "reasons"] == "booked a demo; viewed 3 pages"
    assert scored.loc[1, "reasons"] == "downloaded 1 piece of content; viewed 1 page"
    assert scored.loc[2, "reasons"] == ""


# --------------------------------------------------------------------------- scores, tiers, reasons


def test_tier_thresholds_are_multiples_of_the_base_rate():
    assert tier_thresholds(0.10) == pytest.approx({"A": 0.30, "B": 0.15, "C": 0.05})
    # with common SQLs the A cut is capped halfway to certainty
    assert tier_thresholds(0.40)["A"] == pytest.approx(0.70)


def test_tiers_and_tracks_are_monotone_in_score(fitted):
    result, holdout_X, _ = fitted
    scored = score_leads(result.model, holdout_X.head(600)).sort_values("score", ascending=False)
    rank = scored["tier"].map({"A": 0, "B": 1, "C": 2, "D": 3})
    assert rank.is_monotonic_increasing
    assert set(scored["tier"]) == {"A", "B", "C", "D"}
    track = scored["nurture_track"].map({"High": 0, "Mid": 1, "Low": 2})
    assert track.is_monotonic_increasing
    assert (scored.loc[scored["tier"] == "A", "nurture_track"] == "High").all()


def test_reasons_name_the_planted_decisive_feature():
    rng = np.random.default_rng(8)
    n = 3000
    features = pd.DataFrame(
        {
            "demo_booked": (rng.random(n) < 0.15).astype(int),
            "page_views": rng.poisson(2, n),
            "industry": rng.choice(["SaaS", "Retail", "Finance"], n),
            "campaign_id": rng.choice(["Search - Brand", "Search - Generic", "Display"], n),
        }
    )
    sql = (rng.random(n) < np.where(features["demo_booked"] == 1, 0.6, 0.04)).astype(int)
    result = fit_lead_model(features, sql)
    leads = features.iloc[:400]
    scored = score_leads(result.model, leads)
    booked = leads["demo_booked"] == 1
    assert booked.sum() > 20
    assert scored.loc[booked, "reasons"].str.startswith("booked a demo").all()
    # reasons explain how a lead differs from the typical lead (no demo): a lead without
    # a demo is not credited or blamed for it
    assert not scored.loc[~booked, "reasons"].str.contains("demo").any()
    assert scored.loc[booked, "score"].min() > scored.loc[~booked, "score"].max()
    assert scored["reasons"].str.count("; ").max() <= 2


def test_campaign_reason_reads_in_plain_words():
    rng = np.random.default_rng(9)
    n = 3000
    features = pd.DataFrame(
        {
            "campaign_id": rng.choice(["Search - Brand", "Search - Generic", "Display"], n),
            "company_size": rng.choice(SIZES, n),
        }
    )
    sql = (rng.random(n) < np.where(features["campaign_id"] == "Search - Brand", 0.5, 0.05)).astype(int)
    result = fit_lead_model(features, sql)
    scored = score_leads(result.model, features.head(300))
    brand = features.head(300)["campaign_id"] == "Search - Brand"
    assert scored.loc[brand, "reasons"].str.startswith("came from campaign Search - Brand").all()


# --------------------------------------------------------------------------- charts and model files


def test_charts_are_png_images_with_model_and_points(fitted):
    result, holdout_X, holdout_y = fitted
    scores = result.model.predict_proba(holdout_X)[:, 1]
    for chart in (calibration_plot_png, lift_chart_png):
        png = chart(holdout_y, scores, rule_score(holdout_X))
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        import io

        height, width = imread(io.BytesIO(png)).shape[:2]
        assert height >= 400 and width >= 500
    with pytest.raises(ValueError, match="no rows"):
        lift_chart_png([None], [0.5], [1])


def test_saved_model_scores_the_same_after_loading(fitted, tmp_path):
    result, holdout_X, _ = fitted
    path = save_model(result.model, tmp_path / "models" / "lead_model.joblib",
                      {"version": "2024-06-01", "training_window": ["2024-01-01", "2024-05-01"]})
    model, metadata = load_model(path)
    np.testing.assert_allclose(model.predict_proba(holdout_X)[:, 1], result.model.predict_proba(holdout_X)[:, 1])
    assert metadata["version"] == "2024-06-01" and metadata["training_window"] == ["2024-01-01", "2024-05-01"]
    assert "sklearn_version" in metadata
    assert model.base_rate_ == result.base_rate
    with pytest.raises(ValueError, match="training_window"):
        save_model(result.model, tmp_path / "x.joblib", {"version": "1"})
    with pytest.raises(FileNotFoundError, match="lead_scoring_model"):
        load_model(tmp_path / "missing.joblib")


def test_split_xy_separates_label_from_features():
    leads, engagements = crm_world()
    frame = training_frame(leads, engagements, cutoff_days=14, outcome_days=30, as_of=AS_OF)
    X, y = split_xy(frame)
    assert y.tolist() == [1, 0, 0, 1] and LABEL not in X.columns


class OpaqueModel:
    """Any classifier with predict_proba: score_leads must not rely on pipeline internals."""

    def __init__(self, model):
        self.model = model
        self.feature_names_in_ = model.feature_names_in_
        self.base_rate_ = model.base_rate_
        self.feature_baseline_ = model.feature_baseline_

    def predict_proba(self, X):
        return self.model.predict_proba(X)


def test_reasons_are_model_agnostic_and_follow_the_leads_index(fitted):
    result, holdout_X, _ = fitted
    leads = holdout_X.head(300).set_axis([f"contact-{i}" for i in range(300)], axis=0)
    fast = score_leads(result.model, leads)
    generic = score_leads(OpaqueModel(result.model), leads)
    assert fast.index.equals(leads.index)
    pd.testing.assert_frame_equal(fast, generic)
    assert fast["reasons"].str.len().gt(0).mean() > 0.9


def test_text_timestamps_in_mixed_formats_are_read_and_unreadable_ones_counted():
    leads = pd.DataFrame(
        {
            "contact_id": ["a", "b", "c"],
            "lead_at": ["2024-01-01", "2024-01-03 10:00", "not a date"],
            "sql_at": [None, "2024-01-10T00:00:00Z", None],
        }
    )
    engagements = pd.DataFrame({"contact_id": ["b"], "occurred_at": ["2024-01-04T08:00:00+00:00"], "event_type": ["page_view"]})
    frame = training_frame(leads, engagements, cutoff_days=7, outcome_days=30, as_of="2024-06-01")
    assert frame[LABEL].to_dict() == {"a": 0, "b": 1}
    assert frame.loc["b", "page_views"] == 1
    assert frame.attrs["excluded_leads"]["missing lead_at"] == 1
