"""The pictures a codec sweep encodes: segments of the dataset clips and the synthetic scene,
held in memory as I420 arrays so every codec and rung sees the very same frames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamlab import framecode
from streamlab.errors import ConfigError
from streamlab.frame import bgr_to_i420

# (manifest entry, first frame): a stretch where people or cars move through the view (most
# of each clip is an empty room or parking lot, which any codec sends for almost nothing)
CLIP_SEGMENTS = {
    "person": ("one-by-one-person-detection", 140),
    "cars": ("car-detection", 160),
}


@dataclass(frozen=True, slots=True)
class Clip:
    """Frames (I420, ``(h * 3 // 2, w)``) at ``fps``; ``has_code``: a frame code is burned in
    (its box is left out of the scores, as for every received frame)."""

    name: str
    frames: tuple[np.ndarray, ...]
    fps: float
    has_code: bool = False
    credit: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].shape[1], self.frames[0].shape[0] * 2 // 3

    @property
    def duration_s(self) -> float:
        return len(self.frames) / self.fps


def load_clip(path: Path | str, *, frames: int, start: int = 0, name: str | None = None,
              credit: str = "") -> Clip:  # fmt: skip
    """``frames`` decoded frames of a video file from frame ``start`` (fewer if it ends)."""
    import av

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"clip not found: {path}")
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 30)
        for index, frame in enumerate(container.decode(stream)):
            if index < start:
                continue
            out.append(np.ascontiguousarray(frame.to_ndarray(format="yuv420p")))
            if len(out) >= frames:
                break
    if not out:
        raise ConfigError(f"{path} has no frames from {start}")
    return Clip(name or path.stem, tuple(out), fps, credit=credit)


def synthetic_clip(*, frames: int, width: int = 640, height: int = 480, fps: float = 30.0,
                   seed: int = 0) -> Clip:  # fmt: skip
    """The synthetic source's textured scene with its moving shapes and frame code."""
    from streamlab.sources.synthetic import SyntheticScene

    scene = SyntheticScene(width, height, seed=seed)
    out = []
    for seq in range(frames):
        image, _ = scene.render(seq)
        yuv = bgr_to_i420(image)
        framecode.burn_i420(yuv, seq, int(seq * 1000 / fps))
        out.append(yuv)
    return Clip("synthetic", tuple(out), fps, has_code=True)


CLIP_NAMES = (*CLIP_SEGMENTS, "synthetic")


def retimed(clip: Clip, width: int, height: int, fps: float) -> Clip:
    """The clip's frames scaled to ``width`` x ``height`` and played at ``fps`` (for encode
    timing at a given size and rate on real pictures; motion runs faster)."""
    from streamlab.webrtc.encoder import scale_i420

    out = tuple(scale_i420(f, width, height, None) for f in clip.frames)
    return Clip(f"{clip.name} {width}x{height}@{fps:g}", out, fps, clip.has_code, clip.credit)


def default_clips(frames: int, *, synthetic_frames: int | None = None,
                  include: tuple[str, ...] = CLIP_NAMES) -> list[Clip]:  # fmt: skip
    """The sweep's clips: the dataset segments of the manifest's real clips (skipped when
    ``../shared/datasets`` is not there) and the synthetic 640x480@30 scene
    (``synthetic_frames`` frames, default ``frames``)."""
    from streamlab.datasets import ROOT, load_manifest

    real = {e.name: e for e in load_manifest() if e.kind == "real"}
    clips = []
    for key in include:
        if key == "synthetic":
            clips.append(synthetic_clip(frames=synthetic_frames or frames))
            continue
        if key not in CLIP_SEGMENTS:
            raise ConfigError(f"unknown clip {key!r} (choose from {', '.join(CLIP_NAMES)})")
        entry_name, start = CLIP_SEGMENTS[key]
        entry = real.get(entry_name)
        if entry is None or not entry.available(ROOT):
            continue
        credit = str((entry.details or {}).get("credit", ""))
        clips.append(load_clip(ROOT / entry.location, frames=frames, start=start, name=key,
                               credit=credit))  # fmt: skip
    return clips
