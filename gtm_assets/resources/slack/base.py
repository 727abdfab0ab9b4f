"""The alert delivery interface: post a message to a channel."""

from __future__ import annotations

from abc import ABC, abstractmethod

from dagster import ConfigurableResource


class AlertChannel(ConfigurableResource, ABC):
    """Delivers alert messages. `enabled` is False when there is nowhere to post (no token)."""

    @property
    @abstractmethod
    def enabled(self) -> bool: ...

    @abstractmethod
    def post(self, text: str, blocks: list[dict] | None = None, channel: str | None = None) -> str:
        """Post one message; return its timestamp id. Raises on failure (the caller retries later)."""
