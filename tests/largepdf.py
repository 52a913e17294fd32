"""Large PDFs built on the fly: one page and an incompressible embedded file.

The attachment is random bytes from a seeded generator, so the file is deterministic,
costs no disk in the repository and cannot be shrunk by any compression on the way.
Written in chunks: building a 200 MB document never holds it in memory.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

CHUNK = 1024 * 1024
_CONTENT = b"BT /F1 14 Tf 72 770 Td (Large attachment test) Tj ET"


def write_large_pdf(path: Path, size: int, *, seed: int = 17) -> str:
    """Write a valid PDF of about *size* bytes to *path*; returns its SHA-256 (hex)."""
    payload = max(0, size - 1024)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R"
        b" /Names << /EmbeddedFiles << /Names [(data.bin) 5 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(_CONTENT), _CONTENT),
        b"<< /Type /Filespec /F (data.bin) /EF << /F 7 0 R >> >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    digest = hashlib.sha256()
    offsets: list[int] = []
    generator = random.Random(seed)
    with path.open("wb") as out:

        def write(data: bytes) -> None:
            out.write(data)
            digest.update(data)

        write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        for number, body in enumerate(objects, start=1):
            offsets.append(out.tell())
            write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
        offsets.append(out.tell())
        write(b"7 0 obj\n<< /Type /EmbeddedFile /Length %d >>\nstream\n" % payload)
        left = payload
        while left:
            step = min(CHUNK, left)
            write(generator.randbytes(step))
            left -= step
        write(b"\nendstream\nendobj\n")
        xref = out.tell()
        count = len(offsets) + 1
        table = b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
        write(b"xref\n0 %d\n0000000000 65535 f \n%s" % (count, table))
        write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref))
    return digest.hexdigest()
