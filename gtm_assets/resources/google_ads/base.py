"""The Google Ads source interface: what every implementation (demo, live) returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date

import pandas as pd
from dagster import ConfigurableResource


class GoogleAdsSource(ConfigurableResource, ABC):
    """Reads one Google Ads account. Money is in account currency units (micros / 1e6).

    Frames carry at least the columns of the matching contract in gtm_assets.contracts;
    `start`/`end` are inclusive dates in the account's time zone.
    """

    @abstractmethod
    def campaigns(self) -> pd.DataFrame:
        """Current campaign settings: campaign_id, campaign_name, channel, status, daily_budget,
        advertising_channel_type."""

    @abstractmethod
    def campaign_performance(self, start: date, end: date) -> pd.DataFrame:
        """Date x campaign: date, campaign_id, impressions, clicks, cost, conversions,
        daily_budget, search_budget_lost_impression_share (0-1, NULL where Google has none)."""

    @abstractmethod
    def ad_performance(self, start: date, end: date) -> pd.DataFrame:
        """Date x campaign x ad group x keyword: date, campaign_id, ad_group_id, keyword
        (NULL for ad groups without keywords), match_type, impressions, clicks, cost, conversions."""

    @abstractmethod
    def ad_clicks(self, day: date) -> pd.DataFrame:
        """One day of clicks (click_view allows one day per query): gclid, clicked_at (UTC),
        date, campaign_id, ad_group_id, keyword."""
