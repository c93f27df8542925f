"""Frame code: burn ``seq`` and capture time into a frame, read them back after compression.

Layout (documented in the README so browsers and other tools can read it): a block of
``COLS x ROWS`` square cells, each ``cell = max(8, width // 40)`` pixels, whose top-left
corner is at ``(cell, cell)``; the block sits on a black quiet border one cell wide (the
region from ``(0, 0)`` to ``((COLS + 2) * cell, (ROWS + 2) * cell)``). A white cell is 1,
black is 0; bits run row-major, most significant first:

    seq mod 2**24 (24 bits) | capture ms mod 2**32 (32 bits) | CRC-16/CCITT-FALSE (16 bits)

The CRC covers the first 7 bytes. A reader averages the inner half of each cell, rejects a
cell that is neither clearly dark nor clearly bright, and checks the CRC, so a misread is an
error, never a wrong number. The full capture time is the value congruent to the 32-bit
field nearest to the reader's clock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamlab.clock import now_ms
from streamlab.errors import FrameCodeError

COLS = 12
ROWS = 6
SEQ_BITS = 24
MS_BITS = 32
CRC_BITS = 16
MIN_WIDTH = 320
DARK_MAX = 96
BRIGHT_MIN = 160


@dataclass(frozen=True, slots=True)
class FrameCode:
    """What a frame code says: the frame's sequence number and capture wall-clock ms."""

    seq: int
    captured_ms: int

    def latency_ms(self, at_ms: int | None = None) -> int:
        """Milliseconds from capture to ``at_ms`` (now by default)."""
        return (now_ms() if at_ms is None else at_ms) - self.captured_ms


def cell_size(width: int) -> int:
    """Cell edge in pixels for a frame ``width`` pixels wide."""
    return max(8, width // 40)


def region(width: int) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` of the area the code occupies (border included) at this width."""
    cell = cell_size(width)
    return (0, 0, (COLS + 2) * cell, (ROWS + 2) * cell)


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _payload_bits(seq: int, captured_ms: int) -> np.ndarray:
    head = ((seq % (1 << SEQ_BITS)) << MS_BITS) | (captured_ms % (1 << MS_BITS))
    head_bytes = head.to_bytes(7, "big")
    value = (head << CRC_BITS) | crc16(head_bytes)
    total = SEQ_BITS + MS_BITS + CRC_BITS
    return np.array([(value >> (total - 1 - i)) & 1 for i in range(total)], dtype=np.uint8)


def _check_size(image: np.ndarray) -> int:
    height, width = image.shape[:2]
    cell = cell_size(width)
    if width < MIN_WIDTH or height < (ROWS + 2) * cell:
        raise FrameCodeError(f"frame {width}x{height} is too small for a frame code")
    return cell


def burn(image: np.ndarray, seq: int, captured_ms: int) -> None:
    """Write the code for ``seq`` and ``captured_ms`` into ``image`` (BGR or grey), in place."""
    cell = _check_size(image)
    x, y, w, h = region(image.shape[1])
    image[y : y + h, x : x + w] = 0
    bits = _payload_bits(seq, captured_ms).reshape(ROWS, COLS) * np.uint8(255)
    block = np.kron(bits, np.ones((cell, cell), dtype=np.uint8))
    target = image[cell : cell + ROWS * cell, cell : cell + COLS * cell]
    if target.ndim == 3:
        target[:] = block[:, :, None]
    else:
        target[:] = block


def burn_i420(yuv: np.ndarray, seq: int, captured_ms: int) -> None:
    """Write the code into I420 planes ``(h*3//2, w)`` in place: the cells into Y, neutral
    grey into U and V under the whole region (so no colour bleeds into the cells)."""
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    burn(yuv[:height], seq, captured_ms)
    x, y, w, h = region(width)
    chroma = yuv[height:].reshape(2, height // 2, width // 2)
    chroma[:, y // 2 : (y + h + 1) // 2, x // 2 : (x + w + 1) // 2] = 128


def cell_means(image: np.ndarray) -> np.ndarray:
    """Mean brightness of the inner half of each cell, shape ``(ROWS, COLS)``."""
    cell = _check_size(image)
    block = image[cell : cell + ROWS * cell, cell : cell + COLS * cell]
    if block.ndim == 3:
        block = block.mean(axis=2)
    cells = block.reshape(ROWS, cell, COLS, cell)
    lo, hi = cell // 4, cell - cell // 4
    means: np.ndarray = cells[:, lo:hi, :, lo:hi].mean(axis=(1, 3))
    return means


def read(image: np.ndarray, *, now: int | None = None) -> FrameCode:
    """Read the code from a (decoded) frame. Raises FrameCodeError when absent or damaged."""
    means = cell_means(image).ravel()
    unsure = int(((means > DARK_MAX) & (means < BRIGHT_MIN)).sum())
    if unsure:
        raise FrameCodeError(f"frame code unreadable: {unsure} cell(s) neither dark nor bright")
    value = 0
    for bit in (means >= 128).astype(np.uint8):
        value = (value << 1) | int(bit)
    head, crc = value >> CRC_BITS, value & 0xFFFF
    if crc16(head.to_bytes(7, "big")) != crc:
        raise FrameCodeError("frame code checksum mismatch")
    seq = head >> MS_BITS
    low_ms = head & ((1 << MS_BITS) - 1)
    return FrameCode(seq, unwrap_ms(low_ms, now_ms() if now is None else now))


def try_read(image: np.ndarray, *, now: int | None = None) -> FrameCode | None:
    """Like ``read`` but None when there is no valid code."""
    try:
        return read(image, now=now)
    except FrameCodeError:
        return None


def unwrap_ms(low_ms: int, reference_ms: int) -> int:
    """The full ms value congruent to ``low_ms`` (mod 2**32) nearest to ``reference_ms``."""
    modulus = 1 << MS_BITS
    delta = (low_ms - reference_ms) % modulus
    if delta >= modulus // 2:
        delta -= modulus
    return reference_ms + delta
