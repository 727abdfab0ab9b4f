"""Multi-touch attribution: credit each journey's conversion and value to the touches that led to it.

One row per touch goes in (`journey_id, touched_at, channel, converted, value`; `converted`
and `value` are the journey's, repeated on each of its rows; journeys that did not convert
are included), one row per credited group comes out (`channel, conversions, value`, or the
columns named by `by`). Everything is vectorized over a journey-sorted touch array, so a
million touches go through all seven models in seconds.

Models (weights per DOMAIN.md "Attribution weights"; n = touches in the journey, repeats count):

- ``first_touch`` / ``last_touch``: all credit to the first / last touch.
- ``linear``: 1/n to every touch.
- ``time_decay``: w_i proportional to 2^(-dt_i / H), dt_i = conversion time - touch time in
  days, H = ``half_life_days`` (default 7). The conversion time is the journey's
  ``converted_at`` when the rows carry that column (latest non-null value of the journey),
  otherwise the journey's last touch. Touches after the conversion time get dt = 0 (they
  weigh like a touch at the conversion itself, never more).
- ``u_shaped``: 40% first, 40% last, 20% shared equally by the middle touches; one touch
  gets 100%, two touches 50/50.
- ``w_shaped``: 30% to the first touch, 30% to the lead-creation touch, 30% to the
  opportunity-creation touch, 10% shared equally by the remaining ("rest") touches. The
  milestones come from boolean columns ``lead_touch`` and ``opportunity_touch`` (required for
  this model); the earliest marked touch of a journey is the milestone, later marks count
  as rest touches. Milestones on one touch add up (first touch = lead touch gets 60%).
  When a journey has no rest touches, or lacks a milestone mark, the missing shares are
  redistributed proportionally to the shares that are present, so each journey's weights
  still sum to 1. Examples: first, lead and opportunity on three different touches and
  nothing else -> 1/3 each; one touch marked as both lead and opportunity -> 100%;
  three touches with no marks -> first 0.3/0.4 = 75%, the other two 12.5% each.
- ``markov``: first-order absorbing Markov chain over START, the groups (channels or `by`
  tuples), CONV and NULL, estimated from transition counts of all journeys (non-converting
  journeys end in NULL and shape the chain, but credit nothing). Removing group c
  redirects transitions into c to NULL; RE(c) = 1 - P_without_c(conv) / P(conv);
  credit(c) = RE(c) / sum(RE) x total conversions (and x total value). Solved exactly:
  with h = P(absorbed in CONV | state) and N = (I - Q)^-1 the fundamental matrix,
  P_without_c(conv) = h(START) - f_c h(c) with f_c = N[START, c] / N[c, c] the probability
  of ever visiting c, so RE(c) = f_c h(c) / h(START) (no subtraction, no cancellation).

Credits are conserved: every model's `conversions` sum to the converting journeys'
conversions and its `value` to their value. Every group present in the input appears in the
output, with zero credit when it earned none. Null values in `by` columns form their own
group and are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

MODELS: tuple[str, ...] = (
    "first_touch",
    "last_touch",
    "linear",
    "time_decay",
    "u_shaped",
    "w_shaped",
    "markov",
)

REQUIRED_COLUMNS: tuple[str, ...] = ("journey_id", "touched_at", "channel", "converted", "value")
MILESTONE_COLUMNS: tuple[str, ...] = ("lead_touch", "opportunity_touch")
DEFAULT_HALF_LIFE_DAYS = 7.0
KNOWN_PARAMS: tuple[str, ...] = ("by", "half_life_days")
# Output columns a `by` column may not shadow.
_RESERVED = ("conversions", "value", "model")
# Up to this many states the Markov chain is solved with a dense inverse (5,000 states: about
# 5 s and 400 MB on two cores); above it, with a sparse LU, whose cost depends on fill-in
# (a random 3,200-state graph took 20 s sparse against 1.6 s dense, hence the high bar).
DENSE_MARKOV_MAX_STATES = 5000
_NS_PER_DAY = 86_400 * 10**9
_EXAMPLES = 5


@dataclass(frozen=True)
class _Journeys:
    """Touches sorted by journey and time, as flat arrays (one entry per touch unless noted)."""

    group: np.ndarray  # int: the touch's `by` group code, 0..n_groups-1
    group_keys: pd.DataFrame  # one row per group code, the `by` values
    starts: np.ndarray  # per journey: index of its first touch
    sizes: np.ndarray  # per journey: number of touches
    position: np.ndarray  # 0-based position of the touch in its journey
    journey_size: np.ndarray  # n of the touch's journey
    converted: np.ndarray  # per journey: 1.0 or 0.0
    value: np.ndarray  # per journey: value (0 where not converted)
    touched_ns: np.ndarray  # int64 ns since epoch (UTC)
    converted_ns: np.ndarray  # per journey: conversion time, int64 ns
    lead_mark: np.ndarray | None  # bool, None when the column is absent
    opportunity_mark: np.ndarray | None

    @property
    def n_groups(self) -> int:
        return len(self.group_keys)

    @property
    def n_touches(self) -> int:
        return len(self.group)

    def per_touch(self, journey_values: np.ndarray) -> np.ndarray:
        return np.repeat(journey_values, self.sizes)

    def journey_sum(self, touch_values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(touch_values, self.starts) if self.n_touches else touch_values[:0]


def attribute(touches: pd.DataFrame, model: str, **params) -> pd.DataFrame:
    """Credit conversions and value to channels (or `by` groups) under one attribution model.

    touches: one row per touch, columns journey_id, touched_at, channel, converted, value
      (plus lead_touch, opportunity_touch for w_shaped; optional converted_at for time_decay).
    model: one of MODELS.
    params: by (list of column names, default ["channel"]; `channel` itself is only required
      when it is part of `by`), half_life_days (time_decay, default 7).
    Returns one row per group present in the touches, sorted by the `by` columns (nulls
    last): the `by` columns, conversions, value (floats; zero where nothing was earned).
    Raises ValueError naming the column, journey or model at fault on bad input.
    """
    model = _check_model(model)
    by, half_life_days = _check_params(params)
    journeys = _prepare(touches, by, need_milestones=model == "w_shaped")
    return _credit(journeys, model, half_life_days)


def attribute_all(touches: pd.DataFrame, models: Iterable[str] = MODELS, **params) -> pd.DataFrame:
    """Every model's credits in one frame: column `model`, then the `by` columns, conversions, value.

    The touches are validated and sorted once. Pass `models` to leave one out, e.g. w_shaped
    when the rows carry no milestone columns.
    """
    models = [_check_model(model) for model in models]
    by, half_life_days = _check_params(params)
    journeys = _prepare(touches, by, need_milestones="w_shaped" in models)
    frames = [
        _credit(journeys, model, half_life_days).assign(model=model) for model in models
    ]
    columns = ["model", *by, "conversions", "value"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


# ---------------------------------------------------------------------------- validation


def _check_model(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"Unknown attribution model {model!r}; valid models: {', '.join(MODELS)}.")
    return model


def _check_params(params: dict) -> tuple[list[str], float]:
    unknown = sorted(set(params) - set(KNOWN_PARAMS))
    if unknown:
        raise TypeError(
            f"Unknown attribution parameter(s) {', '.join(unknown)}; valid: {', '.join(KNOWN_PARAMS)}."
        )
    by = params.get("by")
    if by is None:
        by = ["channel"]
    elif isinstance(by, str):
        by = [by]
    else:
        by = list(by)
    if not by:
        raise ValueError("Parameter 'by' is empty; give at least one column, e.g. by=['channel'].")
    if len(set(by)) != len(by):
        raise ValueError(f"Parameter 'by' repeats a column: {by}.")
    clashing = [column for column in by if column in _RESERVED]
    if clashing:
        raise ValueError(
            f"Parameter 'by' may not contain {', '.join(clashing)}: those names are output columns."
        )
    half_life_days = params.get("half_life_days", DEFAULT_HALF_LIFE_DAYS)
    try:
        half_life_days = float(half_life_days)
    except (TypeError, ValueError):
        raise ValueError(
            f"half_life_days must be a positive number of days, got {half_life_days!r}."
        ) from None
    if not np.isfinite(half_life_days) or half_life_days <= 0:
        raise ValueError(f"half_life_days must be a positive number of days, got {half_life_days!r}.")
    return by, half_life_days


def _examples(journey_ids: Sequence) -> str:
    shown = ", ".join(repr(journey_id) for journey_id in list(journey_ids)[:_EXAMPLES])
    more = len(journey_ids) - _EXAMPLES
    return shown + (f" and {more} more" if more > 0 else "")


def _as_flag(series: pd.Series, column: str, null_as_false: bool) -> np.ndarray:
    """A True/False (or 1/0) column as a bool array; anything else is an error naming the column."""
    nulls = series.isna().to_numpy()
    if nulls.any() and not null_as_false:
        raise ValueError(
            f"Column '{column}' has {int(nulls.sum())} null value(s); give every touch True or "
            "False (False when the journey did not convert)."
        )
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        numbers = series.to_numpy(dtype=float, na_value=0.0)
        bad = ~np.isin(numbers, (0.0, 1.0))
        if bad.any():
            raise ValueError(
                f"Column '{column}' must be boolean (True/False or 1/0); found "
                f"{series[bad].unique()[:_EXAMPLES].tolist()}."
            )
        return numbers == 1.0
    try:
        flags = series.astype("boolean")
    except (TypeError, ValueError):
        examples = series.dropna().astype(str).unique()[:_EXAMPLES].tolist()
        raise ValueError(
            f"Column '{column}' must be boolean (True/False or 1/0); found values such as {examples}."
        ) from None
    return flags.fillna(False).to_numpy(dtype=bool)


def _as_utc_ns(series: pd.Series, column: str, allow_null: bool) -> np.ndarray:
    try:
        stamps = pd.to_datetime(series, utc=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Column '{column}' must hold timestamps: {error}") from None
    missing = stamps.isna().to_numpy()
    if missing.any() and not allow_null:
        raise ValueError(
            f"Column '{column}' has {int(missing.sum())} null value(s); every touch needs a time."
        )
    nanoseconds = stamps.dt.tz_convert(None).astype("datetime64[ns]").to_numpy().view(np.int64).copy()
    nanoseconds[missing] = np.iinfo(np.int64).min
    return nanoseconds


def _prepare(touches: pd.DataFrame, by: list[str], need_milestones: bool) -> _Journeys:
    if not isinstance(touches, pd.DataFrame):
        raise TypeError(f"touches must be a pandas DataFrame, got {type(touches).__name__}.")
    # channel is only needed when it is part of the grain.
    required = list(dict.fromkeys([c for c in REQUIRED_COLUMNS if c != "channel" or c in by] + by))
    missing = [column for column in required if column not in touches.columns]
    if missing:
        raise ValueError(
            f"Touches are missing column(s) {', '.join(missing)}; "
            f"required: {', '.join(required)}."
        )
    if need_milestones:
        absent = [column for column in MILESTONE_COLUMNS if column not in touches.columns]
        if absent:
            raise ValueError(
                f"The w_shaped model needs boolean milestone column(s) {', '.join(absent)} "
                "(True on the touch that created the lead / the opportunity); add them, or use "
                "u_shaped, which needs no milestones."
            )

    if touches["journey_id"].isna().any():
        raise ValueError(
            f"Column 'journey_id' has {int(touches['journey_id'].isna().sum())} null value(s); "
            "every touch must belong to a journey."
        )
    touched_ns = _as_utc_ns(touches["touched_at"], "touched_at", allow_null=False)
    journey_code, journey_ids = pd.factorize(touches["journey_id"])
    # lexsort is stable: touches at the same time keep their input order.
    order = np.lexsort((touched_ns, journey_code))
    journey_code = journey_code[order]
    touched_ns = touched_ns[order]
    n_touches = len(order)

    if n_touches:
        starts = np.flatnonzero(np.r_[True, journey_code[1:] != journey_code[:-1]])
    else:
        starts = np.zeros(0, dtype=np.int64)
    sizes = np.diff(np.r_[starts, n_touches])
    position = np.arange(n_touches) - np.repeat(starts, sizes)
    journey_size = np.repeat(sizes, sizes)
    sorted_journey_ids = journey_ids[journey_code[starts]] if n_touches else journey_ids[:0]

    converted_touch = _as_flag(touches["converted"], "converted", null_as_false=False)[order].astype(float)
    value_series = touches["value"]
    value_touch = pd.to_numeric(value_series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    not_numeric = np.isnan(value_touch) & value_series.notna().to_numpy()
    if not_numeric.any():
        examples = value_series[not_numeric].unique()[:_EXAMPLES].tolist()
        raise ValueError(f"Column 'value' must be numeric; found {examples}.")
    value_touch = value_touch[order]
    # A journey that did not convert has no value to credit; a null there means "none".
    value_touch = np.where(np.isnan(value_touch) & (converted_touch == 0), 0.0, value_touch)
    if np.isnan(value_touch).any():
        bad = np.unique(journey_code[np.isnan(value_touch)])
        raise ValueError(
            f"Column 'value' is null on converted journey(s) {_examples(journey_ids[bad])}; "
            "fill it with 0 when the conversion has no value."
        )
    if np.isinf(value_touch).any():
        bad = np.unique(journey_code[np.isinf(value_touch)])
        raise ValueError(f"Column 'value' is infinite on journey(s) {_examples(journey_ids[bad])}.")
    if (value_touch < 0).any():
        bad = np.unique(journey_code[value_touch < 0])
        raise ValueError(
            f"Column 'value' is negative on {len(bad)} journey(s) ({_examples(journey_ids[bad])}); "
            "attribution credits non-negative values only (refunds belong in a separate measure)."
        )
    for column, per_touch in (("converted", converted_touch), ("value", value_touch)):
        if not n_touches:
            break
        differs = np.maximum.reduceat(per_touch, starts) != np.minimum.reduceat(per_touch, starts)
        if differs.any():
            raise ValueError(
                f"Column '{column}' differs between the rows of {int(differs.sum())} journey(s) "
                f"({_examples(sorted_journey_ids[differs])}); it is the journey's {column} and must "
                "be repeated unchanged on each of its touches."
            )
    converted = converted_touch[starts]
    value = value_touch[starts] * converted

    converted_ns = touched_ns[starts + sizes - 1] if n_touches else touched_ns[:0]
    if "converted_at" in touches.columns:
        stated_ns = _as_utc_ns(touches["converted_at"], "converted_at", allow_null=True)[order]
        # The journey's latest stated conversion time; without one, its last touch.
        stated = np.maximum.reduceat(stated_ns, starts) if n_touches else stated_ns
        converted_ns = np.where(stated != np.iinfo(np.int64).min, stated, converted_ns)

    lead_mark = opportunity_mark = None
    if need_milestones:
        lead_mark = _as_flag(touches["lead_touch"], "lead_touch", null_as_false=True)[order]
        opportunity_mark = _as_flag(
            touches["opportunity_touch"], "opportunity_touch", null_as_false=True
        )[order]

    group_touch, group_keys = _groups(touches, by)
    return _Journeys(
        group=group_touch[order],
        group_keys=group_keys,
        starts=starts,
        sizes=sizes,
        position=position,
        journey_size=journey_size,
        converted=converted,
        value=value,
        touched_ns=touched_ns,
        converted_ns=converted_ns,
        lead_mark=lead_mark,
        opportunity_mark=opportunity_mark,
    )


def _groups(touches: pd.DataFrame, by: list[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Group code per input row (nulls are a group of their own) and the keys, sorted by `by`."""
    if touches.empty:
        return np.zeros(0, dtype=np.int64), touches[by].iloc[:0].reset_index(drop=True)
    codes = touches.groupby(by, dropna=False, sort=True, observed=True).ngroup().to_numpy()
    _, first_row = np.unique(codes, return_index=True)
    return codes, touches[by].iloc[first_row].reset_index(drop=True)


