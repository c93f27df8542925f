"""``TestCamera``: start, restart and stop the GStreamer RTSP test camera as a subprocess."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from streamlab import framecode
from streamlab.errors import ConfigError, SourceError

log = structlog.get_logger("streamlab.camera")

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
PROFILES = ("constrained-baseline", "baseline", "main", "high")
CODECS = ("h264", "h265")
AUDIO_CODECS = ("none", "pcma", "pcmu", "aac")
WAVES = ("sine", "ticks", "sync")


@functools.cache
def gst_rtsp_available() -> bool:
    """Whether Debian's python3 can import the GStreamer RTSP server bindings."""
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import GstRtspServer"
    )
    done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30)
    return done.returncode == 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestCamera:
    """A real RTSP camera on 127.0.0.1 for tests, benchmarks and notebooks.

    ``source`` is ``synthetic://...`` (frames rendered here, with the frame code, and sent
    to the server raw), a video file (its own H.264 is served as is), or ``broken`` (a
    pipeline that fails, so DESCRIBE answers 503). Use as a context manager, or
    ``start()`` / ``stop()``; ``restart()`` comes back on the same port.

    Conditions of a real camera: ``gop`` (frames between keyframes, 0 = one per second),
    ``profile`` (constrained-baseline, baseline, main, high), ``slices`` per frame,
    ``bframes`` (main/high only) and ``transport`` (``udp`` or ``tcp`` only: the other one
    is refused with 461). ``codec="h265"`` makes an H.265 camera (x265, Main profile, no
    B-frames; ``profile``, ``slices`` and ``bframes`` are H.264's and must stay default).
    ``freeze()``/``thaw()`` stop and resume the server (SIGSTOP/CONT).

    ``audio`` (``pcma``, ``pcmu`` or ``aac``) adds a microphone: a live test tone
    (``wave="sine"``) or clicks (``wave="ticks"``) as a second RTSP stream; ``"none"`` (the
    default) is a video-only camera. ``wave="sync"`` (synthetic source) marks one frame a
    second with a white square in the bottom-right corner and clicks at that frame's own
    timestamp, so a viewer can measure the A/V offset (``av_sync_ms``).
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        *,
        port: int = 0,
        path: str = "cam",
        size: tuple[int, int] = (640, 480),
        fps: int = 30,
        source: str = "synthetic://",
        bitrate_kbps: int = 2000,
        start_timeout_s: float = 20.0,
        gop: int = 0,
        profile: str = "constrained-baseline",
        slices: int = 1,
        bframes: int = 0,
        transport: str = "any",
        codec: str = "h264",
        audio: str = "none",
        wave: str = "sine",
    ) -> None:
        if not 1 <= fps <= 60:
            raise ConfigError(f"camera fps must be between 1 and 60, got {fps}")
        if not 0 <= gop <= 3600:
            raise ConfigError(f"camera gop must be between 0 (= fps) and 3600 frames, got {gop}")
        if profile not in PROFILES:
            raise ConfigError(f"camera profile must be one of {PROFILES}, got {profile!r}")
        if not 1 <= slices <= 16:
            raise ConfigError(f"camera slices must be between 1 and 16, got {slices}")
        if not 0 <= bframes <= 4 or (bframes and profile in PROFILES[:2]):
            raise ConfigError("camera bframes must be 0..4, and 0 for a baseline profile")
        if transport not in ("any", "udp", "tcp"):
            raise ConfigError(f"camera transport must be any, udp or tcp, got {transport!r}")
        if codec not in CODECS:
            raise ConfigError(f"camera codec must be one of {CODECS}, got {codec!r}")
        if codec == "h265" and (profile != PROFILES[0] or slices != 1 or bframes):
            raise ConfigError("camera profile, slices and bframes apply to H.264 only")
        if audio not in AUDIO_CODECS:
            raise ConfigError(f"camera audio must be one of {AUDIO_CODECS}, got {audio!r}")
        if wave not in WAVES:
            raise ConfigError(f"camera wave must be one of {WAVES}, got {wave!r}")
        if wave == "sync" and (audio == "none" or not source.startswith("synthetic:")):
            raise ConfigError("camera wave sync needs audio and a synthetic:// source")
        self.audio, self.wave = audio, wave
        self.codec = codec
        self.gop, self.profile, self.slices = gop, profile, slices
        self.bframes, self.transport = bframes, transport
        self.port = port or free_port()
        self.path = path.strip("/") or "cam"
        self.size = size
        self.fps = fps
        self.source = source
        self.bitrate_kbps = bitrate_kbps
        self.start_timeout_s = start_timeout_s
        self.frames_sent = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._feeder: threading.Thread | None = None
        self._stop_feeding = threading.Event()
        self._stderr: deque[str] = deque(maxlen=50)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.path}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _command(self) -> list[str]:
        width, height = self.size
        command = [
            SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port), "--path", self.path,
            "--width", str(width), "--height", str(height), "--fps", str(self.fps),
            "--bitrate", str(self.bitrate_kbps), "--gop", str(self.gop), "--profile", self.profile,
            "--slices", str(self.slices), "--bframes", str(self.bframes),
            "--transport", self.transport, "--codec", self.codec,
        ]  # fmt: skip
        if self.audio != "none":
            command += ["--audio", self.audio, "--wave", self.wave]
        if self.source == "broken":
            return [*command, "--mode", "broken"]
        if self.source.startswith("synthetic:"):
            return [*command, "--mode", "raw"]
        file = Path(self.source.removeprefix("file://"))
        if not file.is_file():
            raise SourceError(f"camera source file not found: {file}")
        return [*command, "--mode", "file", "--file", str(file)]

    def start(self) -> TestCamera:
        """Start the server and wait for it to listen. Raises SourceError on failure."""
        if self.running:
            return self
        if not gst_rtsp_available():
            raise SourceError(
                "the test camera needs Debian's GStreamer RTSP server (run `make test` to install)"
            )
        command = self._command()
        raw = "--mode" in command and command[command.index("--mode") + 1] == "raw"
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if raw else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        ready = self._wait_ready()
        if not ready:
            detail = " | ".join(self._stderr) or "no output"
            self.stop()
            raise SourceError(f"test camera did not start on port {self.port}: {detail}")
        if raw:
            self._stop_feeding.clear()
            self._feeder = threading.Thread(target=self._feed, name="camera-feeder", daemon=True)
            self._feeder.start()
        log.info("camera_started", url=self.url, pid=self.pid, source=self.source)
        return self

    def _wait_ready(self) -> bool:
        process = self._process
        assert process is not None and process.stdout is not None
        result: list[str] = []
        reader = threading.Thread(
            target=lambda: result.append(process.stdout.readline().decode().strip()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(self.start_timeout_s)
        return bool(result) and result[0].startswith("READY")

    def _drain_stderr(self) -> None:
        process = self._process
        if process is None or process.stderr is None:
            return
        for line in process.stderr:
            self._stderr.append(line.decode(errors="replace").strip())

    def _feed(self) -> None:
        from streamlab.sources.synthetic import SyntheticParams, SyntheticScene

        process = self._process
        assert process is not None and process.stdin is not None
        width, height = self.size
        params = SyntheticParams.from_url(self.source if "?" in self.source else "synthetic://")
        scene = SyntheticScene(width, height, objects=params.objects, seed=params.seed)
        image = scene.background.copy()
        period = 1.0 / self.fps
        started = time.monotonic()
        seq = 0
        while not self._stop_feeding.is_set():
            scene.render(seq, out=image)
            framecode.burn(image, seq, time.time_ns() // 1_000_000)
            try:
                process.stdin.write(image.data)
                process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                return
            self.frames_sent += 1
            seq += 1
            delay = started + seq * period - time.monotonic()
            if delay > 0 and self._stop_feeding.wait(delay):
                return

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server by its own PID (SIGTERM, then SIGKILL). Idempotent."""
        self._stop_feeding.set()
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)  # a frozen server cannot handle SIGTERM
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        if self._feeder is not None:
            self._feeder.join(timeout)
            self._feeder = None
        log.info("camera_stopped", url=self.url)

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), like a camera losing power."""
        process = self._process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        self.stop()

    def freeze(self) -> None:
        """Freeze the server (SIGSTOP): sockets stay open, nothing is sent or answered."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Resume a frozen server (SIGCONT)."""
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGCONT)

    def restart(self) -> TestCamera:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> TestCamera:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"TestCamera({self.url!r}, source={self.source!r}, running={self.running})"


def parse_camera_url(url: str) -> tuple[int, str]:
    """``rtsp://127.0.0.1:8554/cam`` → ``(8554, "cam")``."""
    parts = urlsplit(url)
    return parts.port or 554, parts.path.strip("/")
