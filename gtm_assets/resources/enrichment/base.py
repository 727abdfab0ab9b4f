"""The firmographic enrichment interface: company facts by web domain."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pandas as pd
from dagster import ConfigurableResource

FIRMOGRAPHIC_COLUMNS = ["domain", "company_size", "employees", "industry", "country", "tech_stack"]


class FirmographicsSource(ConfigurableResource, ABC):
    """Looks up companies by domain. Unknown domains come back with NULL facts, not missing rows."""

    @abstractmethod
    def lookup(self, domains: list[str]) -> pd.DataFrame:
        """One row per requested domain with FIRMOGRAPHIC_COLUMNS; company_size is a band
        ('1-10', '11-50', '51-200', '201-1000', '1001-5000', '5000+'), tech_stack a ';'-joined list."""