# ---------------------------------------------------------------------------- models


def _credit(journeys: _Journeys, model: str, half_life_days: float) -> pd.DataFrame:
    if model == "markov":
        conversions, value = _markov_credit(journeys)
    else:
        weight = _RULE_WEIGHTS[model](journeys, half_life_days)
        converted = journeys.per_touch(journeys.converted)
        journey_value = journeys.per_touch(journeys.value)
        conversions = np.bincount(journeys.group, weights=weight * converted, minlength=journeys.n_groups)
        value = np.bincount(journeys.group, weights=weight * journey_value, minlength=journeys.n_groups)
    result = journeys.group_keys.copy()
    result["conversions"] = conversions.astype(float)
    result["value"] = value.astype(float)
    return result


def _first_touch(journeys: _Journeys, _half_life: float) -> np.ndarray:
    return (journeys.position == 0).astype(float)


def _last_touch(journeys: _Journeys, _half_life: float) -> np.ndarray:
    return (journeys.position == journeys.journey_size - 1).astype(float)


def _linear(journeys: _Journeys, _half_life: float) -> np.ndarray:
    return 1.0 / journeys.journey_size


def _time_decay(journeys: _Journeys, half_life_days: float) -> np.ndarray:
    days_before = (journeys.per_touch(journeys.converted_ns) - journeys.touched_ns) / _NS_PER_DAY
    days_before = np.maximum(days_before, 0.0)
    # Measured from the journey's closest touch, so the largest weight is 1 and old journeys
    # do not underflow to 0/0; the common factor cancels in the normalization.
    closest = np.minimum.reduceat(days_before, journeys.starts) if journeys.n_touches else days_before
    raw = np.exp2(-(days_before - journeys.per_touch(closest)) / half_life_days)
    return raw / journeys.per_touch(journeys.journey_sum(raw))


