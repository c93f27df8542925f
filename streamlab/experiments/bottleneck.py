"""A bottleneck streamlab did not write: the kernel's ``tbf`` qdisc between two network
namespaces.

``KernelBottleneck(rate="800k", queue_ms=200)`` creates two network namespaces joined by a
veth pair (addresses from the benchmarking range 198.18.0.0/15), and a token-bucket filter
with a drop-tail queue on the *server* side's egress, so everything the server sends to the
viewers (media, retransmissions, padding) crosses one real queue, while feedback travels
back unshaped. Run the server (and its camera) in ``server_ns`` and viewers in
``viewer_ns`` (``command(...)`` prefixes ``ip netns exec``). ``set_rate`` changes the
capacity live, for schedules; ``stats()`` reads the qdisc's own counters (bytes sent,
packets dropped, backlog).

Needs root and iproute2 (``available()`` says why not). Nothing leaves the namespaces.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from types import TracebackType

from streamlab.delivery.network import parse_rate
from streamlab.errors import ConfigError

SUBNET = "198.18"
BURST_S = 0.004  # the bucket holds 4 ms of the rate (at least two full packets)
MIN_BURST = 3200
_counter = itertools.count(1)


def available() -> str | None:
    """None when namespaces and tbf can be made here; else the reason why not."""
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "iproute2 (ip, tc) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    return None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The qdisc's counters since it was made."""

    sent_bytes: int
    sent_packets: int
    dropped: int
    backlog_bytes: int


class KernelBottleneck:
    """Two namespaces, one veth pair, ``tbf`` (rate + drop-tail queue) server → viewers."""

    def __init__(self, rate: str | None = "800k", queue_ms: float = 200.0, *,
                 tag: str = "") -> None:  # fmt: skip
        """``rate=None``: no shaping, just the two namespaces and the veth pair."""
        self.shaped = rate is not None
        self.rate_bps = parse_rate(rate) if rate is not None else 1
        if self.rate_bps <= 0:
            raise ConfigError(f"a bottleneck needs a rate above 0, got {rate!r}")
        if not 1 <= queue_ms <= 10_000:
            raise ConfigError(f"queue_ms must be within 1..10000, got {queue_ms}")
        self.queue_ms = float(queue_ms)
        index = (os.getpid() * 7 + next(_counter)) % 250 + 1
        suffix = tag or f"{os.getpid()}-{index}"
        self.server_ns = f"sl-srv-{suffix}"
        self.viewer_ns = f"sl-view-{suffix}"
        self._server_if = f"slS{index}"
        self._viewer_if = f"slV{index}"
        self.server_address = f"{SUBNET}.{index}.1"
        self.viewer_address = f"{SUBNET}.{index}.2"
        self.network = f"{SUBNET}.{index}.0/30"
        self._up = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> KernelBottleneck:
        reason = available()
        if reason is not None:
            raise ConfigError(f"cannot make a kernel bottleneck: {reason}")
        self.close()  # leftovers of a run that was killed
        try:
            for ns in (self.server_ns, self.viewer_ns):
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            _ip("link", "add", self._server_if, "type", "veth", "peer", "name", self._viewer_if)
            _ip("link", "set", self._server_if, "netns", self.server_ns)
            _ip("link", "set", self._viewer_if, "netns", self.viewer_ns)
            ends = ((self.server_ns, self._server_if, self.server_address),
                    (self.viewer_ns, self._viewer_if, self.viewer_address))  # fmt: skip
            for ns, name, address in ends:
                _ip("-n", ns, "addr", "add", f"{address}/30", "dev", name)
                _ip("-n", ns, "link", "set", name, "up")
            if self.shaped:
                self._tbf("add")
        except BaseException:
            self.close()
            raise
        self._up = True
        return self

    def close(self) -> None:
        """Remove both namespaces (and with them the veth pair and the qdisc)."""
        for ns in (self.server_ns, self.viewer_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._up = False

    def __enter__(self) -> KernelBottleneck:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        self.close()

    # -- the queue ---------------------------------------------------------------------

    def set_rate(self, rate: str | int) -> None:
        """Change the capacity now (the queue's time bound stays ``queue_ms``)."""
        bps = parse_rate(rate) if isinstance(rate, str) else int(rate)
        if bps <= 0:
            raise ConfigError(f"a bottleneck needs a rate above 0, got {rate!r}")
        self.rate_bps = bps
        self._tbf("change")

    def _tbf(self, verb: str) -> None:
        burst = max(MIN_BURST, int(self.rate_bps / 8 * BURST_S))
        _ip_tc(self.server_ns, "qdisc", verb, "dev", self._server_if, "root", "tbf",
               "rate", f"{self.rate_bps}bit", "burst", str(burst),
               "latency", f"{self.queue_ms:g}ms")  # fmt: skip

    def stats(self) -> QueueStats:
        command = ["tc", "-n", self.server_ns, "-s", "qdisc", "show", "dev", self._server_if]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        sent = re.search(r"Sent (\d+) bytes (\d+) pkt \(dropped (\d+)", out.stdout)
        backlog = re.search(r"backlog (\d+)b", out.stdout)
        if sent is None:
            raise RuntimeError(f"unexpected tc output: {out.stdout!r}")
        return QueueStats(int(sent[1]), int(sent[2]), int(sent[3]),
                          int(backlog[1]) if backlog else 0)  # fmt: skip

    # -- processes inside ----------------------------------------------------------------

    def command(self, side: str, argv: list[str]) -> list[str]:
        """``argv`` run inside the ``server`` or ``viewer`` namespace."""
        ns = {"server": self.server_ns, "viewer": self.viewer_ns}[side]
        return ["ip", "netns", "exec", ns, *argv]


def _ip(*args: str) -> None:
    _run(["ip", *args])


def _ip_tc(ns: str, *args: str) -> None:
    _run(["tc", "-n", ns, *args])


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
