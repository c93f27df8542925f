"""Reconnect policy: exponential backoff with full jitter and a cap, and a circuit breaker."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


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


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(slots=True)
class CircuitBreaker:
    """Opens after ``failures`` failed connects in a row and stays open ``open_s`` seconds;
    then it is half-open: ``allow()`` lets exactly one trial connect through. Its success
    closes the circuit, its failure opens it again at once for another ``open_s``."""

    failures: int
    open_s: float
    clock: Callable[[], float] = time.monotonic
    consecutive: int = 0
    opened_at: float | None = None
    times_opened: int = 0
    state: BreakerState = BreakerState.CLOSED

    @property
    def is_open(self) -> bool:
        """Open and still cooling down: no connect may be tried."""
        return self.state is BreakerState.OPEN and self.remaining_s() > 0

    def remaining_s(self) -> float:
        if self.state is not BreakerState.OPEN or self.opened_at is None:
            return 0.0
        return max(0.0, self.open_s - (self.clock() - self.opened_at))

    def allow(self) -> bool:
        """May a connect be tried now? An open circuit whose time is up turns half-open and
        allows one trial; while that trial runs, nothing else is allowed."""
        if self.state is BreakerState.OPEN:
            if self.remaining_s() > 0:
                return False
            self.state = BreakerState.HALF_OPEN
            return True
        return True

    def record_success(self) -> None:
        self.consecutive = 0
        self.opened_at = None
        self.state = BreakerState.CLOSED

    def record_failure(self) -> bool:
        """Count a failed connect; returns True when this failure opened the circuit."""
        if self.state is BreakerState.OPEN:
            return False
        self.consecutive += 1
        if self.state is BreakerState.HALF_OPEN or self.consecutive >= self.failures:
            self._open()
            return True
        return False

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = self.clock()
        self.times_opened += 1
        self.consecutive = 0
