"""ICE policy: which local addresses we offer and which remote candidates we accept.

aioice leaves loopback out of its host addresses; when serving on 127.0.0.1 we want
exactly loopback. ``local_addresses`` sets the addresses for the peer connections created
in the current context only (a ContextVar), so other peer connections are untouched.
"""

from __future__ import annotations

import contextvars
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

from streamlab.config import StreamingConfig

_addresses: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "streamlab_ice_addresses", default=None
)
_original = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _addresses.get()
    if chosen is None:
        return _original(use_ipv4, use_ipv6)
    return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


aioice.ice.get_host_addresses = _host_addresses


@contextmanager
def local_addresses(addresses: tuple[str, ...] | None) -> Iterator[None]:
    """Within this block, new ICE agents gather host candidates on ``addresses`` only."""
    token = _addresses.set(addresses)
    try:
        yield
    finally:
        _addresses.reset(token)


def host_addresses_for(config: StreamingConfig) -> tuple[str, ...] | None:
    """Loopback when serving on loopback; the configured list otherwise (None: all)."""
    if config.ice_host_addresses:
        return tuple(config.ice_host_addresses)
    if _is_loopback(config.host):
        return ("127.0.0.1",)
    return None


def allowed_networks(
    config: StreamingConfig,
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Remote candidates must be in these networks (loopback only when serving on it)."""
    if config.ice_allowed_networks:
        return [ipaddress.ip_network(n, strict=False) for n in config.ice_allowed_networks]
    if _is_loopback(config.host):
        return [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    return []


def filter_candidates(
    sdp: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> tuple[str, int]:
    """Drop ``a=candidate`` lines outside ``networks`` (none given: keep all)."""
    if not networks:
        return sdp, 0
    kept, dropped = [], 0
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            address = parts[4] if len(parts) > 4 else ""
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                dropped += 1  # mDNS names and the like cannot be on an allowed network
                continue
            if not any(ip in network for network in networks):
                dropped += 1
                continue
        kept.append(line)
    return "\r\n".join(kept) + "\r\n", dropped


def rtc_configuration(config: StreamingConfig) -> RTCConfiguration:
    """Only the STUN/TURN servers the user configured: never a public one by default."""
    servers = [RTCIceServer(urls=url) for url in config.stun_servers]
    servers += [RTCIceServer(urls=url) for url in config.turn_servers]
    return RTCConfiguration(iceServers=servers)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
