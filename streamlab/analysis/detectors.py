"""Detectors: ``ndarray -> list[Detection]``, registered by name.

Built in: ``motion`` (MOG2 background subtraction), ``people`` (HOG default people
detector), ``faces`` (Haar frontal-face cascade). They declare ``wants = "gray"``: the
engine hands them the frame's luma (Y) plane — free, no colour conversion — scaled to the
stream's ``analysis_size`` and maps their boxes back to frame pixels. Each may downscale
further into a pre-allocated buffer (its own ``max_width``) and maps back to its input.
Register your own with ``register_detector("name", fn)`` (BGR) or ``..., gray=True``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal, Protocol

import cv2
import numpy as np

from streamlab.detection import Detection
from streamlab.errors import ConfigError
from streamlab.registry import Registry, Spec

ImageKind = Literal["gray", "i420", "bgr"]


class Detector(Protocol):
    """One detector instance; instances are not shared between threads at once.

    A detector may set ``wants = "gray"`` to be given the luma plane ``(h, w)`` at the
    analysis size, or ``wants = "i420"`` for the I420 planes ``(h*3//2, w)`` at the analysis
    size; without it, it gets the full-size BGR image ``(h, w, 3)``.
    """

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]: ...


def wants(detector: object) -> ImageKind:
    """What image a detector (instance or class) asks for: ``gray``, ``i420`` or ``bgr``."""
    kind = getattr(detector, "wants", "bgr")
    if kind == "gray":
        return "gray"
    return "i420" if kind == "i420" else "bgr"


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

    Works on YUV — the luma plane plus the two chroma planes, all free from the decoder —
    because luma alone misses objects that differ from the background only in colour.
    A foreground region with no frame-to-frame change inside it is static — a "ghost"
    left where something stood when the model was learnt — and is not reported.
    ``detect`` takes I420 planes ``(h*3//2, w)`` or, for convenience, a BGR image.
    """

    name = "motion"
    wants = "i420"

    def __init__(
        self, min_area: int = 400, learning_rate: float = 0.003, max_width: int = 320
    ) -> None:
        if min_area < 1:
            raise ConfigError(f"motion min_area must be at least 1, got {min_area}")
        if not (learning_rate == -1 or 0 <= learning_rate <= 1):
            raise ConfigError(f"motion learning_rate must be -1 or 0-1, got {learning_rate}")
        self.min_area = min_area
        self.learning_rate = learning_rate
        self.max_width = max_width
        self._subtractor = cv2.createBackgroundSubtractorMOG2(
            history=500, varThreshold=25, detectShadows=False
        )
        self._downscale = _Downscaler(max_width)
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._mask: np.ndarray | None = None
        self._yuv: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self._changed: np.ndarray | None = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        yuv, scale = self._packed_yuv(image)
        first = self._mask is None
        rate = 1.0 if first else self.learning_rate
        mask = self._subtractor.apply(yuv, self._mask, rate)
        self._mask = mask
        grey = yuv[:, :, 0]
        self._yuv, previous, self._previous = self._previous, self._previous, yuv
        if first or previous is None or previous.shape != yuv.shape:
            return []
        changed = cv2.absdiff(grey, previous[:, :, 0], dst=self._changed)
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

    def _packed_yuv(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """``(h', w', 3)`` YUV at the working width in a buffer of our own (the previous
        one is kept for frame differences), and the scale from the input."""
        if image.ndim == 3:  # BGR
            small, scale = self._downscale(image)
            spare = self._yuv if self._yuv is not None and self._yuv.shape == small.shape else None
            return cv2.cvtColor(small, cv2.COLOR_BGR2YUV, dst=spare), scale
        height, width = image.shape[0] * 2 // 3, image.shape[1]
        luma, scale = self._downscale(image[:height])
        size = (luma.shape[1], luma.shape[0])
        chroma = image[height:].reshape(2, height // 2, width // 2)
        u = cv2.resize(chroma[0], size, interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(chroma[1], size, interpolation=cv2.INTER_LINEAR)
        spare = self._yuv if self._yuv is not None and self._yuv.shape[:2] == luma.shape else None
        return cv2.merge([luma, u, v], dst=spare), scale


@detectors.register("people")
class PeopleDetector:
    """People from OpenCV's HOG + linear SVM default people detector."""

    name = "people"
    wants = "gray"

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
    wants = "gray"

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
        if small.ndim == 2:
            grey = cv2.equalizeHist(small, dst=self._grey)  # never in place: input is shared
        else:
            grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), dst=self._grey)
        self._grey = grey
        faces = self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                               minSize=(24, 24))  # fmt: skip
        return [_scaled("face", tuple(int(v) for v in f), scale, 1.0) for f in faces]  # type: ignore[arg-type]


class CallableDetector:
    """Wraps a user function ``ndarray -> list[Detection]`` as a detector."""

    def __init__(
        self, name: str, fn: Callable[[np.ndarray], list[Detection]], *, gray: bool = False
    ) -> None:
        self.name = name
        self.wants: ImageKind = "gray" if gray else "bgr"
        self._fn = fn

    def detect(self, image: np.ndarray) -> list[Detection]:
        return list(self._fn(image))


class UserDetector:
    """A registered user function: a picklable factory (for the analysis worker process)."""

    def __init__(
        self, name: str, fn: Callable[[np.ndarray], list[Detection]], gray: bool = False
    ) -> None:
        self.name, self.fn, self.gray = name, fn, gray

    @property
    def wants(self) -> ImageKind:
        return "gray" if self.gray else "bgr"

    def __call__(self) -> CallableDetector:
        return CallableDetector(self.name, self.fn, gray=self.gray)


def register_detector(
    name: str, fn: Callable[[np.ndarray], list[Detection]], *, gray: bool = False
) -> None:
    """Register ``fn`` under ``name`` so configs, widgets and ``analyze=[...]`` can use it.

    ``fn`` gets the full-size BGR image ``(h, w, 3)``; with ``gray=True`` it gets the
    luma plane ``(h, w)`` at the stream's ``analysis_size`` instead (cheaper: no colour
    conversion), and its boxes are mapped back to frame pixels for it.
    """
    if not name.isidentifier():
        raise ConfigError(f"detector name must be an identifier, got {name!r}")
    user = UserDetector(name, fn, gray)

    def factory() -> CallableDetector:
        return user()

    factory.wants = user.wants  # type: ignore[attr-defined]
    _USER[name] = user
    detectors.register(name, summary=(fn.__doc__ or name).split("\n")[0])(factory)


_USER: dict[str, UserDetector] = {}


class DetectorPool:
    """Instances per detector name for ``workers`` threads (HOG/cascades are not shared)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._free: dict[str, list[Detector]] = {}
        self._shared: dict[str, Detector] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._kinds: dict[str, ImageKind] = {}
        self._lock = threading.Lock()

    def user_factories(self, names: tuple[str, ...]) -> dict[str, UserDetector]:
        """The registered user functions among ``names`` (to ship to a worker process)."""
        return {name: _USER[name] for name in names if name in _USER}

    def kind(self, name: str) -> ImageKind:
        """The input detector ``name`` asks for (``gray``, ``i420`` or ``bgr``)."""
        known = self._kinds.get(name)
        if known is None:
            base = Spec.parse(name).name
            factory = next((e.factory for e in detectors.entries() if e.name == base), None)
            known = self._kinds[name] = wants(factory)
        return known

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
