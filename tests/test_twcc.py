"""Transport-wide congestion control: the feedback's wire format both ways, the sequence
number in RTP packets, what feedback says of a link (probe rate, delivered rate, queuing
delay, loss), and an aiortc viewer and the server negotiating it and using it live."""

from __future__ import annotations

import asyncio
import struct

import aiohttp
import pytest
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

import streamlab as sl
from streamlab.delivery.transport_feedback import TransportFeedback
from streamlab.webrtc import twcc
from streamlab.webrtc.client import WhepClient
from streamlab.webrtc.server import Server


def test_feedback_round_trip_keeps_order_losses_and_times_across_a_wrap() -> None:
    arrivals: list[int | None] = [1_000_000, 1_000_250, None, 1_070_000, 900_000, None]
    arrivals += [1_200_000 + 3_000 * i for i in range(30)]
    packet = twcc.build_feedback(7, 9, 65_530, arrivals, 3)
    assert len(packet) % 4 == 0
    (parsed,) = twcc.parse_feedback(packet)
    assert [a.seq for a in parsed][:8] == [65_530, 65_531, 65_532, 65_533, 65_534, 65_535, 0, 1]
    for sent, got in zip(arrivals, parsed, strict=True):
        if sent is None:
            assert got.at is None
        else:  # 250 µs units; a negative (reordered) delta too
            assert got.at is not None and abs(got.at * 1e6 - sent) < 250


def test_run_length_and_one_bit_chunks_parse() -> None:
    """Browsers mostly send run-length and one-bit chunks; the builder writes two-bit ones."""
    base, count, reference = 100, 17, 10  # reference time 640 ms
    run = struct.pack("!H", (1 << 13) | 3)  # three received, small deltas
    vector = struct.pack("!H", 0x8000 | 0b10110000000000)  # 1,0,1,1 then 10 lost
    fci = struct.pack("!HH", base, count) + reference.to_bytes(3, "big") + b"\x01"
    fci += run + vector + bytes([4, 4, 4, 8, 8, 8])
    fci += b"\x00" * (-len(fci) % 4)
    body = struct.pack("!LL", 1, 2) + fci
    packet = struct.pack("!BBH", 0x80 | 15, 205, len(body) // 4) + body
    sender_report = struct.pack("!BBH", 0x80, 200, 6) + bytes(24)
    (parsed,) = twcc.parse_feedback(sender_report + packet)
    got = [(a.seq, None if a.at is None else round(a.at * 1000, 2)) for a in parsed]
    assert got[:7] == [(100, 641.0), (101, 642.0), (102, 643.0), (103, 645.0), (104, None),
                       (105, 647.0), (106, 649.0)]  # fmt: skip
    assert all(at is None for _, at in got[7:]) and len(got) == 17


def test_malformed_feedback_is_skipped_not_raised() -> None:
    good = twcc.build_feedback(1, 2, 5, [1000, 2000], 1)
    truncated = good[:-4][:2] + struct.pack("!H", len(good) // 4 - 2) + good[4:-4]
    assert twcc.parse_feedback(truncated) == []
    assert twcc.parse_feedback(b"\x8f\xcd\x00\x10") == []  # claims more than it has
    assert twcc.parse_feedback(b"") == []


def test_the_sequence_number_is_read_from_a_serialised_packet() -> None:
    extensions = HeaderExtensionsMap()
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=5, uri=twcc.URI)]))  # fmt: skip
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=3, payload=b"x")
    packet.extensions.mid = "0"
    packet.extensions.transport_sequence_number = 4242
    data = packet.serialize(extensions)
    assert twcc.sequence_of(data, 5) == 4242
    assert twcc.sequence_of(data, 6) is None
    assert twcc.sequence_of(data[:12], 5) is None


def test_offer_gains_the_extension_once_in_its_video_section() -> None:
    offer = ("v=0\r\nm=audio 9 UDP 0\r\na=rtpmap:0 PCMU/8000\r\n"
             "m=video 9 UDP 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n")  # fmt: skip
    changed = twcc.offer_with_extension(offer)
    assert twcc.offered_id(changed) == 9
    video = changed.split("m=video")[1]
    assert video.count(twcc.URI) == 1 and "a=rtcp-fb:96 transport-cc" in video
    assert twcc.URI not in changed.split("m=video")[0]


