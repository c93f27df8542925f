"""Detectors: ``ndarray (BGR) -> list[Detection]``, registered by name.

Built in: ``motion`` (MOG2 background subtraction), ``people`` (HOG default people
detector), ``faces`` (Haar frontal-face cascade). Register your own with
``register_detector("name", fn)``. Each detector works on a downscaled copy in a
pre-allocated buffer and maps its boxes back to full-frame pixels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from streamlab.detection import Detection
from streamlab.errors import ConfigError
from streamlab.registry import Registry


class Detector(Protocol):
    """One detector instance; instances are not shared between threads at once."""

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


detectors: Registry[Detector] = Registry("detector")

SHARED_STATE = frozenset({"motion"})
"""Detectors whose state spans frames: one instance per stream, used under a lock."""


class _Downscaler:
    """Resizes into a buffer allocated once per input size."""

    def __init__(self, max_width: int) -> None:
        self.max_width = max_width
        self._buffer: np.ndarray | None = None
        self._key: tuple[int, ...] | None = None

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        height, width = image.shape[:2]
        if width <= self.max_width:
            return image, 1.0
        scale = self.max_width / width
        size = (self.max_width, max(1, round(height * scale)))
        key = (*image.shape, *size)
        if self._key != key:
            self._buffer = np.empty((size[1], size[0], *image.shape[2:]), image.dtype)
            self._key = key
        assert self._buffer is not None
        cv2.resize(image, size, dst=self._buffer, interpolation=cv2.INTER_AREA)
        return self._buffer, scale


def _scaled(label: str, box: tuple[int, int, int, int], scale: float, score: float) -> Detection:
    x, y, w, h = (round(v / scale) for v in box)
    return Detection(label, x, y, w, h, round(float(score), 4))


@detectors.register("motion")
class MotionDetector:
    """Moving regions from MOG2 background subtraction (boxes of at least MIN_AREA px²).

    A foreground region with no frame-to-frame change inside it is static — a "ghost"
    left where something stood when the model was learnt — and is not reported.
    """

    name = "motion"

    def __init__(
        self, min_area: int = 400, learning_rate: float = 0.003, max_width: int = 320
    ) -> None:
        if min_area < 1:
            raise ConfigError(f"motion min_area must be at least 1, got {min_area}")
        if not (learning_rate == -1 or 0 <= learning_rate <= 1):
            raise ConfigError(f"motion learning_rate must be -1 or 0-1, got {learning_rate}")
        self.min_area = min_area
        self.learning_rate = learning_rate
        self._subtractor = cv2.createBackgroundSubtractorMOG2(
            history=500, varThreshold=25, detectShadows=False
        )
        self._downscale = _Downscaler(max_width)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._mask: np.ndarray | None = None
        self._grey: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self._changed: np.ndarray | None = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, scale = self._downscale(image)
        first = self._mask is None
        rate = 1.0 if first else self.learning_rate
        mask = self._subtractor.apply(small, self._mask, rate)
        self._mask = mask
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=self._grey)
        self._grey, previous, self._previous = self._previous, self._previous, grey
        if first or previous is None or previous.shape != grey.shape:
            return []
        changed = cv2.absdiff(grey, previous, dst=self._changed)
        self._changed = changed
        cv2.threshold(changed, 15, 255, cv2.THRESH_BINARY, dst=changed)
        cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel, dst=mask)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = self.min_area * scale * scale
        out = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if w * h >= min_area and changed[y : y + h, x : x + w].any():
                out.append(_scaled("motion", (x, y, w, h), scale, 1.0))
        return out


@detectors.register("people")
class PeopleDetector:
    """People from OpenCV's HOG + linear SVM default people detector."""

    name = "people"

    def __init__(self, max_width: int = 480, min_score: float = 0.3) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
        self._downscale = _Downscaler(max_width)
        self.min_score = min_score

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, scale = self._downscale(image)
        boxes, weights = self._hog.detectMultiScale(
            small, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        return [
            _scaled("person", tuple(int(v) for v in box), scale, float(weight))  # type: ignore[arg-type]
            for box, weight in zip(boxes, np.ravel(weights), strict=False)
            if float(weight) >= self.min_score
        ]


@detectors.register("faces")
class FaceDetector:
    """Frontal faces from the Haar cascade shipped in ``cv2.data``."""

    name = "faces"

    def __init__(self, max_width: int = 640) -> None:
        cascades: str = cv2.data.haarcascades  # type: ignore[attr-defined]
        path = cascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ConfigError(f"cannot load the face cascade from {path}")
        self._downscale = _Downscaler(max_width)
        self._grey: np.ndarray | None = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        small, scale = self._downscale(image)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY, dst=self._grey)
        self._grey = grey
        cv2.equalizeHist(grey, dst=grey)
        faces = self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                               minSize=(24, 24))  # fmt: skip
        return [_scaled("face", tuple(int(v) for v in f), scale, 1.0) for f in faces]  # type: ignore[arg-type]


class CallableDetector:
    """Wraps a user function ``ndarray -> list[Detection]`` as a detector."""

    def __init__(self, name: str, fn: Callable[[np.ndarray], list[Detection]]) -> None:
        self.name = name
        self._fn = fn

    def detect(self, image: np.ndarray) -> list[Detection]:
        return list(self._fn(image))


def register_detector(name: str, fn: Callable[[np.ndarray], list[Detection]]) -> None:
    """Register ``fn`` under ``name`` so configs, widgets and ``analyze=[...]`` can use it."""
    if not name.isidentifier():
        raise ConfigError(f"detector name must be an identifier, got {name!r}")
    detectors.register(name, summary=(fn.__doc__ or name).split("\n")[0])(
        lambda: CallableDetector(name, fn)
    )


class DetectorPool:
    """Instances per detector name for ``workers`` threads (HOG/cascades are not shared)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._free: dict[str, list[Detector]] = {}
        self._shared: dict[str, Detector] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def validate(self, names: tuple[str, ...]) -> None:
        unknown = [n for n in names if n not in detectors]
        if unknown:
            raise ConfigError(
                f"unknown detector {unknown[0]!r}; choose from: {', '.join(detectors.names())}"
            )

    def run(self, name: str, image: np.ndarray) -> list[Detection]:
        if name in SHARED_STATE:
            with self._lock:
                detector = self._shared.get(name) or detectors.create(name)
                self._shared[name] = detector
                lock = self._locks.setdefault(name, threading.Lock())
            with lock:
                return detector.detect(image)
        with self._lock:
            free = self._free.setdefault(name, [])
            detector = free.pop() if free else detectors.create(name)
        try:
            return detector.detect(image)
        finally:
            with self._lock:
                if len(self._free[name]) < self.workers:
                    self._free[name].append(detector)
