"""Reconnect policy: exponential backoff with full jitter and a cap, and a circuit breaker."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delay before attempt ``n``: uniform in ``[0, min(cap, initial * 2**n)]`` (full jitter)."""

    initial_s: float
    cap_s: float
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.initial_s * (2 ** min(self.attempt, 32)))
        self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        self.attempt = 0


@dataclass(slots=True)
class CircuitBreaker:
    """Opens after ``failures`` failed connects in a row; stays open ``open_s`` seconds, then
    lets one attempt through (half-open): success closes it, failure opens it again."""

    failures: int
    open_s: float
    clock: object = time.monotonic
    consecutive: int = 0
    opened_at: float | None = None
    times_opened: int = 0

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None and self._now() - self.opened_at < self.open_s

    def remaining_s(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.open_s - (self._now() - self.opened_at))

    def record_success(self) -> None:
        self.consecutive = 0
        self.opened_at = None

    def record_failure(self) -> bool:
        """Count a failure; returns True when this failure opened the circuit."""
        self.consecutive += 1
        if self.consecutive >= self.failures and not self.is_open:
            self.opened_at = self._now()
            self.times_opened += 1
            self.consecutive = 0
            return True
        return False
