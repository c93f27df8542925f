"""What the camera's audio costs the server, per second of audio (CPU seconds, one thread).

- ``transcode``: streamlab's Opus path for an AAC camera (``delivery/opus.py``): decode AAC,
  resample to 48 kHz stereo 20 ms frames, libopus — once per stream, whatever the viewers.
- ``aiortc_encode``: the alternative, aiortc's own encoder path (the track yields decoded
  ``AudioFrame``s and each viewer's sender runs aiortc's ``OpusEncoder``): the AAC decode
  once, then one Opus encode per viewer.
- ``pack_opus`` / ``pack_pcma``: what a viewer costs on streamlab's packet path: an
  ``av.Packet`` made and aiortc's ``pack()`` (no codec at all); ``pack_pcma`` is the whole
  cost of PCMA passthrough.

    .venv/bin/python benchmarks/audio_cost.py --seconds 20
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction

import av
import numpy as np
from aiortc.codecs.g711 import PcmaEncoder
from aiortc.codecs.opus import OpusEncoder

from streamlab.delivery.audio import packet
from streamlab.delivery.clock import MediaClock
from streamlab.delivery.opus import OpusTranscoder
from streamlab.sources.audio import AudioFormat, AudioUnit


def tone(rate: int, seconds: float, samples: int) -> list[av.AudioFrame]:
    frames = []
    for start in range(0, int(rate * seconds), samples):
        t = (np.arange(start, start + samples) / rate).astype(np.float32)
        data = (np.sin(2 * np.pi * 440 * t) * 9000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        frames.append(frame)
    return frames


def encode(codec: str, rate: int, seconds: float) -> tuple[list[av.Packet], bytes | None]:
    context = av.CodecContext.create(codec, "w")
    context.sample_rate, context.layout = rate, "mono"  # type: ignore[attr-defined]
    context.format = "fltp" if codec == "aac" else "s16"  # type: ignore[attr-defined]
    context.time_base = Fraction(1, rate)
    resampler = av.AudioResampler(format=context.format, layout="mono", rate=rate,  # type: ignore[attr-defined]
                                  frame_size=1024 if codec == "aac" else 160)  # fmt: skip
    packets: list[av.Packet] = []
    for frame in tone(rate, seconds, 1024):
        for chunk in resampler.resample(frame):
            packets += context.encode(chunk)
    return packets, bytes(context.extradata) if context.extradata else None


class Sink:
    """Stands in for the stream: counts what the transcoder delivers."""

    def __init__(self) -> None:
        self.clock = MediaClock()


def cpu(work) -> float:  # type: ignore[no-untyped-def]
    started = time.thread_time()
    work()
    return time.thread_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    seconds = parser.parse_args().seconds

    aac, extradata = encode("aac", 48000, seconds)
    aac_format = AudioFormat("aac", 48000, 1, extradata)
    units = [AudioUnit(bytes(p), aac_format, p.pts, Fraction(1, 48000), 1) for p in aac]
    transcoder = OpusTranscoder(Sink(), loop=None)  # type: ignore[arg-type]
    transcoder._send = lambda data: None  # type: ignore[method-assign]
    transcode = cpu(lambda: [transcoder._transcode(u, i * 1024 / 48000)
                             for i, u in enumerate(units)])  # fmt: skip

    decoder = av.CodecContext.create("aac", "r")
    decoder.extradata = extradata
    frames: list[av.AudioFrame] = []

    def decode() -> None:
        for p in aac:
            frames.extend(decoder.decode(av.Packet(bytes(p))))  # type: ignore[attr-defined]

    decode_s = cpu(decode)
    s16 = av.AudioResampler(format="s16", layout="mono", rate=48000)
    pcm = [f for frame in frames for f in s16.resample(frame)]
    start = 0
    for f in pcm:  # aiortc's encoder needs timestamps
        f.pts, f.time_base, start = start, Fraction(1, 48000), start + f.samples
    aiortc_encoder = OpusEncoder()
    per_viewer_encode = cpu(lambda: [aiortc_encoder.encode(f) for f in pcm])

    opus_packets = [packet(b"\x00" * 120, i * 960, 48000) for i in range(int(seconds * 50))]
    opus_pack = OpusEncoder()
    pack_opus = cpu(lambda: [opus_pack.pack(packet(bytes(p), int(p.pts), 48000))
                             for p in opus_packets])  # fmt: skip
    pcma, _ = encode("pcm_alaw", 8000, seconds)
    pcma_pack = PcmaEncoder()
    pack_pcma = cpu(lambda: [pcma_pack.pack(packet(bytes(p), int(p.pts or 0), 8000))
                             for p in pcma])  # fmt: skip

    def share(value: float) -> str:
        return f"{100 * value / seconds:.2f} % of a core"

    print(f"audio: {seconds:g} s, AAC 48 kHz mono ({len(aac)} packets), PCMA {len(pcma)} packets")
    print(f"transcode (AAC → Opus, once per stream):  {share(transcode)}")
    print(f"aiortc encoder path: AAC decode once      {share(decode_s)}")
    print(f"                     + Opus per viewer    {share(per_viewer_encode)}")
    print(f"packet path per Opus viewer (pack only):  {share(pack_opus)}")
    print(f"PCMA passthrough per viewer (pack only):  {share(pack_pcma)}")


if __name__ == "__main__":
    main()
