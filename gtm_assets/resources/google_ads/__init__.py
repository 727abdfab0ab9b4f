"""Google Ads: the source interface and its demo implementation (the live one is in .live)."""

from gtm_assets.resources.google_ads.base import GoogleAdsSource
from gtm_assets.resources.google_ads.demo import DemoGoogleAds

__all__ = ["DemoGoogleAds", "GoogleAdsSource"]
