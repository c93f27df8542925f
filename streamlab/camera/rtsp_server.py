"""streamlab test camera: a GStreamer RTSP server on 127.0.0.1.

Run by Debian's /usr/bin/python3 (the only Python with ``gi``); started and stopped by
``streamlab.camera.launcher.TestCamera``. Modes:

- ``raw``: BGR frames of WIDTHxHEIGHT arrive on stdin; a reader thread pushes each one into
  every client's live pipeline (appsrc → x264enc zerolatency → rtph264pay; one per client so
  each starts on a keyframe) and drops it when nobody watches, so the feeder never blocks.
- ``file``: the file's own H.264 (MP4) is sent as is, like a real camera; other files are
  decoded and encoded.
- ``broken``: a pipeline that cannot be built (a DESCRIBE gets 503), for tests.

Camera conditions (encoded modes): ``--codec h264|h265`` (x264enc + rtph264pay, or x265enc
+ rtph265pay), ``--gop`` frames between keyframes, ``--profile``, ``--slices`` per frame,
``--bframes`` (the last three H.264 only), and ``--transport udp|tcp`` to accept only that
lower transport (a SETUP asking for the other one gets ``461 Unsupported Transport``).
``--audio pcma|pcmu|aac`` adds a second stream (``pay1``): ``audiotestsrc`` (``--wave``:
``sine`` tone or ``ticks`` clicks) encoded as PCMA or PCMU (8 kHz mono) or AAC (48 kHz
mono); ``none`` (the default) sends video only. ``--wave sync`` (raw mode) marks a frame a
second and clicks at its instant, for measuring A/V sync (``sync_marks.py``).

Prints ``READY rtsp://127.0.0.1:PORT/PATH`` once listening; stops on SIGTERM/SIGINT.
"""

import argparse
import os
import signal
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402
from sync_marks import ClickTrack, Marker  # noqa: E402

LOWER = {
    "udp": GstRtsp.RTSPLowerTrans.UDP | GstRtsp.RTSPLowerTrans.UDP_MCAST,
    "tcp": GstRtsp.RTSPLowerTrans.TCP,
}


def encoder_h265(args):
    """x265 as a low-delay H.265 camera: GOP length, no B-frames, one thread; parameter
    sets before every keyframe, in the stream and in the payloader."""
    gop = args.gop or args.fps
    options = "repeat-headers=1:pools=1:frame-threads=1:bframes=0"
    return (
        f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} "
        f'bitrate={args.bitrate} option-string="{options}" '
        "! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=-1"
    )


def encoder(args):
    """x264 with the camera's conditions: GOP length, profile, slices per frame, B-frames
    (x265 for ``--codec h265``)."""
    if args.codec == "h265":
        return encoder_h265(args)
    gop = args.gop or args.fps
    options = [f"slices={args.slices}"] if args.slices > 1 else []
    # x264 signals the lowest profile its tools need: ask for the tools of the profile
    options += {"main": ["cabac=1"], "high": ["cabac=1", "8x8dct=1"]}.get(args.profile, [])
    # zerolatency forbids B-frames (no lookahead); a B-frame camera gets no tune
    tune = "tune=zerolatency " if args.bframes == 0 else ""
    bframes = f"bframes={args.bframes} b-adapt=false " if args.bframes else ""
    option_string = f'option-string="{":".join(options)}" ' if options else ""
    return (
        # threads=1: one encoder thread; slices come only from option-string slices=N
        f"x264enc {tune}speed-preset=ultrafast key-int-max={gop} bitrate={args.bitrate} "
        f"threads=1 byte-stream=true {bframes}{option_string}"
        f"! video/x-h264,profile={args.profile} ! rtph264pay name=pay0 pt=96 config-interval=-1"
    )


AUDIO = {
    "pcma": "audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8",
    "pcmu": "audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0",
    "aac": "audio/x-raw,rate=48000,channels=1 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97",
}


AUDIO_RATES = {"pcma": 8000, "pcmu": 8000, "aac": 48000}


