"""The red round seal (公章) drawn with Pillow: ring, name on the upper arc, star, purpose."""

from __future__ import annotations

import functools
import io
import math
import shutil
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from seals.errors import FontNotFound

SEAL_RED = (230, 0, 18, 255)
KNOWN_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)
_SUPERSAMPLE = 4
FONT_PACKAGE_HINT = (
    "install the Debian package fonts-wqy-zenhei (sudo apt-get install fonts-wqy-zenhei)"
)


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> Path:
    """A font file with Chinese glyphs: known Debian paths first, then fontconfig."""
    for candidate in KNOWN_CJK_FONTS:
        path = Path(candidate)
        if path.is_file():
            return path
    fc_list = shutil.which("fc-list")
    if fc_list is not None:
        try:
            listing = subprocess.run(
                [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        for line in sorted(listing.splitlines()):
            path = Path(line.split(":", 1)[0].strip())
            if path.suffix.lower() in {".ttf", ".ttc", ".otf", ".otc"} and path.is_file():
                return path
    raise FontNotFound(f"no CJK font found; {FONT_PACKAGE_HINT} or fonts-noto-cjk")


def seal_drawing_problem(*, draw: bool = True) -> str | None:
    """Why this machine cannot draw seals, or None.

    ``serve`` asks with ``draw=True`` once at start (a seal is really drawn, so a font that
    Pillow cannot read counts too); ``/readyz`` asks cheaply whether the font is still there.
    """
    try:
        path = find_cjk_font()
        if not path.is_file():
            find_cjk_font.cache_clear()
            path = find_cjk_font()
        if draw:
            render_seal("公章", "", size=64, font_path=path)
    except FontNotFound:
        return f"no font with Chinese characters is installed; {FONT_PACKAGE_HINT}"
    except OSError as exc:
        return f"the seal font cannot be read ({exc.strerror or exc}); {FONT_PACKAGE_HINT}"
    return None


def _star(cx: float, cy: float, outer: float) -> list[tuple[float, float]]:
    inner = outer * math.sin(math.radians(18)) / math.sin(math.radians(126))
    points = []
    for i in range(10):
        radius = outer if i % 2 == 0 else inner
        angle = math.radians(-90 + i * 36)
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _glyph(char: str, font: ImageFont.FreeTypeFont, size: int) -> Image.Image:
    tile = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(tile).text((size / 2, size / 2), char, font=font, fill=SEAL_RED, anchor="mm")
    return tile


def render_seal(
    name: str,
    purpose: str = "公文专用章",
    *,
    size: int = 400,
    font_path: Path | None = None,
) -> bytes:
    """A transparent PNG of ``size`` x ``size`` pixels with the seal in red."""
    if size < 64:
        raise ValueError("seal images must be at least 64 pixels wide")
    if not name:
        raise ValueError("the seal needs the department's name")
    font_file = str(font_path or find_cjk_font())
    big = size * _SUPERSAMPLE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    centre = big / 2
    ring = big * 0.035
    outer = big / 2 - ring / 2 - big * 0.01
    draw.ellipse(
        (centre - outer, centre - outer, centre + outer, centre + outer),
        outline=SEAL_RED,
        width=round(ring),
    )
    draw.polygon(_star(centre, centre, big * 0.17), fill=SEAL_RED)

    # Department name: characters upright to the arc, from lower left round to lower right.
    glyph_px = round(big * min(0.14, 1.0 / max(len(name), 1)))
    name_font = ImageFont.truetype(font_file, glyph_px)
    text_radius = outer - ring - glyph_px * 0.6
    span = min(240.0, 24.0 * len(name) + 20) if len(name) > 1 else 0.0
    tile_px = round(glyph_px * 1.5)
    for i, char in enumerate(name):
        offset = -span / 2 + (span * i / (len(name) - 1) if len(name) > 1 else 0)
        angle = math.radians(offset)
        x = centre + text_radius * math.sin(angle)
        y = centre - text_radius * math.cos(angle)
        tile = _glyph(char, name_font, tile_px).rotate(-offset, resample=Image.Resampling.BICUBIC)
        img.alpha_composite(tile, (round(x - tile_px / 2), round(y - tile_px / 2)))

    if purpose:
        purpose_px = round(big * min(0.09, 0.6 / max(len(purpose), 1)))
        purpose_font = ImageFont.truetype(font_file, purpose_px)
        draw.text(
            (centre, centre + big * 0.3), purpose, font=purpose_font, fill=SEAL_RED, anchor="mm"
        )

    out = io.BytesIO()
    img.resize((size, size), Image.Resampling.LANCZOS).save(out, format="PNG", optimize=True)
    return out.getvalue()
