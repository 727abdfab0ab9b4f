"""HubSpot served from the demo world: contacts, deals and engagements as the live API maps them."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from gtm_assets.demo.settings import DemoWorldConfig
from gtm_assets.resources.hubspot.base import HubSpotSource


def _window(frame: pd.DataFrame, column: str, start: datetime, end: datetime) -> pd.DataFrame:
    times = frame[column]
    return frame[(times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))].reset_index(drop=True)


class DemoHubSpot(HubSpotSource):
    """A synthetic HubSpot portal (see gtm_assets.demo.world)."""

    world_config: DemoWorldConfig = DemoWorldConfig()

    def contacts(self, start: datetime, end: datetime, full_sync: bool = False) -> pd.DataFrame:
        contacts = self.world_config.world().contacts
        return contacts.copy() if full_sync else _window(contacts, "last_modified_at", start, end)

    def deals(self, start: datetime, end: datetime, full_sync: bool = False) -> pd.DataFrame:
        deals = self.world_config.world().deals
        return deals.copy() if full_sync else _window(deals, "last_modified_at", start, end)

    def engagements(self, start: datetime, end: datetime) -> pd.DataFrame:
        return _window(self.world_config.world().engagements, "occurred_at", start, end)
