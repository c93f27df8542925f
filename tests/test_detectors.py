"""Detectors: motion against synthetic ground truth, people/faces on real footage."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import streamlab as sl
from streamlab import framecode
from streamlab.analysis.detectors import DetectorPool, MotionDetector, detectors, register_detector
from streamlab.analysis.inputs import analyse, analysis_shape
from streamlab.sources.synthetic import SyntheticScene

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
POOL = DetectorPool(1)


def precision_recall(
    width: int, height: int, seed: int, frames: int = 200, *, planes: str = "i420"
) -> tuple[float, float]:
    """Motion on what the engine gives it (I420 planes, frame code hidden) or on BGR."""
    scene = SyntheticScene(width, height, objects=3, seed=seed)
    detector = MotionDetector()
    tp = fp = fn = 0
    x, y, w, h = framecode.region(width)
    for seq in range(frames):
        image, truth = scene.render(seq)
        image[y : y + h, x : x + w] = 0
        frame = sl.Frame(image, seq, seq, Fraction(1, 30), 0.0)
        if planes == "i420":
            found = analyse(POOL, frame, ("motion",), max_width=640, hide_code=False)[0]
        else:
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
    global POOL
    POOL = DetectorPool(1)  # a fresh background model per scene
    precision, recall = precision_recall(width, height, seed)
    print(f"motion {width}x{height} seed {seed}: precision {precision:.3f} recall {recall:.3f}")
    assert precision >= 0.9
    assert recall >= 0.9


def test_motion_on_bgr_input_still_works() -> None:
    precision, recall = precision_recall(320, 240, 0, 120, planes="bgr")
    assert precision >= 0.9 and recall >= 0.9


def test_boxes_come_back_in_frame_pixels_from_a_smaller_analysis_size() -> None:
    scene = SyntheticScene(1280, 720, objects=3, seed=1)
    pool = DetectorPool(1)
    hits = []
    for seq in range(90):
        image, truth = scene.render(seq)
        frame = sl.Frame(image, seq, seq, Fraction(1, 30), 0.0)
        found, _ = analyse(pool, frame, ("motion",), max_width=320, hide_code=True)
        if seq >= 60:
            hits += [max(t.iou(d) for t in truth) for d in found]
    assert hits and sum(h >= 0.5 for h in hits) / len(hits) >= 0.8


def test_analysis_shape_keeps_aspect_and_even_sizes() -> None:
    assert analysis_shape(640, 480, 640) == (640, 480)
    assert analysis_shape(1920, 1080, 640) == (640, 360)
    assert analysis_shape(1280, 720, 321) == (320, 180)
    w, h = analysis_shape(1000, 750, 333)
    assert w % 2 == 0 and h % 2 == 0


def read_frames(path: Path, every: int, limit: int) -> list[sl.Frame]:
    out = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % every == 0:
                out.append(sl.Frame.from_av(frame, seq=i))
            if len(out) >= limit:
                break
    return out


def people_found(frame: sl.Frame, size: int = 640) -> int:
    """People the engine's way: the Y plane at the analysis size."""
    return len(analyse(POOL, frame, ("people",), max_width=size, hide_code=False)[0])


@pytest.mark.skipif(not (DATASETS / "one-by-one-person-detection.mp4").exists(), reason="no clip")
def test_people_are_found_in_real_footage_and_not_in_the_parking_lot() -> None:
    person_frames = read_frames(DATASETS / "one-by-one-person-detection.mp4", 25, 40)
    assert all(f.has_i420 for f in person_frames)
    with_people = sum(1 for frame in person_frames if people_found(frame))
    car_frames = read_frames(DATASETS / "car-detection.mp4", 25, 15)
    car_hits = sum(1 for frame in car_frames if people_found(frame))
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
    assert pool.kind("bright_spots") == "bgr"
    assert pool.run("bright_spots", image) == [sl.Detection("bright", 20, 10, 1, 1)]
    with pytest.raises(sl.ConfigError):
        register_detector("not a name", bright_spots)


def test_a_user_detector_that_wants_gray_gets_the_luma_plane_and_frame_pixels() -> None:
    seen: list[tuple[int, ...]] = []

    def bright_gray(image: np.ndarray) -> list[sl.Detection]:
        """Brightest pixel, on gray."""
        seen.append(image.shape)
        y, x = np.unravel_index(int(image.argmax()), image.shape)
        return [sl.Detection("bright", int(x), int(y), 2, 2)]

    register_detector("bright_gray", bright_gray, gray=True)
    pool = DetectorPool(1)
    assert pool.kind("bright_gray") == "gray"
    image = np.zeros((720, 1280, 3), np.uint8)
    image[400:404, 800:804] = 255
    frame = sl.Frame(image, 0, 0, Fraction(1, 30), 0.0)
    found, _ = analyse(pool, frame, ("bright_gray",), max_width=320, hide_code=False)
    assert seen == [(180, 320)]
    assert abs(found[0].x - 800) <= 4 and abs(found[0].y - 400) <= 4


def test_unknown_detector_names_are_rejected() -> None:
    with pytest.raises(sl.ConfigError, match="unknown detector 'cats'"):
        DetectorPool(1).validate(("motion", "cats"))
