"""Times as the monitor reads them: ISO 8601, in UTC. Standard library only."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_utc(text: str) -> datetime:
    """ISO 8601 -> aware UTC datetime; a time without an offset is taken as UTC. ``ValueError`` otherwise."""
    stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
