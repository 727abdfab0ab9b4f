"""Firmographics served from the demo world's company register."""

from __future__ import annotations

import pandas as pd

from gtm_assets.demo.settings import DemoWorldConfig
from gtm_assets.resources.enrichment.base import FIRMOGRAPHIC_COLUMNS, FirmographicsSource


class DemoFirmographics(FirmographicsSource):
    """Knows every business domain of the demo world; free-mail and unknown domains get NULLs."""

    world_config: DemoWorldConfig = DemoWorldConfig()

    def lookup(self, domains: list[str]) -> pd.DataFrame:
        register = self.world_config.world().companies.drop_duplicates("domain")
        wanted = pd.DataFrame({"domain": pd.Series(list(dict.fromkeys(domains)), dtype="object")})
        return wanted.merge(register, on="domain", how="left")[FIRMOGRAPHIC_COLUMNS]
