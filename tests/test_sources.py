"""Synthetic and file sources, open_source and URL redaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import streamlab as sl
from streamlab import framecode
from streamlab.sources.file import FileSource
from streamlab.sources.open import open_source
from streamlab.sources.synthetic import SyntheticScene, SyntheticSource
from streamlab.sources.url import default_name, redact
from streamlab.testing import source_threads

CLIP = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "car-detection.mp4"


async def read_all(source: sl.Source, policy: str = "block:8") -> list[sl.Frame]:
    subscription = source.subscribe(policy)
    source.start()
    frames = [frame async for frame in subscription]
    await asyncio.get_running_loop().run_in_executor(None, source.stop)
    return frames


def test_scene_is_deterministic_and_boxes_stay_inside() -> None:
    a, b = SyntheticScene(640, 480, objects=5, seed=7), SyntheticScene(640, 480, objects=5, seed=7)
    _, _, _, code_h = framecode.region(640)
    for seq in (0, 1, 50, 999):
        image_a, boxes_a = a.render(seq)
        image_b, boxes_b = b.render(seq)
        assert (image_a == image_b).all()
        assert boxes_a == boxes_b
        for box in boxes_a:
            assert box.x >= 0 and box.x + box.w <= 640
            assert code_h <= box.y and box.y + box.h <= 480
    assert a.boxes(0) != a.boxes(10)


async def test_synthetic_source_counts_codes_and_ends() -> None:
    source = SyntheticSource("synthetic://?size=320x240&fps=30&frames=12&realtime=0")
    frames = await read_all(source)
    assert [f.seq for f in frames] == list(range(12))
    assert [framecode.read(f.image).seq for f in frames] == list(range(12))
    assert source.state.state is sl.StreamState.STOPPED
    assert source.stats.frames == 12 and source.stats.codec == "raw"
    assert not source_threads()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("synthetic://?size=10x10", "size"),
        ("synthetic://?fps=0", "fps"),
        ("synthetic://?fps=abc", "fps"),
        ("synthetic://?objects=99", "objects"),
        ("synthetic://?colour=red", "colour"),
    ],
)
def test_synthetic_parameters_are_validated(url: str, message: str) -> None:
    with pytest.raises(sl.ConfigError, match=message):
        SyntheticSource(url)


@pytest.mark.skipif(not CLIP.exists(), reason="shared dataset clip not present")
async def test_file_source_reads_every_frame_of_a_real_clip() -> None:
    source = FileSource(CLIP, realtime=False)
    frames = await read_all(source, "block:16")
    assert len(frames) == 377  # SOURCES.md: 377 frames, audio track ignored
    assert (frames[0].width, frames[0].height) == (768, 432)
    assert source.stats.codec == "h264"
    assert source.stats.nominal_fps == pytest.approx(12.5)
    assert [f.seq for f in frames] == list(range(377))
    assert source.state.state is sl.StreamState.STOPPED


@pytest.mark.skipif(not CLIP.exists(), reason="shared dataset clip not present")
async def test_file_source_loops() -> None:
    source = FileSource(CLIP, realtime=False, loop=True)
    subscription = source.subscribe("block:8")
    source.start()
    seqs = [(await subscription.get()).seq for _ in range(400)]
    await asyncio.get_running_loop().run_in_executor(None, source.stop)
    assert seqs == list(range(400))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(sl.SourceError, match="not found"):
        open_source(str(tmp_path / "nope.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(sl.SourceError, match="cannot read"):
        open_source(str(bad))


@pytest.mark.parametrize("url", ["ftp://host/x", "http://127.0.0.1/stream", "", "   "])
def test_unknown_schemes_are_source_errors(url: str) -> None:
    with pytest.raises(sl.SourceError):
        open_source(url)


def test_open_source_dispatches_by_scheme(tmp_path: Path) -> None:
    assert isinstance(open_source("synthetic://?size=320x240"), SyntheticSource)
    from streamlab.sources.rtsp import RtspSource

    assert isinstance(open_source("rtsp://127.0.0.1:8554/cam"), RtspSource)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://admin:pw@10.0.0.5:554/live", "rtsp://***@10.0.0.5:554/live"),
        ("rtsp://admin@cam/live", "rtsp://***@cam/live"),
        ("rtsp://cam:554/live", "rtsp://cam:554/live"),
        ("synthetic://?size=640x480", "synthetic://?size=640x480"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_default_names() -> None:
    assert default_name("rtsp://u:p@cam:554/live/main") == "live-main"
    assert default_name("synthetic://?fps=5") == "synthetic"
    assert default_name("/data/clips/door.mp4") == "door"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_half_open_allows_one_trial_and_reopens_on_its_failure() -> None:
    from streamlab.sources.backoff import BreakerState, CircuitBreaker

    clock = FakeClock()
    breaker = CircuitBreaker(3, 10.0, clock=clock)
    assert [breaker.record_failure() for _ in range(3)] == [False, False, True]
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.t = 9.9
    assert not breaker.allow()
    clock.t = 10.0
    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN  # one trial
    assert breaker.record_failure() is True  # the trial failed: open again at once
    assert breaker.state is BreakerState.OPEN and breaker.times_opened == 2
    assert breaker.remaining_s() == 10.0
    clock.t = 20.0
    assert breaker.allow()
    breaker.record_success()  # the trial succeeded: closed, counting from zero
    assert breaker.state is BreakerState.CLOSED
    assert [breaker.record_failure() for _ in range(3)] == [False, False, True]


def test_backoff_grows_to_its_cap_and_resets() -> None:
    import random

    from streamlab.sources.backoff import Backoff

    backoff = Backoff(0.1, 1.0, rng=random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(min(1.0, 0.1 * 2**backoff.attempt))
        assert 0 <= backoff.next_delay() <= ceilings[-1]
    assert ceilings[-1] == 1.0 and backoff.attempt == 8
    backoff.reset()
    assert backoff.attempt == 0


def test_auto_transport_switches_once_per_failure() -> None:
    from streamlab.sources.transport import TransportChooser

    auto = TransportChooser("auto")
    assert auto.current == "tcp"
    assert auto.after_failure(refused=True, silent_udp=False)  # 461 on TCP -> UDP now
    assert auto.current == "udp"
    assert not auto.after_failure(refused=True, silent_udp=False)  # both refused: back off
    assert auto.after_failure(refused=True, silent_udp=False)  # then try the other again
    assert auto.current == "tcp"
    assert not auto.after_failure(refused=False, silent_udp=True)  # TCP silence: no switch
    udp = TransportChooser("auto")
    udp.after_failure(refused=True, silent_udp=False)
    udp.connected()
    assert udp.after_failure(refused=False, silent_udp=True)  # UDP went silent -> TCP
    assert udp.current == "tcp" and udp.switches == 2
    fixed = TransportChooser("tcp")
    assert not fixed.after_failure(refused=True, silent_udp=False)
    assert fixed.current == "tcp"


def test_a_refusal_is_read_from_the_reason_not_the_url() -> None:
    import errno

    import av

    from streamlab.sources.transport import is_refusal

    url = "rtsp://127.0.0.1:34461/cam"  # "461" in the port once read as a refusal
    assert not is_refusal(av.error.InvalidDataError(1094995529, "Invalid data found", url))
    assert not is_refusal(av.error.ConnectionRefusedError(errno.ECONNREFUSED, "refused", url))
    assert is_refusal(av.error.FFmpegError(errno.EPROTONOSUPPORT, "Protocol not supported", url))
    assert is_refusal(OSError("RTSP/1.0 461 Unsupported Transport"))
