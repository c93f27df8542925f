"""Keyframe sizes per rung and codec, with the project's own shared encoders.

For each codec and each rung of a 1280x720@30 source's ladder it encodes ``--frames``
frames of a scene (the textured synthetic scene, or a dataset clip), asks for a keyframe
every second after the first, and prints the median keyframe against the rung's per-frame
share of its bitrate, and how long that keyframe takes to cross a link running at exactly
the rung's rate (what it adds to the queue). Run::

    .venv/bin/python benchmarks/keyframe_sizes.py --codecs vp8,h264,vp9,av1 \
        --scene synthetic --out reports/keyframes.json
    .venv/bin/python benchmarks/keyframe_sizes.py --scene ../shared/datasets/car-detection.mp4
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterator

import av
import cv2
import numpy as np
from rows import write_rows  # benchmarks/rows.py

from streamlab.sources.synthetic import SyntheticScene
from streamlab.strategies.quality import ladder_for
from streamlab.webrtc.encoder import SharedEncoder

ENCODERS = {"vp8": "libvpx", "h264": "libx264", "vp9": "libvpx-vp9", "av1": "libsvtav1"}


def scene_frames(scene: str, count: int) -> Iterator[np.ndarray]:
    """BGR 1280x720 frames of the synthetic scene or of a clip (looped)."""
    if scene == "synthetic":
        synthetic = SyntheticScene(1280, 720)
        for seq in range(count):
            yield synthetic.render(seq)[0]
        return
    made = 0
    while made < count:
        with av.open(scene) as container:
            for frame in container.decode(video=0):
                image = cv2.resize(frame.to_ndarray(format="bgr24"), (1280, 720))
                yield image
                made += 1
                if made >= count:
                    return


def measure(codec: str, scene: str, frames: int) -> list[dict[str, object]]:
    images = list(scene_frames(scene, frames))
    rows = []
    for level in ladder_for(1280, 720, 30):
        encoder = SharedEncoder(ENCODERS[codec])
        keyframes, others = [], []
        for index, image in enumerate(images):
            step = max(1, 30 // level.fps)
            if index % step:
                continue
            keyframe = index > 0 and index % 30 == 0
            size = sum(p.size for p in encoder.encode(image, index * 3000, level, keyframe))
            if index == 0:
                continue  # the first frame after opening: no rate history yet
            (keyframes if keyframe else others).append(size)
        share = level.bitrate / 8 / level.fps
        key = statistics.median(keyframes) if keyframes else 0
        rows.append({
            "codec": codec, "rung": level.name, "bitrate": level.bitrate,
            "keyframe_bytes": int(key), "frame_share_bytes": int(share),
            "keyframe_frames": round(key / share, 1),
            "inter_bytes": int(statistics.median(others)) if others else 0,
            "queue_ms_at_rung_rate": round(key * 8 / level.bitrate * 1000),
        })  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codecs", default="vp8,h264,vp9,av1")
    parser.add_argument("--scene", default="synthetic", help="synthetic or a video file")
    parser.add_argument("--frames", type=int, default=121)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    rows = []
    print("| codec | rung | kbit/s | keyframe bytes | x a frame's share | inter bytes (median) "
          "| ms at the rung's rate |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for codec in args.codecs.split(","):
        for row in measure(codec, args.scene, args.frames):
            rows.append(row)
            print(f"| {row['codec']} | {row['rung']} | {int(row['bitrate']) // 1000} "  # type: ignore[call-overload]
                  f"| {row['keyframe_bytes']} | {row['keyframe_frames']} | {row['inter_bytes']} "
                  f"| {row['queue_ms_at_rung_rate']} |", flush=True)  # fmt: skip
    write_rows(args.out, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
