"""Marts: funnel, touchpoints, attribution, cost per SQL and channel economics (filled in by the marts work)."""

assets: list = []
checks: list = []
