"""Settings shared by the demo implementations of every source: which synthetic world to serve."""

from __future__ import annotations

from datetime import date

from dagster import Config
from pydantic import Field

from gtm_assets.demo.world import World, cached_world, default_end_date


class DemoWorldConfig(Config):
    """Which demo world to serve. Every demo resource with the same settings serves the same world."""

    scale: float = Field(default=1.0, description="Volume multiplier (1 = about 50k clicks and 3k contacts over 90 days).")
    seed: int = Field(default=7, description="Random seed: the same seed and end date give the same world.")
    end_date: str | None = Field(
        default=None, description="Last day of the world (YYYY-MM-DD); default yesterday (UTC)."
    )
    days: int = Field(default=90, description="Days of history ending on end_date.")

    def world(self) -> World:
        end = date.fromisoformat(self.end_date) if self.end_date else default_end_date()
        return cached_world(end, days=self.days, scale=self.scale, seed=self.seed)
