"""Benchmark of gtm_assets.attribution: wall time, peak memory and throughput of every model.

Generates synthetic journeys (8 channels, about 4 touches per journey, 12% converting, with
lead/opportunity milestones and a campaign x ad group x keyword grain), then runs all seven
models at channel grain and markov at keyword grain.

    .venv/bin/python benchmarks/bench_attribution.py               # 100k and 1M touches
    .venv/bin/python benchmarks/bench_attribution.py --touches 1000000
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np
import pandas as pd

from gtm_assets.attribution import MODELS, attribute, attribute_all

CHANNELS = np.array(
    ["paid_search", "paid_social", "display", "email", "organic", "direct", "referral", "webinar"]
)


def synthetic_touches(n_touches: int, seed: int = 7, keywords: int = 400) -> pd.DataFrame:
    """About n_touches rows of journeys with 1..12 touches over up to 60 days."""
    rng = np.random.default_rng(seed)
    journey_sizes = np.minimum(rng.geometric(0.25, size=n_touches // 2 + 10), 12)
    journey_sizes = journey_sizes[: np.searchsorted(np.cumsum(journey_sizes), n_touches) + 1]
    journey_sizes[-1] -= journey_sizes.sum() - n_touches
    journey_sizes = journey_sizes[journey_sizes > 0]
    n_journeys = len(journey_sizes)
    journey = np.repeat(np.arange(n_journeys), journey_sizes)
    starts = np.r_[0, np.cumsum(journey_sizes)[:-1]]
    position = np.arange(len(journey)) - np.repeat(starts, journey_sizes)

    converted = rng.random(n_journeys) < 0.12
    value = np.where(converted, rng.lognormal(9, 0.8, n_journeys).round(2), 0.0)
    journey_start = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 90 * 86400, n_journeys), unit="s"
    )
    offsets = pd.to_timedelta(rng.integers(0, 60 * 86400, len(journey)), unit="s")
    touched_at = journey_start[journey] + offsets
    keyword_id = rng.integers(0, keywords, len(journey))
    # Lead created on a touch about a third of the way in, opportunity on the last one.
    lead_position = (journey_sizes - 1) // 3
    return pd.DataFrame(
        {
            "journey_id": journey.astype(np.int64),
            "touched_at": touched_at,
            "channel": CHANNELS[rng.integers(0, len(CHANNELS), len(journey))],
            "converted": converted[journey],
            "value": value[journey],
            "lead_touch": position == lead_position[journey],
            "opportunity_touch": (position == journey_sizes[journey] - 1) & converted[journey],
            "campaign_id": (keyword_id // 40).astype(str),
            "ad_group_id": (keyword_id // 8).astype(str),
            "keyword": pd.Series(keyword_id.astype(str)).where(keyword_id % 10 != 0),
        }
    )


def peak_rss_mb() -> float:
    # ru_maxrss is kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(n_touches: int) -> None:
    touches = synthetic_touches(n_touches)
    print(
        f"\n{len(touches):,} touches, {touches['journey_id'].nunique():,} journeys, "
        f"{int(touches.groupby('journey_id')['converted'].first().sum()):,} converting"
    )
    print(f"{'model':<24}{'seconds':>9}{'touches/s':>14}{'peak MB (traced)':>18}")
    total = 0.0
    runs = [(model, {}) for model in MODELS]
    runs.append(("markov @ keyword grain", {"by": ["channel", "campaign_id", "ad_group_id", "keyword"]}))
    for label, params in runs:
        model = label.split(" ")[0]
        tracemalloc.start()
        began = time.perf_counter()
        credits = attribute(touches, model, **params)
        elapsed = time.perf_counter() - began
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if label in MODELS:
            total += elapsed
        converted_total = touches.groupby("journey_id")["converted"].first().sum()
        assert np.isclose(credits["conversions"].sum(), converted_total), label
        print(f"{label:<24}{elapsed:>9.2f}{len(touches) / elapsed:>14,.0f}{traced_peak / 2**20:>18.0f}")
    print(f"{'total (7 models)':<24}{total:>9.2f}{7 * len(touches) / total:>14,.0f}")
    tracemalloc.start()
    began = time.perf_counter()
    attribute_all(touches)
    elapsed = time.perf_counter() - began
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"{'attribute_all (1 prep)':<24}{elapsed:>9.2f}{7 * len(touches) / elapsed:>14,.0f}"
        f"{traced_peak / 2**20:>18.0f}"
    )
    print(f"process peak RSS so far: {peak_rss_mb():,.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--touches", type=int, action="append", help="touch count (repeatable); default 100k and 1M"
    )
    args = parser.parse_args(argv)
    for n_touches in args.touches or [100_000, 1_000_000]:
        run(n_touches)
    return 0


if __name__ == "__main__":
    sys.exit(main())
