"""Detectors: motion against synthetic ground truth, people/faces on real footage."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

import streamlab as sl
from streamlab import framecode
from streamlab.analysis.detectors import DetectorPool, MotionDetector, detectors, register_detector
from streamlab.sources.synthetic import SyntheticScene

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def precision_recall(width: int, height: int, seed: int, frames: int = 200) -> tuple[float, float]:
    scene = SyntheticScene(width, height, objects=3, seed=seed)
    detector = MotionDetector()
    tp = fp = fn = 0
    x, y, w, h = framecode.region(width)
    for seq in range(frames):
        image, truth = scene.render(seq)
        image[y : y + h, x : x + w] = 0
        found = detector.detect(image)
        if seq < 60:
            continue  # two seconds of warm-up while the background model settles
        matched: set[int] = set()
        for detection in found:
            score, index = max((t.iou(detection), i) for i, t in enumerate(truth))
            if score >= 0.5 and index not in matched:
                tp += 1
                matched.add(index)
            else:
                fp += 1
        fn += len(truth) - len(matched)
    return tp / (tp + fp), tp / (tp + fn)


@pytest.mark.parametrize(("width", "height"), [(320, 240), (640, 480)])
@pytest.mark.parametrize("seed", [0, 1])
def test_motion_precision_and_recall_at_iou_half(width: int, height: int, seed: int) -> None:
    precision, recall = precision_recall(width, height, seed)
    print(f"motion {width}x{height} seed {seed}: precision {precision:.3f} recall {recall:.3f}")
    assert precision >= 0.9
    assert recall >= 0.9


def read_frames(path: Path, every: int, limit: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                out.append(frame.to_ndarray(format="bgr24"))
            if len(out) >= limit:
                break
    return out


@pytest.mark.skipif(not (DATASETS / "one-by-one-person-detection.mp4").exists(), reason="no clip")
def test_people_are_found_in_real_footage_and_not_in_the_parking_lot() -> None:
    people = detectors.create("people")
    person_frames = read_frames(DATASETS / "one-by-one-person-detection.mp4", 25, 40)
    with_people = sum(1 for image in person_frames if people.detect(image))
    car_frames = read_frames(DATASETS / "car-detection.mp4", 25, 15)
    car_hits = sum(1 for image in car_frames if people.detect(image))
    print(f"people: {with_people}/{len(person_frames)} person-clip frames, "
          f"{car_hits}/{len(car_frames)} parking-lot frames")  # fmt: skip
    assert with_people >= 5
    assert car_hits / len(car_frames) < with_people / len(person_frames)


def test_faces_cascade_runs_and_returns_boxes_inside_the_frame() -> None:
    faces = detectors.create("faces")
    image, _ = SyntheticScene(640, 480).render(0)
    found = faces.detect(image)
    assert all(0 <= d.x < 640 and 0 <= d.y < 480 and d.label == "face" for d in found)


def test_user_detectors_register_by_name() -> None:
    def bright_spots(image: np.ndarray) -> list[sl.Detection]:
        """Everything brighter than 250."""
        ys, xs = np.nonzero(image.max(axis=2) > 250)
        return [sl.Detection("bright", int(xs.min()), int(ys.min()), 1, 1)] if len(xs) else []

    register_detector("bright_spots", bright_spots)
    assert "bright_spots" in detectors.names()
    image = np.zeros((240, 320, 3), np.uint8)
    image[10, 20] = 255
    pool = DetectorPool(2)
    assert pool.run("bright_spots", image) == [sl.Detection("bright", 20, 10, 1, 1)]
    with pytest.raises(sl.ConfigError):
        register_detector("not a name", bright_spots)


def test_unknown_detector_names_are_rejected() -> None:
    with pytest.raises(sl.ConfigError, match="unknown detector 'cats'"):
        DetectorPool(1).validate(("motion", "cats"))
