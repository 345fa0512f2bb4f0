"""MIME type from a file's first bytes, never from what the client says.

Covers the formats people upload most; anything else is
``application/octet-stream`` (or ``text/plain`` when the bytes are UTF-8 text).
"""

from __future__ import annotations

#: Bytes of the head the sniffer looks at.
HEAD = 4096

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"BM", 0, "image/bmp"),
    (b"II*\x00", 0, "image/tiff"),
    (b"MM\x00*", 0, "image/tiff"),
    (b"\x00\x00\x01\x00", 0, "image/x-icon"),
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", 0, "application/x-7z-compressed"),
    (b"Rar!\x1a\x07", 0, "application/vnd.rar"),
    (b"ID3", 0, "audio/mpeg"),
    (b"OggS", 0, "audio/ogg"),
    (b"fLaC", 0, "audio/flac"),
    (b"\x1aE\xdf\xa3", 0, "video/webm"),
    (b"wOFF", 0, "font/woff"),
    (b"wOF2", 0, "font/woff2"),
    (b"\x00asm", 0, "application/wasm"),
)

#: Types served inline by the assets endpoint; everything else is an attachment.
INLINE_SAFE = frozenset({
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp", "image/x-icon",
    "application/pdf", "audio/mpeg", "audio/ogg", "audio/flac", "audio/wav", "video/mp4", "video/webm",
    "video/quicktime", "text/plain", "application/json", "font/woff", "font/woff2",
})


def sniff(head: bytes) -> str:
    for magic, offset, mime in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1"):
            return "image/heic"
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/mp4"
    if head[:2] == b"\xff\xfb" or head[:2] == b"\xff\xf3":
        return "audio/mpeg"
    return _text(head)


def _text(head: bytes) -> str:
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the head is still text.
        if exc.start < len(head) - 4:
            return "application/octet-stream"
        text = head[:exc.start].decode("utf-8")
    lowered = text.lstrip("\ufeff \t\r\n").lower()
    if lowered.startswith("<?xml") or lowered.startswith("<svg") or lowered.startswith("<!doctype svg"):
        return "image/svg+xml" if "<svg" in lowered else "application/xml"
    if lowered.startswith("<!doctype html") or any(tag in lowered[:1024] for tag in ("<html", "<head", "<body",
                                                                                       "<script", "<iframe")):
        return "text/html"
    if lowered[:1] in ("{", "["):
        return "application/json"
    return "text/plain"
