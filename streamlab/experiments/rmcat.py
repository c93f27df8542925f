"""The IETF RMCAT evaluation test cases (RFC 8867) behind the kernel's bottleneck.

A case is a capacity schedule, media flows that join and leave on a plan, and optionally a
long TCP flow, all through one ``tbf`` queue (``KernelBottleneck``). Each case runs once per
server (streamlab's ``bandwidth`` and the usual aiortc restreamer) in the same run: the test
camera and the server in the server namespace, every media flow an aiortc viewer (its own
WebRTC flow) in the viewer namespace (``rmcat_viewers``), the TCP flow a socket sender in
the server namespace writing to a sink in the viewer namespace. The qdisc's counters and
the TCP sink are sampled every half second; ``rmcat_metrics.evaluate`` turns the run into
the RFC 8868 metrics and a verdict against the issue's targets.

Cases come from a TOML file with a top-level ``[rmcat]`` table (``benchmarks/rmcat.toml``),
which ``streamlab bench --scenarios FILE`` hands to ``run_file``; ``time_scale`` shrinks
every time of every case (0.25: 5.1 in 25 s) for short runs.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import tempfile
import threading
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from streamlab.delivery.network import parse_rate
from streamlab.errors import ConfigError
from streamlab.experiments.bottleneck import KernelBottleneck
from streamlab.experiments.netns import enter
from streamlab.experiments.processes import HOSTS, Child

SERVERS = ("streamlab", "restreamer")
SAMPLE_S = 0.5
TCP_PORT = 5201
VIEWERS = [HOSTS[0], "-m", "streamlab.experiments.rmcat_viewers"]


@dataclass(frozen=True)
class Case:
    """One RMCAT case: capacity steps ``(at_s, bit/s)``, per media flow its sessions
    ``(start_s, end_s)``, and the TCP flow's ``(start_s, end_s)`` if any."""

    name: str
    title: str
    duration_s: float
    capacity: tuple[tuple[float, int], ...]
    flows: tuple[tuple[tuple[float, float], ...], ...]
    tcp: tuple[float, float] | None = None
    note: str = ""

    def scaled(self, factor: float) -> Case:
        """Every time multiplied by ``factor`` (rates unchanged)."""
        if factor == 1.0:
            return self
        return replace(
            self, duration_s=round(self.duration_s * factor, 3),
            capacity=tuple((round(at * factor, 3), bps) for at, bps in self.capacity),
            flows=tuple(tuple((round(a * factor, 3), round(b * factor, 3)) for a, b in flow)
                        for flow in self.flows),
            tcp=None if self.tcp is None else (round(self.tcp[0] * factor, 3),
                                               round(self.tcp[1] * factor, 3)),
        )  # fmt: skip


@dataclass(frozen=True)
class RmcatFile:
    """A file's cases and what every case shares."""

    cases: tuple[Case, ...]
    camera: str = "1280x720"
    queue_ms: float = 300.0
    servers: tuple[str, ...] = SERVERS
    settings: dict[str, Any] = field(default_factory=lambda: {"quality": "bandwidth"})
    time_scale: float = 1.0


def is_rmcat_file(path: str | Path) -> bool:
    """True when ``path`` is a TOML file with a top-level ``[rmcat]`` table."""
    try:
        return "rmcat" in tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False


def _steps(where: str, capacity: Any) -> tuple[tuple[float, int], ...]:
    """``["1M@0", "2.5M@40"]`` → ((0.0, 1000000), (40.0, 2500000))."""
    if not isinstance(capacity, list) or not capacity:
        raise ConfigError(f"{where}: capacity must be a list like [\"1M@0\", \"2.5M@40\"]")
    steps = []
    for item in capacity:
        rate, _, at = str(item).partition("@")
        try:
            steps.append((float(at.rstrip("s") or 0), parse_rate(rate)))
        except ValueError:
            raise ConfigError(f"{where}: capacity step {item!r}: use RATE@SECONDS") from None
    steps.sort()
    if steps[0][0] != 0:
        raise ConfigError(f"{where}: the first capacity step must be at 0 s")
    return tuple(steps)