def _probe_through_link(send_bps: float, link_bps: float, packets: int = 20) -> float | None:
    feedback = TransportFeedback()
    size = 1000
    arrivals = []
    link_free = 0.0
    for i in range(packets):
        sent_at = i * size * 8 / send_bps
        feedback.on_sent(i, size, sent_at, probe=1)
        link_free = max(link_free, sent_at) + size * 8 / link_bps
        arrivals.append(twcc.Arrival(i, 5.0 + link_free))
    feedback.on_feedback(arrivals, 1.0)
    return feedback.probe_rate(1)


def test_a_probe_measures_the_link_when_it_saturates_it_and_its_own_rate_when_not() -> None:
    saturated = _probe_through_link(2_000_000, 800_000)
    assert saturated is not None and 0.9 * 0.95 * 800_000 < saturated < 0.95 * 800_000 * 1.1
    free = _probe_through_link(1_000_000, 5_000_000)
    assert free is not None and 0.9 * 1_000_000 < free < 1.1 * 1_000_000


def test_queuing_delay_delivered_rate_and_loss_come_from_feedback() -> None:
    feedback = TransportFeedback()
    reports = []
    for i in range(100):
        feedback.on_sent(i, 1000, i * 0.01, None)
        queue = 0.0 if i < 50 else (i - 50) * 0.004  # the queue grows in the second half
        reports.append(twcc.Arrival(i, None if i % 10 == 9 else 3.0 + i * 0.01 + queue))
    feedback.on_feedback(reports[:50], 0.6)
    assert feedback.queue_delay_s is not None and feedback.queue_delay_s < 0.001
    feedback.on_feedback(reports[50:], 1.1)
    assert feedback.queue_delay_s is not None and feedback.queue_delay_s > 0.15
    assert 0.05 < feedback.loss < 0.15
    assert feedback.delivered_bps is not None and 300_000 < feedback.delivered_bps < 900_000
    assert feedback.probe_rate(1) is None  # no such probe


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("offered", "setting"), [(True, "transport-cc"), (False, "transport-cc"),
                                                  (True, "remb")])  # fmt: skip
async def test_a_viewer_that_offers_transport_cc_reports_every_packet(
    offered: bool, setting: str
) -> None:
    """Answered when offered, unless the server's ``congestion_feedback`` is ``remb``."""
    server = Server(sl.load_config(port=0, quality="bandwidth", congestion_feedback=setting))
    server.add_stream("synthetic://?size=640x360&fps=30", name="demo")
    async with server:
        client = WhepClient(f"{server.url}whep/demo", transport_cc=offered)
        await client.connect(read_codes=False)
        try:
            await client.wait_frames(45)
            await asyncio.sleep(0.5)
            (viewer,) = server.streams["demo"].fanout.viewers.values()
            async with aiohttp.ClientSession() as http, http.get(f"{server.url}api/streams") as r:
                (info,) = (await r.json())["streams"][0]["viewers"]
            answered = offered and setting == "transport-cc"
            assert info["transport_cc"] is answered
            if answered:
                writer = client.feedback_writer
                assert writer is not None and writer.sent >= 10, "feedback every 50 ms"
                assert info["feedback_reports"] >= 10
                assert info["delivered_bps"] and info["delivered_bps"] > 50_000
                assert info["queue_delay_ms"] is not None and info["queue_delay_ms"] < 500
                measured = [p for p in viewer.prober.results if p.outcome in ("passed", "limited")]  # type: ignore[union-attr]
                assert measured, f"a startup probe measured by feedback: {list(viewer.prober.results)}"  # type: ignore[union-attr]
            else:
                assert client.feedback_writer is None and info["feedback_reports"] is None
        finally:
            await client.close()


def test_a_burst_is_judged_by_what_the_next_burst_waits_for() -> None:
    """A keyframe sent at once queues behind itself; that says nothing of the link. The
    queuing delay is the first packet of each burst's, as libwebrtc groups packets."""
    feedback = TransportFeedback()
    for i in range(20):  # a 20-packet keyframe, sent in one burst, 10 ms apart on arrival
        feedback.on_sent(i, 1000, 1.0, None)
    feedback.on_feedback([twcc.Arrival(i, 2.0 + 0.01 * i) for i in range(20)], 1.3)
    assert feedback.queue_delay_s == 0.0, "the burst's own tail is not a queue"
    feedback.on_sent(20, 1000, 1.05, None)  # the next frame waits for the last 14 packets
    feedback.on_feedback([twcc.Arrival(20, 2.0 + 0.01 * 20)], 1.4)
    assert feedback.queue_delay_s is not None and 0.13 < feedback.queue_delay_s < 0.17
