"""Record pipeline events into a bounded table that becomes a pandas DataFrame."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, fields, is_dataclass
from typing import TYPE_CHECKING, Any

from streamlab.events import Event, EventBus

if TYPE_CHECKING:
    import pandas as pd


class EventRecorder:
    """Keeps the last ``maxlen`` events of the chosen types (all when ``types`` is empty).

    ``recorder.dataframe()`` gives one row per event with its fields as columns (nested
    dicts such as per-stage times are flattened to ``stages.<name>`` columns).
    """

    def __init__(self, bus: EventBus, *types: type[Event], maxlen: int = 10_000) -> None:
        self.types = types
        self.rows: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self.seen = 0
        self._lock = threading.Lock()
        self._unsubscribe = bus.subscribe(self._record)

    def _record(self, event: Event) -> None:
        if self.types and not isinstance(event, self.types):
            return
        row = _flatten(event)
        with self._lock:
            self.rows.append(row)
            self.seen += 1

    def close(self) -> None:
        """Stop recording (the rows stay)."""
        self._unsubscribe()

    def dataframe(self) -> pd.DataFrame:
        import pandas as pd

        with self._lock:
            rows = list(self.rows)
        return pd.DataFrame(rows)

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _flatten(event: Event) -> dict[str, Any]:
    row: dict[str, Any] = {"event": type(event).__name__}
    data = asdict(event) if is_dataclass(event) else {f.name: None for f in fields(event)}
    for key, value in data.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                row[f"{key}.{inner}"] = inner_value
        else:
            row[key] = value
    return row
