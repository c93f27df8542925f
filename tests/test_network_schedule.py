"""The emulated link's rate schedule (``rate=1M@0s,2.5M@40s,...``): parsed, printed back,
validated, and applied to packets as time passes."""

from __future__ import annotations

import pytest

from streamlab.delivery.network import EmulatedLink, NetworkSpec
from streamlab.errors import ConfigError

RFC8867_5_1 = "rate=1M@0s,2.5M@40s,600k@60s,1M@80s,delay=50ms,queue=300ms"


def test_a_schedule_parses_prints_back_and_gives_the_rate_at_each_time() -> None:
    spec = NetworkSpec.parse(RFC8867_5_1)
    assert [spec.rate_at(t) for t in (0, 39.9, 40, 59, 60, 80, 500)] == [
        1_000_000, 1_000_000, 2_500_000, 2_500_000, 600_000, 1_000_000, 1_000_000]
    assert spec.delay_s == 0.05 and spec.queue_s == 0.3
    assert NetworkSpec.parse(str(spec)) == spec
    assert NetworkSpec.parse("rate=800k@0,2M@10").rate_at(10) == 2_000_000, "seconds by default"


@pytest.mark.parametrize("text", ["rate=1M@5s,2M@10s", "rate=1M@0s,2M@10s,3M@5s",
                                  "rate=1M@0s,2M@x", "rate=1M@0s,2M@10s,2M@10s",
                                  "rate=1M@0s,5@10s"])  # fmt: skip
def test_bad_schedules_get_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError):
        NetworkSpec.parse(text)


async def test_the_link_serialises_packets_at_the_rate_of_the_moment() -> None:
    sent: list[bytes] = []

    async def forward(data: bytes) -> None:
        sent.append(data)

    link = EmulatedLink(forward, NetworkSpec.parse("rate=1M@0s,4M@1s,queue=5s"))
    link._since = 0.0
    packet = b"\x80" + bytes(1249)  # 10 kbit: 10 ms at 1 Mbit/s, 2.5 ms at 4 Mbit/s
    assert link.accept(packet, 0.5)
    first = link._busy_until - 0.5
    assert link.accept(packet, 2.0)
    second = link._busy_until - 2.0
    assert first == pytest.approx(0.010) and second == pytest.approx(0.0025)
    link.close()
