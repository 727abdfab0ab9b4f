"""Google Ads served from the demo world: the same frames the live API gives, no network."""

from __future__ import annotations

from datetime import date

import pandas as pd

from gtm_assets.demo.settings import DemoWorldConfig
from gtm_assets.resources.google_ads.base import GoogleAdsSource


def _between(frame: pd.DataFrame, column: str, start: date, end: date) -> pd.DataFrame:
    days = frame[column]
    return frame[(days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))].reset_index(drop=True)


class DemoGoogleAds(GoogleAdsSource):
    """A synthetic Google Ads account (see gtm_assets.demo.world)."""

    world_config: DemoWorldConfig = DemoWorldConfig()

    def campaigns(self) -> pd.DataFrame:
        return self.world_config.world().campaigns.copy()

    def campaign_performance(self, start: date, end: date) -> pd.DataFrame:
        return _between(self.world_config.world().campaign_performance, "date", start, end)

    def ad_performance(self, start: date, end: date) -> pd.DataFrame:
        return _between(self.world_config.world().ad_performance, "date", start, end)

    def ad_clicks(self, day: date) -> pd.DataFrame:
        return _between(self.world_config.world().clicks, "date", day, day)
