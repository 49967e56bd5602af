"""What one request may ask of the service, and the JSON errors that name the limit it broke."""

from __future__ import annotations

from dataclasses import dataclass, fields

from divekit.errors import ConfigError, DivekitError


class RequestError(DivekitError):
    """A request the service refuses: an HTTP status and one line that names the problem (and the limit)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Limits:
    """Per-request limits, and how requests are batched.

    Attributes:
        max_body_bytes: the largest request body (an image upload, a JSON document).
        max_pixels: the most pixels an uploaded image may have (checked before it is decoded).
        max_text_chars: the longest prompt or sentence.
        max_length: the most tokens one generation may ask for.
        max_top_k: the most classes or candidate tokens a request may ask for.
        max_batch: the most requests computed together (1: no batching).
        max_wait_ms: how long a request waits for others to join its batch.
    """

    max_body_bytes: int = 5_000_000
    max_pixels: int = 4096 * 4096
    max_text_chars: int = 1000
    max_length: int = 500
    max_top_k: int = 100
    max_batch: int = 32
    max_wait_ms: float = 5.0

    def validate(self) -> Limits:
        """Refuse a limit below its smallest sensible value, naming it."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not value >= (0 if f.name == "max_wait_ms" else 1):
                raise ConfigError(f"serve limit {f.name} must be {'>= 0' if f.name == 'max_wait_ms' else 'at least 1'}, "
                                  f"got {value}")  # fmt: skip
        return self

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def within(value: float, limit: float, *, what: str, name: str, unit: str = "", status: int = 400) -> None:
    """Refuse ``value`` above ``limit`` with a message naming the limit: ``prompt: 1,500 characters; ...``."""
    if value > limit:
        raise RequestError(f"{what} is {value:,}{unit}; the limit is {limit:,}{unit} ({name})", status=status)


def at_least(value: float, low: float, *, what: str) -> None:
    if value < low:
        raise RequestError(f"{what} must be at least {low:g}, got {value:g}")
