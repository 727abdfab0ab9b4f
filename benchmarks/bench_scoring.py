"""Benchmark of the lead model: training and scoring time and peak memory at 10k and 200k synthetic leads.

Run: .venv/bin/python benchmarks/bench_scoring.py [rows ...]   (default: 10000 200000)
Each size runs in a fresh child process so peak memory (ru_maxrss) belongs to that size.
Scoring is timed twice: probabilities alone, and score_leads with tiers and reasons
(one extra batched predict per feature).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

SIZES = ["1-10", "11-50", "51-200", "201-1000", "1000+"]


def synthetic_leads(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """~20 columns like an enriched lead: firmographics, source, engagement counts, gaps."""
    rng = np.random.default_rng(seed)
    size = rng.choice(SIZES, n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    campaign = rng.choice([f"cmp-{i}" for i in range(200)], n)
    business = rng.random(n) < 0.6
    demo = (rng.random(n) < 0.1).astype(int)
    pricing = rng.poisson(0.6, n)
    frame = pd.DataFrame(
        {
            "company_size": pd.Series(size, dtype="str"),
            "industry": rng.choice(["SaaS", "Retail", "Finance", "Health", "Manufacturing", "Education", "Media"], n),
            "country": pd.Series(rng.choice(["US", "DE", "GB", "FR", "IN", "BR", "JP", None], n), dtype="str"),
            "email_domain_type": np.where(business, "business", "free"),
            "channel": rng.choice(["paid_search", "display", "organic", "referral", "email"], n),
            "campaign_id": campaign,
            "keyword": pd.Series([f"kw {k}" for k in rng.integers(0, 5000, n)], dtype="str"),
            "match_type": rng.choice(["EXACT", "PHRASE", "BROAD"], n),
            "device": rng.choice(["desktop", "mobile", "tablet"], n),
            "employees": pd.array(np.where(rng.random(n) < 0.2, np.nan, rng.lognormal(4, 1.5, n).round()), dtype="Float64"),
            "annual_revenue": rng.lognormal(15, 2, n),
            "page_views": rng.poisson(3, n),
            "pricing_page_views": pricing,
            "content_downloads": rng.poisson(0.4, n),
            "webinars": rng.poisson(0.1, n),
            "demo_booked": demo,
            "email_clicks": rng.poisson(1, n),
            "meetings": rng.poisson(0.05, n),
            "has_phone": pd.array(rng.random(n) < 0.5, dtype="boolean"),
            "never_filled": np.nan,
        }
    )
    big = np.isin(size, ["201-1000", "1000+"])
    logit = -3.2 + 2.2 * demo * big + 0.7 * demo + 1.0 * (pricing >= 2) + 0.8 * np.isin(campaign, ["cmp-1", "cmp-2"]) + 0.7 * business
    return frame, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


def run_one(rows: int) -> dict:
    from gtm_assets.scoring import evaluate_scores, fit_lead_model, rule_score, score_leads

    train_X, train_y = synthetic_leads(rows, seed=1)
    new_X, new_y = synthetic_leads(rows, seed=2)
    started = time.perf_counter()
    result = fit_lead_model(train_X, train_y)
    train_seconds = time.perf_counter() - started

    started = time.perf_counter()
    probabilities = result.model.predict_proba(new_X)[:, 1]
    predict_seconds = time.perf_counter() - started

    started = time.perf_counter()
    scored = score_leads(result.model, new_X)
    score_seconds = time.perf_counter() - started

    model_metrics = evaluate_scores(new_y, probabilities)
    points_metrics = evaluate_scores(new_y, rule_score(new_X), probabilities=False)
    return {
        "rows": rows,
        "columns": train_X.shape[1],
        "train_s": round(train_seconds, 2),
        "predict_proba_s": round(predict_seconds, 2),
        "score_leads_s": round(score_seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "model_roc_auc": round(model_metrics["roc_auc"], 3),
        "points_roc_auc": round(points_metrics["roc_auc"], 3),
        "model_pr_auc": round(model_metrics["pr_auc"], 3),
        "points_pr_auc": round(points_metrics["pr_auc"], 3),
        "model_top_decile_lift": round(model_metrics["top_decile_lift"], 2),
        "points_top_decile_lift": round(points_metrics["top_decile_lift"], 2),
        "tier_counts": scored["tier"].value_counts().sort_index().to_dict(),
    }


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "--child":
        print(json.dumps(run_one(int(argv[1]))))
        return
    sizes = [int(a) for a in argv] or [10_000, 200_000]
    for rows in sizes:
        child = subprocess.run([sys.executable, __file__, "--child", str(rows)], capture_output=True, text=True, check=True)
        print(child.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
