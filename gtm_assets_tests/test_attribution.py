"""Specification of gtm_assets.attribution: hand-worked journeys per model, conservation, Markov, grain, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gtm_assets import attribution
from gtm_assets.attribution import MODELS, attribute, attribute_all

DAY0 = pd.Timestamp("2024-03-01", tz="UTC")


def journey(
    journey_id: str,
    path: str,
    converted: bool,
    value: float = 0.0,
    days: list[float] | None = None,
    lead: int | None = None,
    opportunity: int | None = None,
) -> pd.DataFrame:
    """One journey's touches: `path` is channels separated by spaces, one day apart unless `days`."""
    channels = path.split()
    days = list(range(len(channels))) if days is None else days
    return pd.DataFrame(
        {
            "journey_id": journey_id,
            "touched_at": [DAY0 + pd.Timedelta(days=d) for d in days],
            "channel": channels,
            "converted": converted,
            "value": float(value),
            "lead_touch": [i == lead for i in range(len(channels))],
            "opportunity_touch": [i == opportunity for i in range(len(channels))],
        }
    )


def touches(*journeys: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(journeys, ignore_index=True)


def credits(frame: pd.DataFrame, model: str, **params) -> dict[str, tuple[float, float]]:
    result = attribute(frame, model, **params)
    return {row.channel: (row.conversions, row.value) for row in result.itertuples()}


def assert_credits(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for channel, (conversions, value) in expected.items():
        assert actual[channel][0] == pytest.approx(conversions, abs=1e-12), channel
        assert actual[channel][1] == pytest.approx(value, abs=1e-9), channel


# ------------------------------------------------------------------ hand-worked journeys


@pytest.mark.parametrize("model", MODELS)
def test_a_single_touch_journey_gives_its_touch_everything(model):
    frame = journey("j1", "search", True, 100.0, lead=0, opportunity=0)
    assert_credits(credits(frame, model), {"search": (1.0, 100.0)})


def test_two_touches_under_each_rule_model():
    # search on day 0, email on day 1 (= conversion time), worth 100; lead on search, opportunity on email.
    frame = journey("j1", "search email", True, 100.0, lead=0, opportunity=1)
    assert_credits(credits(frame, "first_touch"), {"search": (1, 100), "email": (0, 0)})
    assert_credits(credits(frame, "last_touch"), {"search": (0, 0), "email": (1, 100)})
    assert_credits(credits(frame, "linear"), {"search": (0.5, 50), "email": (0.5, 50)})
    # U-shaped with two touches is 50/50.
    assert_credits(credits(frame, "u_shaped"), {"search": (0.5, 50), "email": (0.5, 50)})
    # time decay, H = 7: search is 1 day before conversion -> 2^(-1/7) = 0.905724, email 1;
    # search share = 0.905724 / 1.905724 = 0.475265.
    search_share = 2 ** (-1 / 7) / (1 + 2 ** (-1 / 7))
    assert search_share == pytest.approx(0.475265, abs=1e-6)
    assert_credits(
        credits(frame, "time_decay"),
        {"search": (search_share, 100 * search_share), "email": (1 - search_share, 100 * (1 - search_share))},
    )
    # W-shaped: search = first + lead = 0.6, email = opportunity = 0.3, no rest touches ->
    # the 10% is redistributed in proportion: 0.6/0.9 = 2/3, 0.3/0.9 = 1/3.
    assert_credits(credits(frame, "w_shaped"), {"search": (2 / 3, 200 / 3), "email": (1 / 3, 100 / 3)})


def repeated_channels() -> pd.DataFrame:
    # Converting journey search, social, search, email on days 0..3 worth 200, lead created on
    # the social touch, opportunity on the second search touch; plus a journey that never
    # converted (social, email), which must not earn anything under rule-based models.
    return touches(
        journey("won", "search social search email", True, 200.0, lead=1, opportunity=2),
        journey("lost", "social email", False, 0.0, lead=0),
    )


@pytest.mark.parametrize(
    ("model", "params", "expected"),
    [
        ("first_touch", {}, {"search": (1, 200), "social": (0, 0), "email": (0, 0)}),
        ("last_touch", {}, {"search": (0, 0), "social": (0, 0), "email": (1, 200)}),
        # 4 touches, 1/4 each; search has two of them.
        ("linear", {}, {"search": (0.5, 100), "social": (0.25, 50), "email": (0.25, 50)}),
        # first search 0.4, middle social 0.1 and search 0.1, last email 0.4.
        ("u_shaped", {}, {"search": (0.5, 100), "social": (0.1, 20), "email": (0.4, 80)}),
        # H = 1 day, dt = 3, 2, 1, 0 days -> 1/8, 1/4, 1/2, 1 (sum 15/8) -> 1/15, 2/15, 4/15, 8/15:
        # search 1/15 + 4/15 = 1/3, social 2/15, email 8/15.
        (
            "time_decay",
            {"half_life_days": 1},
            {"search": (1 / 3, 200 / 3), "social": (2 / 15, 400 / 15), "email": (8 / 15, 1600 / 15)},
        ),
        # first search 0.3, lead social 0.3, opportunity search 0.3, the rest (email) 0.1.
        ("w_shaped", {}, {"search": (0.6, 120), "social": (0.3, 60), "email": (0.1, 20)}),
    ],
)
def test_repeated_channels_and_a_non_converting_journey(model, params, expected):
    assert_credits(credits(repeated_channels(), model, **params), expected)


def test_time_decay_measures_from_converted_at_when_given():
    # H = 7; conversion on day 14: search (day 0) is 14 days back -> 1/4, email (day 7) -> 1/2;
    # shares 1/3 and 2/3. A touch after the conversion (day 20) weighs like one at it: 1.
    frame = journey("j1", "search email", True, 90.0, days=[0, 7])
    frame["converted_at"] = DAY0 + pd.Timedelta(days=14)
    assert_credits(credits(frame, "time_decay"), {"search": (1 / 3, 30), "email": (2 / 3, 60)})

    late = journey("j1", "search email display", True, 70.0, days=[0, 7, 20])
    late["converted_at"] = DAY0 + pd.Timedelta(days=14)
    # weights 1/4, 1/2, 1 -> 1/7, 2/7, 4/7.
    assert_credits(
        credits(late, "time_decay"), {"search": (1 / 7, 10), "email": (2 / 7, 20), "display": (4 / 7, 40)}
    )


def test_time_decay_is_stable_for_journeys_far_older_than_the_half_life():
    # 2^(-1000) underflows to 0; shares are relative, so the nearer touch still gets ~all.
    frame = journey("j1", "search email", True, 1.0, days=[0, 1])
    frame["converted_at"] = DAY0 + pd.Timedelta(days=8000)
    result = credits(frame, "time_decay", half_life_days=1)
    assert result["search"][0] == pytest.approx(1 / 3, abs=1e-12)  # 2^-7999 : 2^-7998
    assert result["email"][0] == pytest.approx(2 / 3, abs=1e-12)


def test_w_shaped_milestones_on_one_touch_add_up():
    # search is first and lead (0.6), social is opportunity (0.3), email and display share 0.1.
    frame = journey("j1", "search social email display", True, 100.0, lead=0, opportunity=1)
    assert_credits(
        credits(frame, "w_shaped"),
        {"search": (0.6, 60), "social": (0.3, 30), "email": (0.05, 5), "display": (0.05, 5)},
    )


def test_w_shaped_without_milestone_marks_redistributes_to_the_shares_present():
    # No marks: first 0.3, rest 0.1 over two touches; present = 0.4 -> 0.75, 0.125, 0.125.
    frame = journey("j1", "search social email", True, 8.0)
    assert_credits(
        credits(frame, "w_shaped"), {"search": (0.75, 6), "social": (0.125, 1), "email": (0.125, 1)}
    )


def test_w_shaped_uses_the_earliest_marked_touch_as_the_milestone():
    # lead marked on social (1) and email (2): social is the lead touch, email becomes rest.
    # search 0.3 first, social 0.3 lead, display 0.3 opportunity, email 0.1 rest.
    frame = journey("j1", "search social email display", True, 10.0, lead=1, opportunity=3)
    frame.loc[2, "lead_touch"] = True
    assert_credits(
        credits(frame, "w_shaped"),
        {"search": (0.3, 3), "social": (0.3, 3), "email": (0.1, 1), "display": (0.3, 3)},
    )


def test_w_shaped_without_milestone_columns_says_which_are_missing():
    frame = journey("j1", "search email", True, 1.0).drop(columns=["lead_touch", "opportunity_touch"])
    with pytest.raises(ValueError, match="w_shaped.*lead_touch, opportunity_touch"):
        attribute(frame, "w_shaped")
    with pytest.raises(ValueError, match="opportunity_touch"):
        attribute(frame.assign(lead_touch=True), "w_shaped")
    # The other models do not need them.
    assert attribute(frame, "u_shaped")["conversions"].sum() == pytest.approx(1.0)


def test_ties_in_time_keep_input_order():
    frame = journey("j1", "search email", True, 1.0, days=[0, 0])
    assert_credits(credits(frame, "first_touch"), {"search": (1, 1), "email": (0, 0)})
    assert_credits(credits(frame.iloc[::-1], "first_touch"), {"search": (0, 0), "email": (1, 1)})


# ------------------------------------------------------------------ Markov


def test_markov_two_channels_solved_by_hand():
    # Journeys: A B -> conv (300), A -> null, B -> conv (600).
    # Transitions: START->A 2/3, START->B 1/3; A->B 1/2, A->NULL 1/2; B->CONV 1.
    # P(conv) = 2/3 * 1/2 + 1/3 * 1 = 2/3.
    # Without A: only START->B->CONV remains: 1/3 -> RE(A) = 1 - (1/3)/(2/3) = 1/2.
    # Without B: nothing converts -> RE(B) = 1.
    # Shares 1/3 and 2/3 of 2 conversions and of 900.
    frame = touches(
        journey("j1", "A B", True, 300.0), journey("j2", "A", False), journey("j3", "B", True, 600.0)
    )
    assert_credits(credits(frame, "markov"), {"A": (2 / 3, 300), "B": (4 / 3, 600)})


def test_markov_with_a_revisit_solved_by_hand():
    # Journeys: A B A -> conv (90), B -> null.
    # START->A 1/2, START->B 1/2; A->B 1/2, A->CONV 1/2; B->A 1/2, B->NULL 1/2.
    # h(A) = 1/2 + 1/2 h(B), h(B) = 1/2 h(A) -> h(A) = 2/3, h(B) = 1/3, P(conv) = 1/2.
    # Without A: START->B->(A=NULL) -> 0 -> RE(A) = 1.
    # Without B: START->A->CONV = 1/4 -> RE(B) = 1 - (1/4)/(1/2) = 1/2.
    # Shares 2/3 and 1/3.
    frame = touches(journey("j1", "A B A", True, 90.0), journey("j2", "B", False))
    assert_credits(credits(frame, "markov"), {"A": (2 / 3, 60), "B": (1 / 3, 30)})


def removal_effects_by_brute_force(frame: pd.DataFrame) -> dict[str, float]:
    """RE(c) by building and solving the chain with c removed, one channel at a time (test oracle)."""
    ordered = frame.sort_values(["journey_id", "touched_at"], kind="stable")
    channels = sorted(ordered["channel"].unique())
    states = ["START", *channels, "CONV", "NULL"]
    index = {state: i for i, state in enumerate(states)}
    counts = np.zeros((len(states), len(states)))
    for _, path in ordered.groupby("journey_id", sort=False):
        steps = ["START", *path["channel"], "CONV" if path["converted"].iloc[0] else "NULL"]
        for a, b in zip(steps[:-1], steps[1:]):
            counts[index[a], index[b]] += 1

    def p_conv(removed: str | None) -> float:
        moved = counts.copy()
        if removed is not None:
            moved[:, index["NULL"]] += moved[:, index[removed]]
            moved[:, index[removed]] = 0
        transient = [index["START"], *(index[c] for c in channels if c != removed)]
        probabilities = moved / np.maximum(moved.sum(axis=1, keepdims=True), 1)
        q = probabilities[np.ix_(transient, transient)]
        r = probabilities[transient, index["CONV"]]
        return np.linalg.solve(np.eye(len(transient)) - q, r)[0]

    base = p_conv(None)
    return {c: 1 - p_conv(c) / base for c in channels}


def random_journeys(seed: int, n_journeys: int = 60, channels: str = "ABCDE") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for j in range(n_journeys):  # building test data, not code under test
        size = int(rng.integers(1, 7))
        path = " ".join(rng.choice(list(channels), size))
        converted = bool(rng.random() < 0.4)
        days = np.sort(rng.integers(0, 30, size)).tolist()
        frames.append(
            journey(
                f"j{j:03d}", path, converted, float(rng.integers(0, 1000)) if converted else 0.0, days,
                lead=int(rng.integers(0, size + 1)), opportunity=int(rng.integers(0, size + 1)),
            )
        )
    return touches(*frames)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_markov_matches_solving_each_removed_chain_separately(seed):
    frame = random_journeys(seed)
    removal = removal_effects_by_brute_force(frame)
    total_re = sum(removal.values())
    won = frame.drop_duplicates("journey_id")
    total_conversions, total_value = won["converted"].sum(), won["value"].sum()
    expected = {c: (re / total_re * total_conversions, re / total_re * total_value) for c, re in removal.items()}
    assert_credits(credits(frame, "markov"), expected)


def test_markov_sparse_solver_agrees_with_dense(monkeypatch):
    frame = random_journeys(4, n_journeys=120, channels="ABCDEFGHIJKL")
    dense = attribute(frame, "markov")
    monkeypatch.setattr(attribution, "DENSE_MARKOV_MAX_STATES", 2)
    sparse = attribute(frame, "markov")
    np.testing.assert_allclose(sparse["conversions"], dense["conversions"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse["value"], dense["value"], rtol=1e-10, atol=1e-9)


def test_markov_channel_only_in_non_converting_journeys_gets_nothing():
    frame = touches(
        random_journeys(5),
        journey("x1", "X", False),
        journey("x2", "A X", False),
        journey("x3", "B C X", False),
    )
    result = credits(frame, "markov")
    assert result["X"][0] == pytest.approx(0.0, abs=1e-12)
    assert result["X"][1] == pytest.approx(0.0, abs=1e-9)


def test_non_converting_journeys_shape_markov_but_not_rule_models():
    base = repeated_channels()
    more_losses = touches(base, journey("lost2", "search", False), journey("lost3", "search search", False))
    for model in ("first_touch", "last_touch", "linear", "time_decay", "u_shaped", "w_shaped"):
        assert credits(more_losses, model) == credits(base, model), model
    # They change the transition probabilities, so the Markov shares move (the total does not).
    shaped, unshaped = credits(more_losses, "markov"), credits(base, "markov")
    assert shaped["search"][0] != pytest.approx(unshaped["search"][0], abs=1e-3)
    assert sum(c for c, _ in shaped.values()) == pytest.approx(1.0)


# ------------------------------------------------------------------ properties


@pytest.mark.parametrize("seed", range(8))
def test_every_model_conserves_conversions_and_value(seed):
    frame = random_journeys(100 + seed, n_journeys=80)
    won = frame.drop_duplicates("journey_id")
    expected_conversions = float(won["converted"].sum())
    expected_value = float(won.loc[won["converted"], "value"].sum())
    result = attribute_all(frame, half_life_days=3)
    assert set(result["model"]) == set(MODELS)
    assert (result[["conversions", "value"]] >= 0).all().all()
    for model, credited in result.groupby("model"):
        assert credited["conversions"].sum() == pytest.approx(expected_conversions, rel=1e-12), model
        assert credited["value"].sum() == pytest.approx(expected_value, rel=1e-12), model


def test_row_order_does_not_change_the_credits():
    frame = random_journeys(9)
    # Interleave the journeys at random but keep each journey's own row order, which breaks
    # its same-day ties: give every row a random key, hand each journey its keys in sorted order.
    frame["shuffle_key"] = np.random.default_rng(3).random(len(frame))
    frame["shuffle_key"] = frame.groupby("journey_id")["shuffle_key"].transform(lambda k: np.sort(k.to_numpy()))
    shuffled = frame.sort_values("shuffle_key")
    assert not shuffled.index.equals(frame.index)
    pd.testing.assert_frame_equal(attribute_all(shuffled), attribute_all(frame))


def test_attribute_all_returns_one_block_per_model_and_can_skip_w_shaped():
    frame = repeated_channels().drop(columns=["lead_touch", "opportunity_touch"])
    models = [m for m in MODELS if m != "w_shaped"]
    result = attribute_all(frame, models=models)
    assert list(result.columns) == ["model", "channel", "conversions", "value"]
    assert result["model"].unique().tolist() == models
    assert len(result) == len(models) * 3  # three channels each, zero credits included
    with pytest.raises(ValueError, match="lead_touch"):
        attribute_all(frame)


# ------------------------------------------------------------------ grain


def keyword_grain() -> pd.DataFrame:
    frame = touches(
        journey("j1", "search search social", True, 300.0),
        journey("j2", "search", True, 100.0),
        journey("j3", "search social", False),
    )
    frame["campaign_id"] = ["c1", "c1", None, "c1", "c2", None]
    frame["ad_group_id"] = ["g1", "g1", None, "g1", "g2", None]
    frame["keyword"] = ["crm", None, None, None, "erp", None]
    return frame


GRAIN = ["channel", "campaign_id", "ad_group_id", "keyword"]


def test_by_grain_keeps_null_keywords_as_their_own_group():
    result = attribute(keyword_grain(), "linear", by=GRAIN)
    assert list(result.columns) == [*GRAIN, "conversions", "value"]
    rows = {tuple(None if pd.isna(v) else v for v in key): (c, v) for *key, c, v in result.itertuples(index=False)}
    # j1: 1/3 each to (search c1 g1 crm), (search c1 g1 null), (social null null null): 100 each;
    # j2: all to (search c1 g1 null): 1 and 100; j3 did not convert but its groups are listed.
    assert rows == {
        ("search", "c1", "g1", "crm"): pytest.approx((1 / 3, 100.0)),
        ("search", "c1", "g1", None): pytest.approx((4 / 3, 200.0)),
        ("search", "c2", "g2", "erp"): pytest.approx((0.0, 0.0)),
        ("social", None, None, None): pytest.approx((1 / 3, 100.0)),
    }


def test_markov_states_are_the_by_tuples():
    # States a = search/crm, b = search/null keyword, s = social/nulls, e = search/erp.
    # j1: a b s -> conv, j2: b -> conv, j3: e s -> null.
    # h(s) = 1/2, h(b) = 1/2 + 1/2 h(s) = 3/4, h(a) = h(b) = 3/4, h(e) = h(s) = 1/2,
    # P(conv) = (3/4 + 3/4 + 1/2) / 3 = 2/3.
    # Without a: (0 + 3/4 + 1/2)/3 = 5/12 -> RE 3/8. Without b: (0 + 0 + 1/2)/3 -> RE 3/4.
    # Without s: (1/2 + 1/2 + 0)/3 = 1/3 -> RE 1/2. Without e: (3/4 + 3/4)/3 -> RE 1/4.
    # Sum 15/8 -> shares a 1/5, b 2/5, s 4/15, e 2/15 of 2 conversions and 400.
    # e only appears in a journey that did not convert, yet earns credit: it leads to s,
    # which converts elsewhere (first-order chains do not remember the path).
    result = attribute(keyword_grain(), "markov", by=GRAIN)
    rows = {tuple(None if pd.isna(v) else v for v in key): (c, v) for *key, c, v in result.itertuples(index=False)}
    assert rows == {
        ("search", "c1", "g1", "crm"): pytest.approx((2 / 5, 80.0)),
        ("search", "c1", "g1", None): pytest.approx((4 / 5, 160.0)),
        ("search", "c2", "g2", "erp"): pytest.approx((4 / 15, 160 / 3)),
        ("social", None, None, None): pytest.approx((8 / 15, 320 / 3)),
    }


# ------------------------------------------------------------------ validation


def test_missing_columns_are_named():
    frame = repeated_channels().drop(columns=["value", "channel"])
    with pytest.raises(ValueError, match=r"missing column\(s\) channel, value"):
        attribute(frame, "linear")
    with pytest.raises(ValueError, match="keyword"):
        attribute(repeated_channels(), "linear", by=["channel", "keyword"])


def test_unknown_model_lists_the_valid_ones():
    valid = "first_touch, last_touch, linear, time_decay, u_shaped, w_shaped, markov"
    with pytest.raises(ValueError, match=f"'shapley'.*{valid}"):
        attribute(repeated_channels(), "shapley")


def test_unknown_parameter_is_rejected():
    with pytest.raises(TypeError, match="half_life;.*half_life_days"):
        attribute(repeated_channels(), "time_decay", half_life=3)
    with pytest.raises(ValueError, match="half_life_days must be a positive"):
        attribute(repeated_channels(), "time_decay", half_life_days=0)


def test_negative_value_names_the_journey():
    frame = touches(journey("refund", "search", True, -5.0), journey("ok", "email", True, 5.0))
    with pytest.raises(ValueError, match="negative on 1 journey.*'refund'"):
        attribute(frame, "linear")


@pytest.mark.parametrize("column", ["converted", "value"])
def test_journey_facts_that_differ_between_rows_are_rejected(column):
    frame = journey("j7", "search email", True, 10.0)
    frame.loc[1, column] = False if column == "converted" else 11.0
    with pytest.raises(ValueError, match=f"'{column}' differs between the rows of 1 journey.*'j7'"):
        attribute(frame, "first_touch")


def test_non_boolean_converted_and_null_times_are_rejected():
    frame = journey("j1", "search", True, 1.0)
    with pytest.raises(ValueError, match="'converted' must be boolean"):
        attribute(frame.assign(converted="yes"), "linear")
    with pytest.raises(ValueError, match="'converted' has 1 null"):
        attribute(frame.assign(converted=None), "linear")
    with pytest.raises(ValueError, match="'touched_at' has 1 null"):
        attribute(frame.assign(touched_at=pd.NaT), "linear")
    with pytest.raises(ValueError, match="'value' is null on converted"):
        attribute(frame.assign(value=np.nan), "linear")


def test_null_value_on_a_journey_that_did_not_convert_means_none():
    frame = touches(journey("won", "search", True, 10.0), journey("lost", "email", False).assign(value=np.nan))
    assert_credits(credits(frame, "linear"), {"search": (1, 10), "email": (0, 0)})


def test_no_touches_gives_no_rows():
    empty = journey("j", "search", True, 1.0).iloc[:0]
    for model in MODELS:
        result = attribute(empty, model)
        assert list(result.columns) == ["channel", "conversions", "value"]
        assert result.empty
