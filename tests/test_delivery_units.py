"""Delivery building blocks: network specs and the emulated link, keyframe discipline,
the bandwidth estimate, the quality ladder and strategies, codec choice."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import streamlab as sl
from streamlab.clock import now
from streamlab.delivery.estimate import BandwidthEstimator, Report
from streamlab.delivery.keyframes import KeyframeLimiter
from streamlab.delivery.network import EmulatedLink, NetworkSpec
from streamlab.strategies.codec import choose_codec, codecs, offered_codecs
from streamlab.strategies.quality import Bandwidth, Load, index_of, ladder_for, quality

# -- network specs -------------------------------------------------------------------------


def test_network_spec_round_trip() -> None:
    spec = NetworkSpec.parse("rate=800k, delay=40ms,jitter=5ms,loss=1%,queue=100ms")
    assert spec == NetworkSpec(800_000, 0.04, 0.005, 0.01, 0.1)
    assert NetworkSpec.parse(str(spec)) == spec
    assert NetworkSpec.parse("rate=2M").rate_bps == 2_000_000
    assert NetworkSpec.parse("rate=1.5mbit,delay=0.1s").delay_s == pytest.approx(0.1)
    assert NetworkSpec.parse("").empty and NetworkSpec.parse(None).empty
    assert not NetworkSpec.parse("loss=0.5%").empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rate=fast", "bits per second"),
        ("rate=1", "between 10k and 10G"),
        ("delay=9s", "at most"),
        ("loss=150%", "between 0% and 100%"),
        ("speed=1M", "key=value"),
        ("rate", "key=value"),
        ("rate=1M,rate=2M", "given twice"),
    ],
)
def test_bad_network_specs_are_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(sl.ConfigError, match=message) as error:
        NetworkSpec.parse(text)
    assert "\n" not in str(error.value)


def test_network_setting_is_validated_by_the_config_model() -> None:
    assert sl.load_config(network="delay=40ms, rate=800k").network == "rate=800k,delay=40ms"
    with pytest.raises(sl.ConfigError, match="network"):
        sl.load_config(network="rate=lots")


async def test_link_serialises_at_its_rate_and_drops_beyond_its_queue() -> None:
    link = EmulatedLink(_sink([]), NetworkSpec.parse("rate=800k,delay=40ms,queue=200ms"))
    start = now()
    accepted = [link.accept(b"x" * 1000, start + i * 0.004) for i in range(500)]  # 2 Mbit/s
    link.close()
    kept = sum(accepted)
    # 2 s of input at 2 Mbit/s through 800 kbit/s: what fits in 2 s plus a 200 ms queue
    assert kept * 8000 == pytest.approx(800_000 * 2.2, rel=0.02)
    assert link.stats.dropped_queue == 500 - kept
    assert link.stats.max_queue_s <= 0.2
    assert accepted[:20] == [True] * 20, "the queue fills before anything is dropped"


async def test_link_delivers_at_the_configured_rate_and_delay() -> None:
    arrivals: list[tuple[float, int]] = []
    plain = EmulatedLink(_sink(arrivals), NetworkSpec.parse("rate=1M,delay=50ms,queue=2s"))
    sent_at = now()
    for _ in range(250):  # 250 kB at once: 2 s at 1 Mbit/s
        await plain.send(b"y" * 1000)
    for _ in range(200):
        if len(arrivals) >= 250:
            break
        await asyncio.sleep(0.05)
    plain.close()
    first, last = arrivals[0][0], arrivals[-1][0]
    rate = 249 * 1000 * 8 / (last - first)
    assert rate == pytest.approx(1_000_000, rel=0.1)
    assert first - sent_at == pytest.approx(0.05 + 0.008, abs=0.03)


async def test_link_loss_and_jitter_keep_order() -> None:
    arrivals: list[tuple[float, int]] = []
    link = EmulatedLink(_sink(arrivals), NetworkSpec.parse("delay=20ms,jitter=10ms,loss=10%"),
                        seed=1)  # fmt: skip
    for index in range(400):
        await link.send(index.to_bytes(2, "big"))
    await asyncio.sleep(0.2)
    link.close()
    order = [value for _, value in arrivals]
    assert order == sorted(order), "jitter never reorders"
    assert 0.05 < link.stats.dropped_loss / 400 < 0.16
    assert len(order) + link.stats.dropped_loss == 400


def _sink(arrivals: list[tuple[float, int]]):  # type: ignore[no-untyped-def]
    async def forward(data: bytes) -> None:
        arrivals.append((now(), int.from_bytes(data[:2], "big")))

    return forward


# -- keyframes -----------------------------------------------------------------------------


def test_keyframe_requests_are_coalesced_and_rate_limited() -> None:
    limiter = KeyframeLimiter(0.5)
    limiter.sent(0.0)  # the encoder's first frame
    for at in (0.1, 0.2, 0.3, 0.4):  # a PLI every 100 ms
        limiter.request()
        assert not limiter.take(at)
    assert limiter.take(0.5), "one keyframe once the interval has passed"
    limiter.sent(0.5)
    assert not limiter.take(0.6)
    limiter.request()
    assert not limiter.take(0.9) and limiter.take(1.0)
    assert limiter.requests == 5 and limiter.forced == 2 and limiter.coalesced == 3


def test_a_natural_keyframe_answers_pending_requests() -> None:
    limiter = KeyframeLimiter(0.5)
    limiter.request()
    limiter.sent(1.0)
    assert not limiter.pending and not limiter.take(2.0)


# -- bandwidth estimate --------------------------------------------------------------------


def _send(estimator: BandwidthEstimator, bps: int, start: float, seconds: float) -> None:
    packets = int(bps * seconds / 8 / 1000)
    for index in range(packets):
        estimator.on_sent(1000, start + index * seconds / packets)


def test_heavy_loss_cuts_to_what_got_through() -> None:
    estimator = BandwidthEstimator(3_000_000)
    _send(estimator, 2_000_000, 0.0, 1.0)
    estimator.on_report(Report(0.0, 1000, 0), 1.0)
    _send(estimator, 2_000_000, 1.0, 1.0)
    estimator.on_report(Report(0.6, 1250, 150), 2.0)  # 250 expected, 150 lost
    assert estimator.loss == pytest.approx(0.6)
    assert estimator.estimate_bps == pytest.approx(0.85 * 2_000_000 * 0.4, rel=0.05)


def test_low_loss_grows_slowly_and_moderate_loss_holds() -> None:
    estimator = BandwidthEstimator(1_000_000)
    at, seq = 0.0, 0
    for _ in range(5):
        _send(estimator, 1_000_000, at, 1.0)
        at, seq = at + 1.0, seq + 125
        estimator.on_report(Report(0.0, seq, 0), at)
    assert 1_000_000 < estimator.estimate_bps <= 1_000_000 * 1.08**5 + 10_000
    held = estimator.estimate_bps
    _send(estimator, 1_000_000, at, 1.0)
    estimator.on_report(Report(0.05, seq + 125, 6), at + 1.0)
    assert estimator.estimate_bps == held


def test_nacks_give_a_fast_loss_verdict_counting_each_packet_once() -> None:
    estimator = BandwidthEstimator(3_000_000)
    _send(estimator, 2_000_000, 0.0, 1.0)  # 250 packets in 1 s
    lost = list(range(0, 80, 2))  # every other packet of a span of 79
    for repeat in range(5):  # receivers repeat their whole missing list
        estimator.on_nack(lost, 1.0 + repeat * 0.01)
    expected = 0.85 * 2_000_000 * (1 - 40 / 79)
    assert estimator.estimate_bps == pytest.approx(expected, rel=0.1)
    scattered = BandwidthEstimator(3_000_000)
    _send(scattered, 2_000_000, 0.0, 1.0)
    scattered.on_nack([10, 40], 1.0)  # 2 of 31: repaired by retransmission, no cut
    assert scattered.estimate_bps == 3_000_000


def test_a_falling_remb_means_overuse_and_steps_down_without_spiralling() -> None:
    estimator = BandwidthEstimator(2_000_000)
    estimator.on_remb(1_500_000, 1.0)
    assert not estimator.overused(1.0)
    estimator.on_remb(1_000_000, 2.0)
    # a REMB is 0.85 x what the receiver got: the rung's rate, when the rung (not the link)
    # limits what is sent; following it down would spiral under the link
    assert estimator.overused(2.0) and estimator.estimate_bps == 1_700_000
    estimator.on_remb(1_650_000, 4.0)
    estimator.on_remb(1_600_000, 5.5)  # falls again (3 s on), to above 0.85 x the estimate
    assert estimator.estimate_bps == 1_600_000, "a REMB above 0.85 x the estimate: the REMB"
    assert not estimator.overused(9.0)


def test_loss_free_growth_is_bounded_by_what_is_sent_and_probes_go_beyond() -> None:
    estimator = BandwidthEstimator(300_000)
    _send(estimator, 140_000, 0.0, 1.0)
    estimator.on_report(Report(0.0, 1000, 0), 1.0)
    for second in range(2, 12):
        _send(estimator, 140_000, second - 1.0, 1.0)
        estimator.on_report(Report(0.0, 1000 + 40 * second, 0), float(second))
    assert estimator.estimate_bps <= 1.5 * 140_000 + 10_000 + 300_000, "no 8 %/s growth for ever"
    assert estimator.estimate_bps == 300_000, "the start estimate is not lowered by growth"
    estimator.apply_probe(900_000, 12.0)
    assert estimator.estimate_bps == 900_000


def test_a_remb_right_after_a_loss_cut_does_not_cut_again() -> None:
    estimator = BandwidthEstimator(3_000_000)
    _send(estimator, 2_000_000, 0.0, 1.0)
    estimator.on_report(Report(0.0, 1000, 0), 1.0)
    _send(estimator, 2_000_000, 1.0, 1.0)
    estimator.on_report(Report(0.6, 1250, 150), 2.0)  # the link overflowed: cut to ~680k
    after_loss = estimator.estimate_bps
    estimator.on_remb(2_000_000, 2.5)
    estimator.on_remb(160_000, 3.5)  # the receiver's view of the same congestion, measured
    # on the little that came through while the queue drained
    assert estimator.overused(3.5), "still a sign not to probe up yet"
    assert estimator.estimate_bps == after_loss, "but no second cut for the same event"
    estimator.on_remb(100_000, 6.0)  # 4 s later a falling REMB is news again
    assert estimator.estimate_bps == int(0.85 * after_loss)


# -- ladder and strategies -----------------------------------------------------------------


def test_the_ladder_starts_at_the_source_and_never_upscales() -> None:
    ladder = ladder_for(640, 480, 30)
    assert [r.name for r in ladder] == ["source", "640x360", "480x270", "320x180", "320x180@15"]
    assert (ladder[0].width, ladder[0].height, ladder[0].fps) == (640, 480, 30)
    assert (ladder[1].width, ladder[1].height) == (480, 360)
    assert [r.bitrate for r in ladder] == sorted((r.bitrate for r in ladder), reverse=True)
    assert index_of(ladder, "1280x720") == 0 and index_of(ladder, "360p") == 1
    big = ladder_for(1280, 720, 30)
    assert [r.name for r in big][:3] == ["source", "960x540", "640x360"]
    with pytest.raises(sl.ConfigError, match="unknown quality level"):
        quality.create("fixed:999x1")


def test_bandwidth_starts_on_the_rung_its_start_estimate_affords() -> None:
    ladder = ladder_for(1280, 720, 30)
    assert ladder[Bandwidth().decide(ladder, None, Load(bandwidth_bps=300_000))].name == "320x180"
    assert Bandwidth().decide(ladder, None, Load(bandwidth_bps=10_000_000)) == 0
    assert Bandwidth("640x360").decide(ladder, None, Load(bandwidth_bps=300_000)) == 2


def test_bandwidth_steps_up_at_once_where_probes_back_the_estimate() -> None:
    ladder = ladder_for(1280, 720, 30)
    strategy = Bandwidth()
    probed = Load(bandwidth_bps=800_000, at=1.0, probed=True)
    assert ladder[strategy.decide(ladder, 4, probed)].name == "640x360", "no wait, no trial"
    lossy = Load(bandwidth_bps=2_000_000, loss=0.05, at=1.5, probed=True)
    assert strategy.decide(ladder, 2, lossy) == 2, "never up while losing packets"


def test_bandwidth_steps_down_at_once_and_probes_up_slowly() -> None:
    ladder = ladder_for(1280, 720, 30)
    strategy = Bandwidth("source")
    assert strategy.decide(ladder, None, Load(at=0.0)) == 0
    assert strategy.decide(ladder, 0, Load(bandwidth_bps=800_000, at=1.0)) == 2  # 640x360
    plenty = Load(bandwidth_bps=10_000_000, at=2.0)
    assert strategy.decide(ladder, 2, plenty) == 2, "no probe before the wait"
    assert strategy.decide(ladder, 2, Load(bandwidth_bps=10_000_000, at=4.1)) == 1
    assert strategy.decide(ladder, 1, Load(bandwidth_bps=600_000, at=5.0)) == 3
    assert strategy.up_wait_s == 2 * Bandwidth.FIRST_UP_WAIT_S, "a failed probe waits longer"
    lossy = Load(bandwidth_bps=10_000_000, loss=0.05, at=20.0)
    assert strategy.decide(ladder, 3, lossy) == 3, "never up while losing packets"


def test_quality_specs() -> None:
    assert quality.create("fixed:source").name == "fixed:source"
    assert sl.load_config().quality == "fixed:source"
    ladder = ladder_for(1280, 720, 30)
    aimd = quality.create("aimd")
    current = aimd.decide(ladder, None, Load())
    for _ in range(5):
        current = aimd.decide(ladder, current, Load(encode_s=0.05, budget_s=1 / 30))
    assert current == 1, "five overruns in a row: one rung down"
    fixed = quality.create("fixed:640x360")
    assert ladder[fixed.decide(ladder, 0, Load())].name == "640x360"


def test_each_viewer_gets_a_codec_it_offered() -> None:
    vp8, h264, passthrough = (codecs.create(n) for n in ("vp8", "h264", "passthrough"))
    both = {"video/vp8", "video/h264"}
    assert choose_codec(vp8, both) == vp8 and choose_codec(h264, both) == h264
    assert choose_codec(vp8, {"video/h264"}) == h264
    assert choose_codec(passthrough, {"video/h264"}) == passthrough
    assert choose_codec(passthrough, {"video/vp8"}) == vp8, "VP8-only viewers get a transcode"
    assert choose_codec(vp8, {"video/opus"}) is None
    sdp = "v=0\r\nm=audio 9 UDP 111\r\na=rtpmap:111 opus/48000\r\nm=video 9 UDP 96 97\r\n" \
          "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n"  # fmt: skip
    assert offered_codecs(sdp) == {"video/vp8", "video/rtx"}


def test_media_clock_follows_the_camera_and_reanchors_on_a_jump() -> None:
    from fractions import Fraction

    from streamlab.delivery.clock import MediaClock

    arrival = MediaClock("arrival")
    assert [arrival.ticks(t, 999) for t in (10.0, 10.05, 10.1)] == [0, 4500, 9000]
    camera = MediaClock("camera")
    tb = Fraction(1, 90000)
    # arrivals jitter by +-15 ms; the camera's clock is even: the ticks follow the camera
    got = [camera.ticks(10.0 + i / 30 + (0.015 if i % 2 else -0.015), 900_000 + 3000 * i, tb)
           for i in range(6)]  # fmt: skip
    assert [b - a for a, b in itertools.pairwise(got)] == [3000] * 5
    assert camera.anchors == 1
    # the camera restarts (a reconnect): its clock goes back from 10 s to 0; ours goes on
    restarted = camera.ticks(10.3, 0, tb)
    assert restarted > got[-1] and camera.anchors == 2
    assert camera.ticks(10.3 + 1 / 30, 3000, tb) == restarted + 3000
    # a B-frame shows earlier than its predecessor: never a timestamp backwards
    assert camera.ticks(10.4, 1500, tb) > restarted + 3000
    # each path is monotonic and anchored on its own, from the same origin
    assert camera.ticks(10.31, 5000, tb, path="units") == round((10.31 - 9.985) * 90000)


# -- frame-rate decimation of a rung -----------------------------------------------------


def taken_by(level_fps: int, times: list[float], *, pts: bool = True) -> list[int]:
    """Which of frames at ``times`` (seconds) a rung at ``level_fps`` of a 30 fps source
    encodes; on the camera's clock (pts, 90 kHz) or, without one, on arrival."""
    from fractions import Fraction

    from streamlab.delivery.encoders import EncoderKey, RungEncoder
    from streamlab.strategies.quality import Level

    level = Level("test", 320, 240, level_fps, 300_000)
    rung = RungEncoder(EncoderKey("vp8", "test"), level, lambda *_: None, stream="t")
    try:
        taken = []
        for seq, at in enumerate(times):
            frame = sl.Frame.undecoded(seq, round(at * 90_000) if pts else None,  # type: ignore[arg-type]
                                       Fraction(1, 90_000), 1000.0 + at, 320, 240)  # fmt: skip
            if rung._wanted(frame):
                taken.append(seq)
        return taken
    finally:
        rung.close()


