"""Read the pixels of a PNG screenshot with the standard library alone."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Bytes per pixel of the 8-bit colour types a browser writes: RGB, RGBA.
BYTES_PER_PIXEL = {2: 3, 6: 4}


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    # Every pixel as (r, g, b), row by row.
    pixels: list[tuple[int, int, int]]

    def colours(self) -> Counter[tuple[int, int, int]]:
        return Counter(self.pixels)

    def count_near(self, hex_colour: str, tolerance: int = 6) -> int:
        """Pixels within ``tolerance`` of ``#rrggbb`` on every channel."""
        target = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return sum(
            count
            for colour, count in self.colours().items()
            if all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))
        )


def read_png(path: Path) -> Image:
    data = path.read_bytes()
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    offset, idat = len(SIGNATURE), b""
    width = height = colour_type = 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour_type not in BYTES_PER_PIXEL or interlace:
                raise ValueError("only 8-bit, non-interlaced RGB(A) images are read")
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    bpp = BYTES_PER_PIXEL[colour_type]
    raw = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, bpp)
        pixels.extend((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, bpp))
        previous = line
    return Image(width, height, pixels)


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    """Undo one scanline's PNG filter in place (RFC 2083, section 6)."""
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        corner = previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            estimate = left + up - corner
            pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
            predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + predictor) & 0xFF
        elif kind != 0:
            raise ValueError(f"unknown PNG filter {kind}")
