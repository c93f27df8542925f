"""The test camera starts every session: media follows PLAY, each time.

Before its sinks were kept off the clock, about 1 first session in 25 of a freshly started
camera answered PLAY and then sent only RTCP (its first frame waited on the clock for good),
and every test that watched a camera lost 20 s to the source's timeouts, or failed.
"""

from __future__ import annotations

import concurrent.futures

import av

import streamlab as sl

CAMERAS = 48
AT_ONCE = 6


def first_packet(url: str) -> bool:
    """Open one RTSP session over TCP; True when a video packet arrives within 3 s."""
    options = {"rtsp_transport": "tcp", "probesize": "32768", "analyzeduration": "0"}
    try:
        with av.open(url, options=options, timeout=(3.0, 3.0)) as container:
            return next(iter(container.demux(container.streams.video[0])), None) is not None
    except (av.FFmpegError, OSError):
        return False


def first_session_of_a_new_camera(_: int) -> bool:
    with sl.TestCamera(size=(320, 240), fps=30) as camera:
        return first_packet(camera.url)


def test_every_session_gets_media_after_play() -> None:
    with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
        started = list(pool.map(first_session_of_a_new_camera, range(CAMERAS)))
    silent = started.count(False)
    assert silent == 0, f"{silent} of {CAMERAS} new cameras sent no media after PLAY"
