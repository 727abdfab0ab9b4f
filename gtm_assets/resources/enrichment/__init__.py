"""Firmographic enrichment: the interface and its demo implementation (the live one is in .live)."""

from gtm_assets.resources.enrichment.base import FIRMOGRAPHIC_COLUMNS, FirmographicsSource
from gtm_assets.resources.enrichment.demo import DemoFirmographics

__all__ = ["FIRMOGRAPHIC_COLUMNS", "DemoFirmographics", "FirmographicsSource"]
