"""Who may see which frame, as the real archive decides it, for every stand-in archive.

The sample archive (`make run`) and the test archive server both apply this one rule, so the
service's permission handling is exercised the same way everywhere:

- a frame whose `public_date` has passed is visible to everyone, without a header;
- any other frame (proprietary, or without a usable public date: fail closed) is visible only to
  a token of a user on the frame's proposal;
- an unknown token is refused with 401 before anything is looked up, as Django REST Framework
  does; a frame the caller may not see looks exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

INVALID_TOKEN = "Invalid token."


class UnknownToken(Exception):
    """The Authorization header names no known token: the archive answers 401."""


def parse_date(value: object) -> datetime | None:
    """An ISO 8601 date of a record (naive dates are UTC), or None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_public(record: Mapping[str, Any], now: datetime | None = None) -> bool:
    public_date = parse_date(record.get("public_date"))
    return public_date is not None and public_date <= (now or datetime.now(UTC))


class ProposalPermissions:
    """The rule over a token -> proposals table (the table may change while it is in use)."""

    def __init__(self, tokens: Mapping[str, Collection[str]]) -> None:
        self.tokens = tokens

    def proposals(self, authorization: str | None) -> frozenset[str]:
        """The proposals the caller is on; anonymous callers are on none."""
        if authorization is None or not authorization.strip():
            return frozenset()
        proposals = self.tokens.get(authorization)
        if proposals is None:
            raise UnknownToken(INVALID_TOKEN)
        return frozenset(proposals)

    def visible(
        self, records: Iterable[Mapping[str, Any]], authorization: str | None
    ) -> list[Mapping[str, Any]]:
        """The records this caller may see, in the archive's order (by id)."""
        proposals = self.proposals(authorization)
        now = datetime.now(UTC)
        shown = [r for r in records if is_public(r, now) or r.get("proposal_id") in proposals]
        return sorted(shown, key=lambda r: r.get("id") or 0)
