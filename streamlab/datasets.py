"""The dataset manifest: synthetic clips written with ground truth, real clips read in place."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from streamlab import framecode
from streamlab.errors import ConfigError
from streamlab.sources.synthetic import SyntheticParams, SyntheticScene

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "datasets" / "manifest.json"
"""Paths of real clips in the manifest are relative to the checkout (``ROOT``)."""


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    kind: str  # synthetic | real
    location: str  # URL or path
    frames: int = 0
    details: dict[str, Any] | None = None

    def available(self, base: Path) -> bool:
        return self.kind == "synthetic" or (base / self.location).is_file()


def load_manifest(path: Path = MANIFEST) -> list[Entry]:
    """Every entry of the manifest. Raises ConfigError when it is missing or malformed."""
    try:
        data = json.loads(path.read_text())
        synthetic = [Entry(e["name"], "synthetic", e["url"], int(e["frames"]))
                     for e in data.get("synthetic", [])]  # fmt: skip
        real = [Entry(e["name"], "real", e["path"], 0, e) for e in data.get("real", [])]
    except FileNotFoundError:
        raise ConfigError(f"no dataset manifest at {path}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed dataset manifest {path}: {exc}") from None
    return synthetic + real


def write_synthetic(entry: Entry, out_dir: Path) -> tuple[Path, Path]:
    """Render ``entry`` to ``NAME.mp4`` (H.264) and its ground truth to ``NAME.json``."""
    params = SyntheticParams.from_url(entry.location)
    scene = SyntheticScene(params.width, params.height, objects=params.objects, seed=params.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    video_path, truth_path = out_dir / f"{entry.name}.mp4", out_dir / f"{entry.name}.json"
    truth: list[dict[str, Any]] = []
    fps = Fraction(params.fps).limit_denominator(1000)
    with av.open(str(video_path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = params.width, params.height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for seq in range(entry.frames):
            image, boxes = scene.render(seq)
            framecode.burn(image, seq, round(seq * 1000 / params.fps))
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            container.mux(stream.encode(frame))
            truth.append({"seq": seq, "boxes": [b.to_dict() for b in boxes]})
        container.mux(stream.encode(None))
    truth_path.write_text(json.dumps({"url": entry.location, "fps": params.fps,
                                      "width": params.width, "height": params.height,
                                      "frames": truth}))  # fmt: skip
    return video_path, truth_path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
