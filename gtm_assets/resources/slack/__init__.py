"""Slack: the alert-channel interface (implementations in .live)."""

from gtm_assets.resources.slack.base import AlertChannel

__all__ = ["AlertChannel"]