def test_a_rung_at_the_source_rate_takes_every_frame_however_they_arrive() -> None:
    import random

    rng = random.Random(1)
    jittery = [i / 30 + rng.uniform(-0.006, 0.006) for i in range(300)]  # a camera's clock
    assert taken_by(30, jittery) == list(range(300))
    bunched = [(i // 2) * 2 / 30 + (i % 2) * 0.002 for i in range(300)]  # pairs 2 ms apart
    assert taken_by(30, bunched, pts=False) == list(range(300))


def test_a_slower_rung_takes_frames_on_its_own_schedule() -> None:
    import random

    rng = random.Random(2)
    jittery = [i / 30 + rng.uniform(-0.006, 0.006) for i in range(300)]
    taken = taken_by(15, jittery)
    assert len(taken) == 150, "exactly half of a 30 fps source, jitter or not"
    assert all(b - a == 2 for a, b in itertools.pairwise(taken)), "every other frame"
    restarted = [i / 30 for i in range(60)] + [i / 30 for i in range(60)]  # clock back to 0
    assert len(taken_by(15, restarted)) == 60, "a clock that restarts starts a new schedule"
    stalled = [i / 30 for i in range(30)] + [5 + i / 30 for i in range(30)]  # a 4 s gap
    assert len(taken_by(15, stalled)) == 30


def test_the_retransmit_history_keeps_a_second_or_three_round_trips() -> None:
    from types import SimpleNamespace

    from streamlab.delivery.rtcp import HISTORY_SIZE, RetransmitGuard

    guard = RetransmitGuard()
    history: dict[int, object] = {}
    guard.history = history
    for seq in range(200):  # 100 packets a second for 2 s, as aiortc files them
        history[seq % HISTORY_SIZE] = SimpleNamespace(sequence_number=seq)
        guard.note_sent(seq / 100, seq, rtt_s=0.05)
    assert sorted(p.sequence_number for p in history.values()) == list(range(99, 200))
    guard.note_sent(2.5, 200, rtt_s=0.4)  # a slow link keeps 3 RTT: 1.2 s
    assert min(p.sequence_number for p in history.values()) >= 130
    assert len(history) == 70


def test_forced_keyframes_thin_out_with_the_viewers_who_must_receive_them() -> None:
    few, many = KeyframeLimiter(0.5), KeyframeLimiter(0.5, viewers=300)
    for limiter in (few, many):
        limiter.sent(0.0)
    forced: dict[str, list[float]] = {"few": [], "many": []}
    for step in range(1, 101):  # a join (a keyframe request) every 100 ms for 10 s
        at = step / 10
        for name, limiter in (("few", few), ("many", many)):
            limiter.request()
            if limiter.take(at):
                limiter.sent(at)
                forced[name].append(at)
    assert len(forced["few"]) == 20, "one per 500 ms"
    assert many.interval_s == 3.0 and len(forced["many"]) == 3, "one per 3 s for 300 viewers"