def _u_shaped(journeys: _Journeys, _half_life: float) -> np.ndarray:
    n = journeys.journey_size
    end = (journeys.position == 0) | (journeys.position == n - 1)
    weight = np.where(end, 0.4, 0.2 / np.maximum(n - 2, 1))
    weight = np.where(n == 2, 0.5, weight)
    return np.where(n == 1, 1.0, weight)


def _earliest_mark(journeys: _Journeys, mark: np.ndarray) -> np.ndarray:
    """Per touch: is it the earliest marked touch of its journey."""
    index = np.arange(journeys.n_touches)
    earliest = np.minimum.reduceat(np.where(mark, index, journeys.n_touches), journeys.starts)
    return index == journeys.per_touch(earliest)


def _w_shaped(journeys: _Journeys, _half_life: float) -> np.ndarray:
    if not journeys.n_touches:
        return np.zeros(0)
    first = journeys.position == 0
    lead = _earliest_mark(journeys, journeys.lead_mark)
    opportunity = _earliest_mark(journeys, journeys.opportunity_mark)
    milestone_share = 0.3 * first + 0.3 * lead + 0.3 * opportunity
    rest = ~(first | lead | opportunity)
    rest_count = journeys.journey_sum(rest.astype(np.int64))
    # The shares actually present in each journey; dividing by them redistributes the
    # missing ones (no rest touches, no lead or opportunity mark) proportionally.
    present = (
        0.3
        + 0.3 * journeys.journey_sum(lead.astype(np.int64))
        + 0.3 * journeys.journey_sum(opportunity.astype(np.int64))
        + 0.1 * (rest_count > 0)
    )
    rest_share = np.where(rest, 0.1 / np.maximum(journeys.per_touch(rest_count), 1), 0.0)
    return (milestone_share + rest_share) / journeys.per_touch(present)


