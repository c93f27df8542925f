"""The camera's current group of pictures, kept so a passthrough viewer can join at once.

A decoder can start only at a keyframe, and a camera sends one every 2 to 10 s. ``GopCache``
keeps the access units from the last keyframe on (bounded); ``join_burst`` turns them into
one burst for a new viewer. The burst's RTP timestamps are squeezed into the last
``len(units)`` ticks before the live edge (one 90 kHz tick apart), so the receiver decodes
the whole group at once and shows the current picture instead of scheduling the old
pictures at their original pace (which would leave the viewer seconds behind live).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import av

from streamlab.webrtc.encoder import TIME_BASE

MAX_UNITS = 1200  # 40 s at 30 fps: longer groups are not replayed (the viewer waits)
MAX_BYTES = 24_000_000


@dataclass(slots=True)
class GopCache:
    """Access units since the camera's last keyframe (``packet.pts`` in 90 kHz ticks)."""

    max_units: int = MAX_UNITS
    max_bytes: int = MAX_BYTES
    units: list[av.Packet] = field(default_factory=list)
    size: int = 0
    overflowed: bool = False
    replays: int = 0
    replayed_units: int = 0

    def add(self, packet: av.Packet, keyframe: bool) -> None:
        if keyframe:
            self.units, self.size, self.overflowed = [], 0, False
        elif not self.units or self.overflowed:
            return  # no keyframe yet, or this group was too long to keep
        if len(self.units) >= self.max_units or self.size + packet.size > self.max_bytes:
            self.units, self.size, self.overflowed = [], 0, True
            return
        self.units.append(packet)
        self.size += packet.size

    @property
    def ready(self) -> bool:
        """Whether a joining viewer can start from this cache (it begins with a keyframe)."""
        return bool(self.units)

    def join_burst(self, after_ticks: int = -1) -> list[av.Packet]:
        """Copies of the cached units, stamped one tick apart and ending on the newest unit's
        own timestamp (and above ``after_ticks``, the last timestamp this viewer was sent)."""
        if not self.units:
            return []
        count = len(self.units)
        last = max(int(self.units[-1].pts or 0), after_ticks + count)
        burst = []
        for index, unit in enumerate(self.units):
            copy = av.Packet(bytes(unit))
            copy.pts, copy.time_base = last - (count - 1 - index), TIME_BASE
            burst.append(copy)
        self.replays += 1
        self.replayed_units += count
        return burst

    def stats(self) -> dict[str, int | bool]:
        return {"units": len(self.units), "bytes": self.size, "overflowed": self.overflowed,
                "replays": self.replays, "replayed_units": self.replayed_units}  # fmt: skip
