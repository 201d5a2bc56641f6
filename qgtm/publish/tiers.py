"""Subscription tiers: when a signal is released to a tier and what the tier sees of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
END_OF_DAY = time(16, 0)  # the NYSE close; "end-of-day" releases wait for it
ADMIN_TIER = "admin"  # pseudo-tier of owner alerts: released at once to admins only
ROLES = ("admin", "subscriber")  # a subscriber's role; admins also get ADMIN_TIER items


@dataclass(frozen=True, slots=True)
class Tier:
    """A subscription tier: release delay, end-of-day batching and the fields it sees."""

    name: str
    delay: timedelta
    end_of_day: bool = False
    show_weights: bool = False
    show_rationale: bool = False

    def release_at(self, issued_at: datetime) -> datetime:
        """issued_at + delay, then (end-of-day tiers) the next 16:00 New York at or after it."""
        due = issued_at + self.delay
        if not self.end_of_day:
            return due
        local = due.astimezone(NEW_YORK)
        close = datetime.combine(local.date(), END_OF_DAY, tzinfo=NEW_YORK)
        if close < local:
            close = datetime.combine(local.date() + timedelta(days=1), END_OF_DAY, NEW_YORK)
        return close.astimezone(issued_at.tzinfo)

    def view(self, item_id: str, issued_at: datetime, payload: dict[str, Any]) -> dict[str, Any]:
        """The fields of a signal this tier may see (free: symbol and direction only)."""
        shown: dict[str, Any] = {
            "id": item_id,
            "symbol": payload["symbol"],
            "direction": payload["direction"],
            "issued_at": issued_at.isoformat(),
            "release_at": self.release_at(issued_at).isoformat(),
            "tier": self.name,
        }
        if self.show_weights:
            shown["weight"] = payload["weight"]
            shown["previous_weight"] = payload["previous_weight"]
        if self.show_rationale:
            shown["rationale"] = payload["rationale"]
        return shown


DEFAULT_TIERS: dict[str, Tier] = {
    "free": Tier("free", timedelta(hours=24), end_of_day=True),
    "pro": Tier("pro", timedelta(minutes=15), show_weights=True),
    "premium": Tier("premium", timedelta(0), show_weights=True, show_rationale=True),
}
