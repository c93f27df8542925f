"""The streams say what their pictures are: BT.601, video range (OpenCV's BGR -> I420).

Unsaid, Chromium shows H.264 and VP9 by BT.709 and every hue shifts (the Chromium canvas
test reads the matrix the browser then reports).
"""

from __future__ import annotations

import av
import pytest

from streamlab.webrtc.codecs.samples import encode

DECODERS = {"libx264": "h264", "libvpx-vp9": "vp9", "libsvtav1": "libdav1d"}
SMPTE170M, VIDEO_RANGE = 6, 1


@pytest.mark.parametrize("encoder", sorted(DECODERS))
def test_decoded_pictures_carry_bt601_video_range(encoder: str) -> None:
    decoder = av.CodecContext.create(DECODERS[encoder], "r")
    pictures = [p for packet in encode(encoder, frames=3, size=(320, 240))
                for p in decoder.decode(packet)]  # fmt: skip
    assert pictures, "the encoder's packets decode"
    assert {(p.colorspace, p.color_range) for p in pictures} == {(SMPTE170M, VIDEO_RANGE)}
