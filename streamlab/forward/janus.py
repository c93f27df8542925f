"""One stream forwarded to one Janus Streaming mountpoint: its lifecycle.

The forward is a consumer of one of the stream's shared encoders (its codec and rung), or of
the camera's own units (``codec=passthrough``), like a viewer is: ``routing`` starts that
encoder while the mountpoint is up and hands the forward its packets. Janus's keyframe
requests (its viewers' PLIs, and one each time a viewer starts) go to the encoder's
``KeyframeLimiter``, the same path a direct viewer's PLI takes.

States: ``connecting`` → ``forwarding`` ⇄ ``retrying`` (Janus unreachable, restarted or the
mountpoint gone: recreated with backoff) → ``stopped``. The mountpoint is created (or an
existing one of ours with the same id reused), checked every ``CHECK_S`` (which also keeps
the Janus session alive) and destroyed when the forward stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import av
import structlog

from streamlab.delivery.encoders import EncoderKey
from streamlab.delivery.passthrough import PASSTHROUGH
from streamlab.forward.janus_api import NO_SUCH_MOUNTPOINT, JanusError, JanusSession
from streamlab.forward.rtp import RtpOut
from streamlab.forward.spec import ForwardSpec
from streamlab.frame import Frame
from streamlab.strategies.quality import Level

if TYPE_CHECKING:
    from streamlab.delivery.stream import StreamDelivery

log = structlog.get_logger("streamlab.forward")

REPORT_S = 1.0  # RTCP sender reports, and the Janus check every CHECK_REPORTS of them
CHECK_REPORTS = 2
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0
STOP_TIMEOUT_S = 3.0
RESEND_FRAMES = 15
PAYLOAD_TYPE = 96
H264_FMTP = "profile-level-id=42e01f;packetization-mode=1"


class JanusForward:
    """Sends stream ``delivery`` to mountpoint ``mountpoint_id`` of the Janus in ``spec``."""

    def __init__(self, spec: ForwardSpec, delivery: StreamDelivery, mountpoint_id: int) -> None:
        self.spec = spec
        self.delivery = delivery
        self.mountpoint_id = mountpoint_id
        self.state = "idle"
        self.error: str | None = None
        self.janus = JanusSession(spec.url)
        self.out = RtpOut(spec.codec, payload_type=PAYLOAD_TYPE,
                          on_keyframe_request=self.request_keyframe)  # fmt: skip
        self.restarts = 0
        self.frames_missed = 0
        self._task: asyncio.Task[None] | None = None
        self._last_result = -1
        self._asked = False
        self._reported_error: str | None = None

    # -- what it consumes (read by ``routing.sync_encoders`` each frame) -------------------

    @property
    def active(self) -> bool:
        return self.state == "forwarding" and self.out.ready

    @property
    def rung_index(self) -> int | None:
        """The ladder index of the rung sent (None until the ladder is known, or no match)."""
        ladder = self.delivery.ladder
        if ladder is None:
            return None
        if self.spec.rung.isdigit():
            return min(int(self.spec.rung), len(ladder) - 1)
        names = [level.name for level in ladder]
        return names.index(self.spec.rung) if self.spec.rung in names else None

    @property
    def key(self) -> EncoderKey | None:
        """The encoder it needs now (None: nothing while the mountpoint is not up)."""
        index = self.rung_index
        if not self.active or index is None or self.delivery.ladder is None:
            return None
        name = self.delivery.ladder[index].name
        if self.spec.codec == "passthrough":
            return PASSTHROUGH if index == 0 else EncoderKey("h264", name)
        return EncoderKey(self.spec.codec, name)

    @property
    def level(self) -> Level | None:
        index, ladder = self.rung_index, self.delivery.ladder
        return None if index is None or ladder is None else ladder[index]

    @property
    def needs_pixels(self) -> bool:
        return self.spec.codec != "passthrough" or (self.rung_index or 0) > 0

    def push(self, key: EncoderKey, packets: list[av.Packet], keyframe: bool) -> None:
        """One encoded frame of encoder ``key`` (ignored unless it is this forward's)."""
        if key != self.key:
            return
        if self.out.send_frame(packets, keyframe):
            self._asked = False
            return
        self.frames_missed += 1
        if self.out.needs_keyframe and not self._asked:
            self._asked = True  # once per wait: the limiter keeps it pending
            self.request_keyframe()

    def request_keyframe(self) -> None:
        """Janus (or a new mountpoint) needs a keyframe: through the encoder's limiter."""
        key = self.key
        if key is not None:
            self.delivery._request_keyframe(key)

    def on_frame(self, frame: Frame, ticks: int) -> None:
        """The frame's latest analysis result to the data port, as the data channel has it
        but without RTP timestamps: Janus rewrites each viewer's timestamps (they start
        where that viewer joined), so a player draws the latest boxes, not frame-exact ones."""
        result = frame.analysis
        if result is None or not self.active:
            return
        if result.seq == self._last_result and frame.seq % RESEND_FRAMES:
            return
        self._last_result = result.seq
        burned = self.delivery.overlay and self.key != PASSTHROUGH
        message = {"type": "analysis", "seq": frame.seq,
                   "captured_ms": int(frame.captured_at * 1000),
                   "lag_frames": frame.seq - result.seq, "burned": burned,
                   "analysis": result.to_dict()}  # fmt: skip
        self.out.send_data(json.dumps(message))

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Register with the stream and start talking to Janus (on the running loop)."""
        if self._task is not None:
            return
        if self not in self.delivery.forwards:
            self.delivery.forwards.append(self)
        self._set_state("connecting")
        name = f"forward:{self.delivery.stream}:{self.mountpoint_id}"
        self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    async def stop(self) -> None:
        """Stop sending, remove the mountpoint (best effort, bounded), close everything."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(ValueError):
            self.delivery.forwards.remove(self)
        self.out.close()
        if self.janus.is_open:
            try:
                await asyncio.wait_for(self._destroy(), STOP_TIMEOUT_S)
                log.info("forward_removed", stream=self.delivery.stream,
                         mountpoint=self.mountpoint_id)  # fmt: skip
            except (JanusError, TimeoutError) as exc:
                log.warning("forward_remove_failed", stream=self.delivery.stream,
                            mountpoint=self.mountpoint_id, error=str(exc) or "timeout")  # fmt: skip
        await self.janus.close()
        self._set_state("stopped")

    async def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        await self._open_socket()
        while True:
            try:
                await self._connect()
                backoff = BACKOFF_MIN_S
                await self._keep()
            except (JanusError, OSError) as exc:
                self._failed(str(exc))
            except (KeyError, TypeError, ValueError) as exc:  # a reply not shaped as expected
                self._failed(f"unexpected answer from Janus: {exc!r}")
            self.out.clear_ports()  # send nothing until the mountpoint is back
            await self.janus.close(destroy=False)
            await asyncio.sleep(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _open_socket(self) -> None:
        while True:
            try:
                await self.out.open(self.spec.host)
                return
            except OSError as exc:
                self._failed(f"cannot resolve {self.spec.host}: {exc.strerror or exc}")
                await asyncio.sleep(BACKOFF_MAX_S)

    async def _connect(self) -> None:
        await self.janus.open()
        video, rtcp, data = await self._mountpoint()
        self.out.set_ports(video, rtcp, data)
        if self.state == "retrying":
            self.restarts += 1
        self._set_state("forwarding")
        self._reported_error = self.error = None
        log.info("forward_up", stream=self.delivery.stream, target=str(self.spec),
                 mountpoint=self.mountpoint_id, video_port=video, rtcp_port=rtcp,
                 data_port=data)  # fmt: skip
        self.out.send_report()  # Janus latches its PLI address onto this
        self._asked = False
        self.request_keyframe()

    async def _keep(self) -> None:
        """Sender reports every second; every few, ask Janus whether the mountpoint is there."""
        reports = 0
        while True:
            await asyncio.sleep(REPORT_S)
            self.out.send_report()
            reports += 1
            if reports % CHECK_REPORTS == 0:
                await self.janus.request(self._secret({"request": "info",
                                                       "id": self.mountpoint_id}))  # fmt: skip

    async def _mountpoint(self) -> Ports:
        """Ports of our mountpoint: an existing one of ours reused when it fits, else made."""
        try:
            info = await self.janus.request(self._secret({"request": "info",
                                                          "id": self.mountpoint_id}))  # fmt: skip
        except JanusError as exc:
            if exc.code != NO_SUCH_MOUNTPOINT:
                raise
        else:
            ports = _ports(info.get("info", {}).get("media", []), self._codec_name())
            if ports is not None:
                return ports
            await self._destroy()  # ours, but made for another codec or without RTCP
        body: dict[str, Any] = {
            "request": "create", "type": "rtp", "id": self.mountpoint_id,
            "description": f"streamlab {self.delivery.stream}", "permanent": False,
            "is_private": False, "datatype": "text", "buffermsg": True,
            "media": [self._video_media(), {"type": "data", "mid": "d", "label": "analysis",
                                            "port": 0}],
        }  # fmt: skip
        if self.spec.admin_key:
            body["admin_key"] = self.spec.admin_key
        created = await self.janus.request(self._secret(body))
        ports = _ports(created.get("stream", {}).get("ports", []), None)
        if ports is None:
            raise JanusError(f"Janus made mountpoint {self.mountpoint_id} without ports")
        return ports

    def _video_media(self) -> dict[str, Any]:
        media: dict[str, Any] = {"type": "video", "mid": "v", "label": "video", "port": 0,
                                 "rtcpport": 0, "pt": PAYLOAD_TYPE, "codec": self._codec_name(),
                                 "bufferkf": True}  # fmt: skip
        if self._codec_name() == "h264":
            media["fmtp"] = H264_FMTP
        return media

    def _codec_name(self) -> str:
        return "vp8" if self.spec.codec == "vp8" else "h264"

    async def _destroy(self) -> None:
        await self.janus.request(self._secret({"request": "destroy", "id": self.mountpoint_id,
                                               "permanent": False}))  # fmt: skip

    def _secret(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "secret": self.spec.secret}

    def _failed(self, error: str) -> None:
        """One log line per distinct failure (retries of the same failure stay quiet)."""
        self.error = error
        if error != self._reported_error:
            log.warning("forward_retrying", stream=self.delivery.stream, target=str(self.spec),
                        mountpoint=self.mountpoint_id, error=error)  # fmt: skip
            self._reported_error = error
        self._set_state("retrying")

    def _set_state(self, state: str) -> None:
        self.state = state

    # -- what it shows ----------------------------------------------------------------------

    def _ports(self) -> dict[str, int | None]:
        out = self.out
        return {"video": out.video_port, "rtcp": out.rtcp_port, "data": out.data_port}

    def info(self) -> dict[str, Any]:
        """What ``/api/streams`` shows of this forward."""
        key = self.key
        return {
            "target": str(self.spec),
            "mountpoint": self.mountpoint_id,
            "codec": self.spec.codec,
            "rung": self.level.name if self.level else self.spec.rung,
            "encoder": str(key) if key else None,
            "state": self.state,
            "error": self.error,
            "ports": self._ports(),
            "packets": self.out.packets,
            "bytes": self.out.bytes,
            "frames": self.out.frames,
            "frames_missed": self.frames_missed,
            "sender_reports": self.out.reports,
            "plis": self.out.keyframe_requests,
            "data_messages": self.out.data_messages,
            "restarts": self.restarts,
        }


Ports = tuple[int, int | None, int | None]


def _ports(media: list[dict[str, Any]], codec: str | None) -> Ports | None:
    """(video, rtcp, data) ports from a mountpoint's media list; None when it does not fit
    (no video port or RTCP port, or another ``codec``)."""
    video = next((m for m in media if m.get("type") == "video"), None)
    data = next((m for m in media if m.get("type") == "data"), None)
    if video is None or not video.get("port"):
        return None
    rtcp = video.get("rtcp_port", video.get("rtcpport"))
    if not rtcp or (codec is not None and str(video.get("codec", "")).lower() != codec):
        return None
    return int(video["port"]), int(rtcp), int(data["port"]) if data and data.get("port") else None
