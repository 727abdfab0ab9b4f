"""HubSpot: the source interface and its demo implementation (the live one is in .live)."""

from gtm_assets.resources.hubspot.base import HubSpotSource
from gtm_assets.resources.hubspot.demo import DemoHubSpot

__all__ = ["DemoHubSpot", "HubSpotSource"]
