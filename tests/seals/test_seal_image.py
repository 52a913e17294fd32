"""The seal image: red ring, transparent outside, the requested size, CJK font discovery."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from PIL import Image

import seals.image
from seals.errors import FontNotFound
from seals.image import find_cjk_font, render_seal


def _is_red(pixel: tuple[int, int, int, int]) -> bool:
    r, g, b, a = pixel
    return a > 200 and r > 180 and g < 80 and b < 80


@pytest.mark.parametrize("size", [200, 400])
def test_ring_red_corners_transparent(size: int) -> None:
    png = render_seal("某市人民政府办公室", "公文专用章", size=size)
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG"
        assert img.size == (size, size)
        assert img.mode == "RGBA"
        rgba = img.copy()
    for corner in [(0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)]:
        assert rgba.getpixel(corner)[3] == 0
    # The ring: 3.5 % of the size wide, its middle at 45.5 % of the size from the centre.
    centre = size / 2
    radius = size * 0.455
    ring_hits = 0
    for step in range(36):
        angle = math.radians(step * 10)
        x = round(centre + radius * math.cos(angle))
        y = round(centre + radius * math.sin(angle))
        ring_hits += _is_red(rgba.getpixel((x, y)))
    assert ring_hits >= 34
    # The star fills the centre.
    assert _is_red(rgba.getpixel((round(centre), round(centre))))


def test_name_and_purpose_are_drawn() -> None:
    """The upper arc band and the band below the star carry red glyph pixels."""
    size = 400
    with Image.open(io.BytesIO(render_seal("市财政局", size=size))) as img:
        rgba = img.copy()
    blank = render_seal("市", "", size=size)
    with Image.open(io.BytesIO(blank)) as img:
        blank_rgba = img.copy()

    def red_in(image: Image.Image, box: tuple[int, int, int, int]) -> int:
        return sum(_is_red(p) for p in image.crop(box).get_flattened_data())

    purpose_band = (110, 300, 290, 340)
    assert red_in(rgba, purpose_band) > 200
    assert red_in(blank_rgba, purpose_band) == 0
    upper_arc = (90, 40, 310, 110)
    assert red_in(rgba, upper_arc) > red_in(blank_rgba, upper_arc) + 200


def test_font_is_found() -> None:
    path = find_cjk_font()
    assert path.is_file()


def test_missing_font_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(seals.image, "KNOWN_CJK_FONTS", (str(tmp_path / "none.ttc"),))
    monkeypatch.setenv("PATH", str(tmp_path))
    find_cjk_font.cache_clear()
    try:
        with pytest.raises(FontNotFound) as info:
            find_cjk_font()
        assert info.value.code == "seal_font_missing"
        assert "fonts-wqy-zenhei" in str(info.value)
    finally:
        find_cjk_font.cache_clear()


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="64"):
        render_seal("市财政局", size=32)