_RULE_WEIGHTS = {
    "first_touch": _first_touch,
    "last_touch": _last_touch,
    "linear": _linear,
    "time_decay": _time_decay,
    "u_shaped": _u_shaped,
    "w_shaped": _w_shaped,
}


def _markov_credit(journeys: _Journeys) -> tuple[np.ndarray, np.ndarray]:
    n_groups = journeys.n_groups
    total_conversions = journeys.converted.sum()
    total_value = journeys.value.sum()
    removal_effect = _markov_removal_effects(journeys)
    if total_conversions == 0 or removal_effect.sum() == 0:
        return np.zeros(n_groups), np.zeros(n_groups)
    share = removal_effect / removal_effect.sum()
    return share * total_conversions, share * total_value


def _markov_removal_effects(journeys: _Journeys) -> np.ndarray:
    """RE(c) for every group, from the exact absorption probabilities of the transition chain."""
    n_groups = journeys.n_groups
    if journeys.n_touches == 0:
        return np.zeros(n_groups)
    start, conv, null = n_groups, n_groups + 1, n_groups + 2
    transient = n_groups + 1  # groups and START
    group = journeys.group
    first = journeys.position == 0
    previous = np.r_[start, group[:-1]]
    source = np.where(first, start, previous)
    last_index = journeys.starts + journeys.sizes - 1
    exit_state = np.where(journeys.converted > 0, conv, null)
    source = np.r_[source, group[last_index]]
    target = np.r_[group, exit_state]
    counts = scipy.sparse.csr_matrix(
        (np.ones(len(source)), (source, target)), shape=(n_groups + 3, n_groups + 3)
    )
    counts.sum_duplicates()
    out_degree = np.asarray(counts.sum(axis=1)).ravel()[:transient]
    # Every group that appears has an outgoing transition (journeys end in CONV or NULL),
    # so out_degree > 0 for all transient states.
    probability = scipy.sparse.diags(1.0 / out_degree) @ counts[:transient]
    q = probability[:, :transient]
    to_conv = probability[:, conv].toarray().ravel()
    fundamental_system = scipy.sparse.identity(transient, format="csc") - q.tocsc()

    if transient <= DENSE_MARKOV_MAX_STATES:
        fundamental = scipy.linalg.inv(fundamental_system.toarray(), overwrite_a=True, check_finite=False)
        p_conv = fundamental @ to_conv
        visits_from_start = fundamental[start]
        visits_diagonal = np.diag(fundamental).copy()
    else:
        lu = scipy.sparse.linalg.splu(fundamental_system)
        p_conv = lu.solve(to_conv)
        unit_start = np.zeros(transient)
        unit_start[start] = 1.0
        visits_from_start = lu.solve(unit_start, trans="T")
        visits_diagonal = np.empty(transient)
        block = 256
        for begin in range(0, transient, block):  # blocks of columns of N, not rows of data
            stop = min(begin + block, transient)
            unit_columns = np.zeros((transient, stop - begin))
            unit_columns[np.arange(begin, stop), np.arange(stop - begin)] = 1.0
            solved = lu.solve(unit_columns)
            visits_diagonal[begin:stop] = solved[np.arange(begin, stop), np.arange(stop - begin)]

    if p_conv[start] <= 0:
        return np.zeros(n_groups)
    ever_visited = visits_from_start[:n_groups] / visits_diagonal[:n_groups]
    removal_effect = ever_visited * p_conv[:n_groups] / p_conv[start]
    return np.clip(removal_effect, 0.0, 1.0)
