"""The HubSpot source interface: contacts, deals and engagements as frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

import pandas as pd
from dagster import ConfigurableResource


class HubSpotSource(ConfigurableResource, ABC):
    """Reads one HubSpot portal. Times are UTC; windows are [start, end).

    `full_sync=True` returns every (non-archived) record regardless of the window; otherwise
    only records modified (contacts, deals) or occurring (engagements) in the window.
    Frames carry at least the columns of the matching contract in gtm_assets.contracts.
    """

    @abstractmethod
    def contacts(self, start: datetime, end: datetime, full_sync: bool = False) -> pd.DataFrame:
        """contact_id, email, firstname, lastname, company, domain, lifecycle_stage, created_at,
        last_modified_at, gclid, utm_source, utm_medium, utm_campaign, analytics_source,
        lead_at, mql_at, sql_at, opportunity_at, customer_at."""

    @abstractmethod
    def deals(self, start: datetime, end: datetime, full_sync: bool = False) -> pd.DataFrame:
        """deal_id, contact_id, amount, stage, created_at, closed_at, is_won, last_modified_at."""

    @abstractmethod
    def engagements(self, start: datetime, end: datetime) -> pd.DataFrame:
        """engagement_id, contact_id, occurred_at, event_type, channel, detail."""