def _sessions(where: str, flow: Any, duration: float) -> tuple[tuple[float, float], ...]:
    """A flow table ``{start_s, end_s?, pause_s?, resume_s?}`` → its sessions."""
    if not isinstance(flow, dict):
        raise ConfigError(f"{where}: each flow must be a table like {{start_s = 0}}")
    unknown = set(flow) - {"start_s", "end_s", "pause_s", "resume_s"}
    if unknown:
        raise ConfigError(f"{where}: unknown flow key(s) {sorted(unknown)}")
    start, end = float(flow.get("start_s", 0)), float(flow.get("end_s", duration))
    if "pause_s" in flow:
        pause, resume = float(flow["pause_s"]), float(flow.get("resume_s", end))
        if not start < pause < resume <= end:
            raise ConfigError(f"{where}: need start_s < pause_s < resume_s <= end_s")
        return ((start, pause), (resume, end))
    if not 0 <= start < end:
        raise ConfigError(f"{where}: need 0 <= start_s < end_s")
    return ((start, end),)


def parse(data: dict[str, Any], *, where: str = "rmcat") -> RmcatFile:
    """An ``RmcatFile`` from a parsed TOML document with an ``[rmcat]`` table."""
    table = data.get("rmcat")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: no [rmcat] table")
    known = {"camera", "queue_ms", "servers", "settings", "time_scale", "case"}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{where}: unknown [rmcat] key(s) {sorted(unknown)}")
    cases = []
    for index, raw in enumerate(table.get("case") or []):
        label = f"{where} case #{index + 1} ({raw.get('name', '?')})"
        duration = float(raw.get("duration_s", 0))
        if duration <= 0:
            raise ConfigError(f"{label}: duration_s must be > 0")
        flows = tuple(_sessions(label, f, duration) for f in raw.get("flows") or [])
        if not flows:
            raise ConfigError(f"{label}: at least one media flow")
        tcp = raw.get("tcp")
        cases.append(Case(
            name=str(raw["name"]), title=str(raw.get("title", "")), duration_s=duration,
            capacity=_steps(label, raw.get("capacity")), flows=flows,
            tcp=None if tcp is None else _sessions(label, tcp, duration)[0],
            note=str(raw.get("note", "")),
        ))  # fmt: skip
    if not cases:
        raise ConfigError(f"{where}: no [[rmcat.case]] tables")
    servers = tuple(table.get("servers", SERVERS))
    if not set(servers) <= set(SERVERS):
        raise ConfigError(f"{where}: servers must be among {SERVERS}, got {servers}")
    return RmcatFile(cases=tuple(cases), camera=str(table.get("camera", "1280x720")),
                     queue_ms=float(table.get("queue_ms", 300)), servers=servers,
                     settings=dict(table.get("settings", {"quality": "bandwidth"})),
                     time_scale=float(table.get("time_scale", 1.0)))  # fmt: skip


def load(path: str | Path) -> RmcatFile:
    """Read and check an RMCAT case file."""
    try:
        return parse(tomllib.loads(Path(path).read_text()), where=str(path))
    except FileNotFoundError:
        raise ConfigError(f"scenario file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


# -- a long TCP flow through the same queue ---------------------------------------------------


class TcpFlow:
    """A bulk TCP sender in the server namespace to a sink in the viewer namespace (plain
    sockets, one thread each); ``received`` counts the bytes the sink got."""

    def __init__(self, bottleneck: KernelBottleneck, port: int = TCP_PORT) -> None:
        self.bottleneck = bottleneck
        self.port = port
        self.received = 0
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> TcpFlow:
        for target in (self._sink, self._send):
            thread = threading.Thread(target=target, name="rmcat-tcp", daemon=True)
            thread.start()
            self._threads.append(thread)
            if target == self._sink and not self._listening.wait(5.0):
                raise ConfigError("the TCP sink did not start listening")
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5.0)

    def _sink(self) -> None:
        enter(self.bottleneck.viewer_ns)
        with socket.create_server((self.bottleneck.viewer_address, self.port)) as server:
            server.settimeout(0.5)
            self._listening.set()
            while not self._stop.is_set():
                try:
                    connection, _ = server.accept()
                except TimeoutError:
                    continue
                with connection:
                    connection.settimeout(0.5)
                    while not self._stop.is_set():
                        try:
                            data = connection.recv(65536)
                        except TimeoutError:
                            continue
                        if not data:
                            break
                        self.received += len(data)
                return

    def _send(self) -> None:
        enter(self.bottleneck.server_ns)
        chunk = b"\0" * 65536
        address = (self.bottleneck.viewer_address, self.port)
        with socket.create_connection(address, timeout=5.0) as connection:
            connection.settimeout(0.5)
            while not self._stop.is_set():
                try:
                    connection.send(chunk)
                except TimeoutError:
                    continue
                except OSError:
                    return