def audio_branch(args):
    """The camera's microphone: a live test tone (or clicks), encoded as ``--audio``;
    ``--wave sync``: samples made by ``ClickTrack`` on the video's clock."""
    if args.audio == "none":
        return ""
    if args.wave == "sync":
        rate = AUDIO_RATES[args.audio]
        caps = f"audio/x-raw,format=S16LE,layout=interleaved,rate={rate},channels=1"
        return (
            f" appsrc name=mic is-live=true format=time do-timestamp=false caps={caps} "
            f"! audioconvert ! audioresample ! {AUDIO[args.audio]}"
        )
    return (
        f" audiotestsrc name=mic is-live=true wave={args.wave} volume=0.3 samplesperbuffer=160 "
        f"! audioconvert ! audioresample ! {AUDIO[args.audio]}"
    )


def live_microphone(factory, media):
    """The test tone answers "not seekable", like the live video: else the server tries
    to seek the media at PLAY (clients send a Range), the video's appsrc refuses, and PLAY
    fails."""
    mic = media.get_element().get_by_name("mic")
    if mic is None:
        return

    def not_seekable(pad, info):
        query = info.get_query()
        if query.type != Gst.QueryType.SEEKING:
            return Gst.PadProbeReturn.OK
        query.set_seeking(Gst.Format.TIME, False, 0, -1)
        return Gst.PadProbeReturn.HANDLED

    mic.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, not_seekable)


def launch_line(args):
    line = video_line(args)
    if args.mode == "broken" or not audio_branch(args):
        return line
    return line[: line.rindex(")")].rstrip() + audio_branch(args) + " )"


def video_line(args):
    if args.mode == "raw":
        size = f"width={args.width},height={args.height}"
        caps = f"video/x-raw,format=BGR,{size},framerate={args.fps}/1"
        stamp = "false" if args.wave == "sync" else "true"  # sync: the feeder stamps frames
        return (
            f"( appsrc name=src is-live=true do-timestamp={stamp} format=time caps={caps} "
            "max-buffers=4 leaky-type=downstream "
            "! queue max-size-buffers=2 leaky=downstream ! videoconvert ! video/x-raw,format=I420 "
            f"! {encoder(args)} )"
        )
    if args.mode == "file":
        location = args.file.replace('"', '\\"')
        copy = not args.transcode and args.codec == "h264"  # an MP4's own H.264, as is
        if args.file.lower().endswith((".mp4", ".mov", ".m4v")) and copy:
            return (
                f'( filesrc location="{location}" ! qtdemux ! h264parse config-interval=-1 '
                "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
            )
        return (
            f'( filesrc location="{location}" ! decodebin ! videoconvert ! videoscale '
            f"! video/x-raw,format=I420 ! {encoder(args)} )"
        )
    # builds, then fails to preroll (no such file): the server answers DESCRIBE with 503
    return (
        "( filesrc location=/nonexistent/streamlab.mp4 ! qtdemux ! h264parse "
        "! rtph264pay name=pay0 pt=96 )"
    )


def unsync_sinks(pipeline, bin_, element):
    """Keep the server's sinks off the clock (``sync=false``) in raw mode.

    The server adds its TCP sink at PLAY, after the media prerolled its first frame; now and
    then (about 1 session in 25) that sink then waits on the clock for that frame for good,
    and the session sends no RTP at all, only RTCP. The feeder already paces frames in real
    time, so the sink has nothing to wait for. The server sets ``sync`` after adding its
    sink, so the value is held, not only set once.
    """
    factory = element.get_factory()
    if factory is None or factory.get_name() != "appsink":
        return
    element.set_property("sync", False)
    element.connect(
        "notify::sync",
        lambda sink, _: sink.get_property("sync") and sink.set_property("sync", False),
    )


