"""A private Janus for tests and benchmarks: Debian's ``janus`` with its own config folder.

``LocalJanus(folder, command=prefix)`` writes a configuration that loads only the HTTP
transport and the Streaming plugin (no sample mountpoints), with narrow RTP port ranges, and
starts ``janus -F folder`` (optionally inside a network namespace: ``command`` is a prefix
such as ``["ip", "netns", "exec", NS]``). ``stop()`` ends that process by its PID.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from streamlab.errors import ConfigError

LIBRARIES = Path("/usr/lib/x86_64-linux-gnu/janus")
STREAMING = "libjanus_streaming.so"
HTTP = "libjanus_http.so"
READY = "HTTP webserver started"


def available() -> str | None:
    """None when Debian's Janus (with the Streaming plugin and HTTP transport) is here."""
    if shutil.which("janus") is None:
        return "janus is not installed (apt-get install janus)"
    for kind, name in (("plugins", STREAMING), ("transports", HTTP)):
        if not (LIBRARIES / kind / name).exists():
            return f"janus has no {name} in {LIBRARIES / kind}"
    return None


class LocalJanus:
    """One Janus process with a config of its own; ``start()`` waits until HTTP listens."""

    def __init__(
        self,
        folder: str | Path,
        *,
        http_port: int = 8088,
        rtp_ports: tuple[int, int] = (20000, 20099),
        mountpoint_ports: tuple[int, int] = (20100, 20199),
        command: list[str] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.http_port = http_port
        self.rtp_ports = rtp_ports
        self.mountpoint_ports = mountpoint_ports
        self.prefix = list(command or [])
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.folder / "janus.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def write_config(self) -> None:
        folder = self.folder
        for kind, name in (("plugins", STREAMING), ("transports", HTTP)):
            (folder / kind).mkdir(parents=True, exist_ok=True)
            link = folder / kind / name
            if not link.exists():
                link.symlink_to(LIBRARIES / kind / name)
        for kind in ("events", "loggers"):
            (folder / kind).mkdir(parents=True, exist_ok=True)
        low, high = self.rtp_ports
        (folder / "janus.jcfg").write_text(
            "general: {\n"
            f'  configs_folder = "{folder}"\n  plugins_folder = "{folder}/plugins"\n'
            f'  transports_folder = "{folder}/transports"\n  events_folder = "{folder}/events"\n'
            f'  loggers_folder = "{folder}/loggers"\n  debug_level = 4\n'
            "  session_timeout = 60\n}\n"
            f'media: {{\n  rtp_port_range = "{low}-{high}"\n}}\n'
            'nat: {\n  nice_debug = false\n  ice_ignore_list = "vmnet"\n}\n'
            "plugins: {\n}\ntransports: {\n}\nevents: {\n  broadcast = false\n}\n"
        )
        (folder / "janus.transport.http.jcfg").write_text(
            'general: {\n  json = "compact"\n  base_path = "/janus"\n  http = true\n'
            f"  port = {self.http_port}\n  https = false\n}}\n"
            "admin: {\n  admin_http = false\n  admin_https = false\n}\n"
            "cors: {\n}\n"
        )
        low, high = self.mountpoint_ports
        (folder / "janus.plugin.streaming.jcfg").write_text(
            f'general: {{\n  rtp_port_range = "{low}-{high}"\n}}\n'
        )

    def start(self, within_s: float = 15.0) -> LocalJanus:
        """Write the config, start Janus, wait for its HTTP server (ConfigError if not)."""
        reason = available()
        if reason is not None:
            raise ConfigError(reason)
        self.write_config()
        self.log.write_text("")
        argv = [*self.prefix, "janus", "-F", str(self.folder), "-L", str(self.log), "-N", "-o"]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if READY in self.log.read_text(errors="replace"):
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
        self.stop()
        raise ConfigError(f"janus did not start: {' | '.join(tail) or 'no output'}")

    def stop(self) -> None:
        """End the Janus process (by its PID): SIGTERM, then SIGKILL after 5 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def __enter__(self) -> LocalJanus:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        self.stop()