# -- one case, one server -------------------------------------------------------------------


def _server_command(server: str, bottleneck: KernelBottleneck, source: str,
                    settings: dict[str, Any]) -> list[str]:  # fmt: skip
    host = bottleneck.server_address
    if server == "restreamer":
        return [*HOSTS, "restreamer", "--source", source, "--port", "8080", "--host", host]
    return [*HOSTS, "serve", "--source", source, "--port", "8080", "--host", host,
            "--allow-network", bottleneck.network, "--settings", json.dumps(settings)]  # fmt: skip


def run_case(case: Case, server: str, *, camera: str = "1280x720", queue_ms: float = 300.0,
             settings: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run ``case`` once against ``server``; the raw series (see ``rmcat_metrics``)."""
    first_rate = case.capacity[0][1]
    with KernelBottleneck(str(first_rate), queue_ms) as bottleneck:
        camera_child = Child(bottleneck.command("server", [*HOSTS, "camera", "--size", camera]),
                             what="test camera")  # fmt: skip
        with camera_child:
            source = camera_child.ready("camera:", 40.0)
            command = _server_command(server, bottleneck, source, settings or {})
            with Child(bottleneck.command("server", command), what=server) as served:
                base_url = served.ready("viewer:", 40.0)
                return _drive(case, bottleneck, base_url)


def _drive(case: Case, bottleneck: KernelBottleneck, base_url: str) -> dict[str, Any]:
    """Start the viewers, follow the schedule, sample the queue; the raw record."""
    with tempfile.TemporaryDirectory(prefix="streamlab-rmcat-") as folder:
        out = Path(folder) / "viewers.json"
        plan = [list(flow) for flow in case.flows]
        command = [*VIEWERS, "--url", base_url, "--address", bottleneck.viewer_address,
                   "--plan", json.dumps(plan), "--seconds", str(case.duration_s),
                   "--out", str(out)]  # fmt: skip
        link: list[dict[str, Any]] = []
        applied: list[tuple[float, int, str]] = []
        with Child(bottleneck.command("viewer", command), what="rmcat viewers") as viewers:
            t0 = float(viewers.ready("t0:", 60.0))
            tcp: TcpFlow | None = None
            try:
                tcp = _follow(case, bottleneck, t0, link, applied)
                viewers.ready("done:", case.duration_s + 90.0)
            finally:
                if tcp is not None:
                    tcp.stop()
            result: dict[str, Any] = json.loads(out.read_text())
    result["link"] = link
    result["applied"] = applied
    return result


def _follow(case: Case, bottleneck: KernelBottleneck, t0: float, link: list[dict[str, Any]],
            applied: list[tuple[float, int, str]]) -> TcpFlow | None:  # fmt: skip
    """Until the case ends: apply capacity steps, start/stop the TCP flow, sample the qdisc
    and the TCP sink every ``SAMPLE_S``. Returns the TCP flow (stopped by the caller)."""
    steps = list(case.capacity[1:])
    tcp: TcpFlow | None = None
    tick = 0
    while True:
        time.sleep(max(0.0, t0 + tick * SAMPLE_S - time.time()))
        t = time.time() - t0
        while steps and steps[0][0] <= t:
            _, rate = steps.pop(0)
            bottleneck.set_rate(rate)
            applied.append((round(t, 3), rate, _qdisc_rate(bottleneck)))
        if case.tcp is not None:
            if tcp is None and case.tcp[0] <= t < case.tcp[1]:
                tcp = TcpFlow(bottleneck).start()
            elif tcp is not None and t >= case.tcp[1]:
                tcp.stop()
        stats = bottleneck.stats()
        link.append({"t": round(t, 3), "sent_bytes": stats.sent_bytes,
                     "sent_packets": stats.sent_packets, "dropped": stats.dropped,
                     "backlog_bytes": stats.backlog_bytes,
                     "tcp_bytes": tcp.received if tcp is not None else 0})  # fmt: skip
        if t >= case.duration_s:
            return tcp
        tick += 1


def _qdisc_rate(bottleneck: KernelBottleneck) -> str:
    """The rate the kernel's qdisc says it shapes to now (``2500Kbit``), as a check."""
    command = bottleneck.command("server", ["tc", "qdisc", "show"])
    shown = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    match = re.search(r"\btbf\b.*?\brate (\S+)", shown)
    return match.group(1) if match else ""


# -- a file ----------------------------------------------------------------------------------


def run_file(path: str | Path, out: str | Path, *, only: Sequence[str] | None = None,
             time_scale: float | None = None, servers: Sequence[str] | None = None,
             report: bool = True) -> dict[str, Any]:  # fmt: skip
    """Run every case of ``path`` against each server; write ``rmcat.json``, ``rmcat.md``
    and one PNG per case into ``out``; return the results."""
    from streamlab.experiments.rmcat_metrics import evaluate
    from streamlab.strategies.quality import ladder_for

    spec = load(path)
    scale = spec.time_scale if time_scale is None else time_scale
    if not 0.05 <= scale <= 10:
        raise ConfigError(f"time scale must be within 0.05..10, got {scale}")
    chosen = [c for c in spec.cases if not only or c.name in only]
    if not chosen:
        raise ConfigError(f"{path}: no case named {list(only or [])}")
    width, height = (int(v) for v in spec.camera.split("x"))
    ladder = [rung.bitrate for rung in ladder_for(width, height, 30)]
    runs = []
    for case in chosen:
        scaled = case.scaled(scale)
        for server in servers or spec.servers:
            print(f"rmcat {case.name} {server}: {scaled.duration_s:g} s ...", flush=True)
            started = time.monotonic()
            try:
                raw = run_case(scaled, server, camera=spec.camera, queue_ms=spec.queue_ms,
                               settings=spec.settings)  # fmt: skip
                metrics = evaluate(scaled, server, raw, ladder)
                error = None
            except (ConfigError, OSError, ValueError) as exc:
                raw, metrics, error = {}, {}, str(exc)
            runs.append({"case": case.name, "title": case.title, "note": case.note,
                         "server": server, "time_scale": scale, "queue_ms": spec.queue_ms,
                         "camera": spec.camera, "error": error, "metrics": metrics,
                         "raw": raw, "wall_s": round(time.monotonic() - started, 1)})  # fmt: skip
            verdict = metrics.get("verdict", {})
            outcome = "met" if verdict.get("met") else "missed: " + "; ".join(
                verdict.get("misses", []))
            print(f"rmcat {case.name} {server}: {error or outcome}", flush=True)
    results = {"source": str(path), "time_scale": scale, "runs": runs}
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rmcat.json").write_text(json.dumps(results, indent=1))
    if report:
        from streamlab.experiments.rmcat_report import write_report

        write_report(results, folder)
    return results


def run_from_args(args: Any) -> int:
    """``streamlab bench --scenarios rmcat.toml``: run, print the table, 1 if all failed."""
    from streamlab.experiments.bottleneck import available

    reason = available()
    if reason is not None:
        raise ConfigError(f"RMCAT cases need the kernel bottleneck: {reason}")
    scale = getattr(args, "time_scale", None)
    results = run_file(args.scenarios, args.out, only=args.only, time_scale=scale,
                       report=not args.no_report)  # fmt: skip
    runs = results["runs"]
    print(f"results: {Path(args.out) / 'rmcat.json'} ({len(runs)} runs)")
    if not args.no_report:
        print((Path(args.out) / "rmcat.md").read_text())
    failed = [r for r in runs if r["error"]]
    return 1 if failed and len(failed) == len(runs) else 0