class RawFeeder:
    """Reads frames from stdin; pushes each into every live appsrc (one per client).

    ``sync`` (``--wave sync``): each client's frames are stamped with its pipeline's running
    time and marked by its ``Marker``, and its microphone is fed by a ``ClickTrack``."""

    def __init__(self, frame_bytes, size=None, audio_rate=0, sync=False):
        self.frame_bytes = frame_bytes
        self.size = size
        self.audio_rate = audio_rate
        self.sync = sync
        self.appsrcs = []
        self.markers = {}
        self.lock = threading.Lock()

    def attach(self, factory, media):
        appsrc = media.get_element().get_by_name("src")
        media.get_element().get_parent().connect("deep-element-added", unsync_sinks)
        clicks = None
        if self.sync:
            self.markers[appsrc] = Marker(*self.size)
            mic = media.get_element().get_by_name("mic")
            if mic is not None:
                clicks = ClickTrack(mic, self.audio_rate, self.markers[appsrc], Gst)
                clicks.start()
        media.connect("unprepared", lambda *_: self.detach(appsrc, clicks))
        with self.lock:
            self.appsrcs = [*self.appsrcs, appsrc]

    def detach(self, appsrc, clicks=None):
        if clicks is not None:
            clicks.stop()
        with self.lock:
            self.appsrcs = [a for a in self.appsrcs if a is not appsrc]
            self.markers.pop(appsrc, None)

    def _buffer(self, appsrc, data):
        if not self.sync:
            return Gst.Buffer.new_wrapped(data)
        marker = self.markers.get(appsrc)
        running = appsrc.get_current_running_time()
        if marker is None or running is None or running == Gst.CLOCK_TIME_NONE:
            return None  # not playing yet: a mark needs the frame's own time
        buffer = Gst.Buffer.new_wrapped(marker.frame(data, running))
        buffer.pts = buffer.dts = running
        return buffer

    def run(self, loop):
        stream = sys.stdin.buffer
        while True:
            data = stream.read(self.frame_bytes)
            if not data or len(data) < self.frame_bytes:
                break
            for appsrc in self.appsrcs:
                buffer = self._buffer(appsrc, data)
                if buffer is not None:
                    appsrc.emit("push-buffer", buffer)
        GLib.idle_add(loop.quit)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8554)
    parser.add_argument("--path", default="cam")
    parser.add_argument("--mode", choices=["raw", "file", "broken"], default="raw")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=2000, help="kbit/s")
    parser.add_argument("--file", default="")
    parser.add_argument("--transcode", action="store_true")
    parser.add_argument("--codec", choices=["h264", "h265"], default="h264")
    parser.add_argument("--gop", type=int, default=0, help="frames between keyframes (0: fps)")
    parser.add_argument(
        "--profile",
        default="constrained-baseline",
        choices=["constrained-baseline", "baseline", "main", "high"],
    )
    parser.add_argument("--slices", type=int, default=1, help="slices per frame")
    parser.add_argument("--bframes", type=int, default=0, help="B-frames between references")
    parser.add_argument(
        "--transport",
        choices=["any", "udp", "tcp"],
        default="any",
        help="lower transports the server accepts (others get 461)",
    )
    parser.add_argument("--audio", choices=["none", *AUDIO], default="none")
    parser.add_argument("--wave", choices=["sine", "ticks", "sync"], default="sine")
    args = parser.parse_args()

    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args))
    factory.set_shared(False)  # one encoder per client: each starts on a keyframe
    factory.set_latency(0)
    if args.transport in LOWER:
        factory.set_protocols(LOWER[args.transport])
    feeder = None
    if args.mode == "raw":
        feeder = RawFeeder(
            args.width * args.height * 3,
            (args.width, args.height),
            AUDIO_RATES.get(args.audio, 0),
            sync=args.wave == "sync",
        )
        factory.connect("media-configure", feeder.attach)
    if args.audio != "none":
        factory.connect("media-configure", live_microphone)
    server.get_mount_points().add_factory("/" + args.path.strip("/"), factory)
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on 127.0.0.1:{args.port}", flush=True)
        return 1
    port = server.get_bound_port()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)
    if feeder is not None:
        threading.Thread(target=feeder.run, args=(loop,), daemon=True).start()
    print(f"READY rtsp://127.0.0.1:{port}/{args.path.strip('/')}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
