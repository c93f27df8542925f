"""One connection per URL, many consumers: each gets its own buffer."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from streamlab.config import StreamingConfig
from streamlab.events import EventBus
from streamlab.manager import StreamState
from streamlab.sources.base import Source, Subscription
from streamlab.sources.open import open_source
from streamlab.strategies.buffering import BufferPolicy


@dataclass(slots=True)
class _Shared:
    source: Source
    consumers: int = 0
    closer: threading.Timer | None = None


class SourcePool:
    """Shares sources by URL. ``subscribe(url)`` opens the source on first use; the source
    stops ``linger_s`` seconds after its last consumer leaves (a new consumer within the
    linger reuses it)."""

    def __init__(
        self,
        *,
        config: StreamingConfig | None = None,
        bus: EventBus | None = None,
        linger_s: float = 2.0,
    ) -> None:
        self.config = config
        self.bus = bus
        self.linger_s = linger_s
        self._shared: dict[str, _Shared] = {}
        self._lock = threading.Lock()

    def subscribe(self, url: str, buffering: BufferPolicy | str = "latest") -> Subscription:
        """A new consumer of ``url`` with its own buffer. Close it to leave."""
        with self._lock:
            shared = self._shared.get(url)
            if shared is None or shared.source.state.state is StreamState.STOPPED:
                source = open_source(url, config=self.config, bus=self.bus)
                shared = self._shared[url] = _Shared(source)
            if shared.closer is not None:
                shared.closer.cancel()
                shared.closer = None
            shared.consumers += 1
            subscription = shared.source.subscribe(buffering)
            shared.source.start()
        original_close = subscription.close
        closed = threading.Event()

        def close() -> None:
            """Leave the shared source. Idempotent: a second close releases nothing."""
            with self._lock:
                if closed.is_set():
                    return
                closed.set()
            original_close()
            self._release(url, shared)

        subscription.close = close  # type: ignore[method-assign]
        return subscription

    def source(self, url: str) -> Source | None:
        """The shared source for ``url``, if one is open."""
        shared = self._shared.get(url)
        return shared.source if shared else None

    @property
    def open_urls(self) -> list[str]:
        return [url for url, shared in self._shared.items() if shared.source.running]

    def _release(self, url: str, shared: _Shared) -> None:
        with self._lock:
            if shared.consumers == 0:
                return
            shared.consumers -= 1
            if shared.consumers > 0:
                return
            shared.closer = threading.Timer(self.linger_s, self._close_if_idle, (url, shared))
            shared.closer.daemon = True
            shared.closer.start()

    def _close_if_idle(self, url: str, shared: _Shared) -> None:
        # one lock across check-and-stop: a subscribe() waits, then opens a fresh source
        with self._lock:
            if shared.consumers > 0 or shared.closer is None:
                return  # a consumer came back, or close() already took it
            shared.closer = None
            if self._shared.get(url) is shared:
                del self._shared[url]
            shared.source.stop()

    def close(self) -> None:
        """Stop every source now. Idempotent."""
        with self._lock:
            shared_all, self._shared = list(self._shared.values()), {}
            for shared in shared_all:
                if shared.closer is not None:
                    shared.closer.cancel()
                    shared.closer = None
        for shared in shared_all:
            shared.source.stop()
