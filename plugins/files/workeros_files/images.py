"""Image transforms with Pillow, off the event loop.

A transform is parsed and checked completely before any pixel is touched
(:func:`parse_params`); the source's dimensions are read from its header and
compared with ``assets.max_pixels`` before decoding; JPEG sources are decoded
in draft mode at the smallest scale that still covers the target. The work
runs in a dedicated thread pool whose size is the concurrency limit, so a burst
of transforms queues instead of stalling the event loop or exhausting memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from workeros.api import InvalidQuery, PayloadTooLarge, UnsupportedMediaType, dumps_str

if TYPE_CHECKING:
    from PIL import Image

FITS = ("cover", "contain", "inside", "outside")
FORMATS = ("jpg", "png", "webp", "avif", "auto")
PARAMS = ("width", "height", "fit", "quality", "format", "key")
MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
PIL_FORMAT = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "avif": "AVIF"}
#: Source types Pillow decodes for transforms (SVG and the like are not images here).
SOURCE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp",
                          "image/tiff"})
SOURCE_FORMAT = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/avif": "avif"}


def _pil() -> Any:
    """Pillow, imported at the first image read rather than at start."""
    import PIL.features  # noqa: F401 (loaded for avif_available)
    import PIL.Image
    import PIL.ImageOps  # noqa: F401 (loaded for render)

    # Our own pixel limit is checked before decoding; Pillow's warning-level check
    # would only duplicate it with a different number.
    PIL.Image.MAX_IMAGE_PIXELS = None
    return PIL


def avif_available() -> bool:
    try:
        return bool(_pil().features.check("avif"))
    except Exception:  # an older Pillow without the feature name
        return False


@dataclass(frozen=True)
class Transform:
    width: int | None = None
    height: int | None = None
    fit: str = "cover"
    quality: int = 80
    format: str | None = None  # None: keep the source's format

    def canonical(self) -> str:
        return dumps_str({"w": self.width, "h": self.height, "fit": self.fit, "q": self.quality, "f": self.format})


def _int(name: str, raw: Any, low: int, high: int) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidQuery(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise InvalidQuery(f"{name} must be between {low} and {high}")
    return value


def parse_params(query: Mapping[str, str], *, mode: str, presets: Mapping[str, Any],
                 max_dimension: int) -> Transform | None:
    """The transform a query string asks for (``None``: the original), or 400."""
    asked = {k: query[k] for k in PARAMS if k in query}
    if not asked:
        return None
    if mode == "none":
        raise InvalidQuery("Image transforms are turned off on this server")
    if "key" in asked:
        if len(asked) > 1:
            raise InvalidQuery("key= cannot be combined with other transform parameters")
        preset = presets.get(asked["key"])
        if not isinstance(preset, Mapping):
            raise InvalidQuery(f"Unknown transform preset {str(asked['key'])[:80]!r}")
        asked = {k: v for k, v in preset.items() if k in PARAMS and k != "key"}
    elif mode == "presets":
        raise InvalidQuery("Only presets (key=) are allowed for transforms on this server")
    width = _int("width", asked["width"], 1, max_dimension) if "width" in asked else None
    height = _int("height", asked["height"], 1, max_dimension) if "height" in asked else None
    fit = str(asked.get("fit", "cover"))
    if fit not in FITS:
        raise InvalidQuery(f"fit must be one of: {', '.join(FITS)}")
    quality = _int("quality", asked["quality"], 1, 100) if "quality" in asked else 80
    fmt = asked.get("format")
    if fmt is not None:
        fmt = {"jpeg": "jpg"}.get(str(fmt), str(fmt))
        if fmt not in FORMATS:
            raise InvalidQuery(f"format must be one of: {', '.join(FORMATS)}")
        if fmt == "avif" and not avif_available():
            raise InvalidQuery("format avif is not available on this server")
    return Transform(width, height, fit, quality, fmt)


def negotiate(transform: Transform, accept: str, source_type: str) -> tuple[Transform, bool]:
    """Resolve ``format=auto`` from ``Accept`` (the best format it allows);
    returns the transform and whether the answer varies with ``Accept``."""
    if transform.format != "auto":
        return transform, False
    accept = accept.lower()
    if "image/avif" in accept and avif_available():
        fmt = "avif"
    elif "image/webp" in accept:
        fmt = "webp"
    else:
        fmt = "png" if source_type in ("image/png", "image/gif") else "jpg"
    return Transform(transform.width, transform.height, transform.fit, transform.quality, fmt), True


@lru_cache(maxsize=4096)
def cache_key(file_id: str, checksum: str | None, transform: Transform) -> str:
    """The variant's object key (the same for the same file bytes and transform)."""
    digest = hashlib.sha256(f"{file_id}|{checksum}|{transform.canonical()}".encode()).hexdigest()
    return f"cache/{file_id}/{digest[:40]}"


def output_format(transform: Transform, source_type: str) -> str:
    return transform.format or SOURCE_FORMAT.get(source_type, "png")


def header_size(source: Any) -> tuple[int, int] | None:
    """Width and height from an image's header (no pixels decoded), or None."""
    try:
        with _pil().Image.open(source) as image:
            return image.size
    except Exception:
        return None


def _target(src: tuple[int, int], t: Transform) -> tuple[int, int]:
    sw, sh = src
    if t.width and t.height:
        return t.width, t.height
    if t.width:
        return t.width, max(1, round(sh * t.width / sw))
    if t.height:
        return max(1, round(sw * t.height / sh)), t.height
    return sw, sh


def render(source: Any, t: Transform, fmt: str, *, max_pixels: int) -> bytes:
    """Decode ``source`` (a path or a binary file), transform, encode. Runs in
    a worker thread."""
    pil = _pil()
    try:
        image = pil.Image.open(source)
    except Exception:
        raise UnsupportedMediaType("The file is not an image this server can transform") from None
    with image:
        sw, sh = image.size
        if sw * sh > max_pixels:
            raise PayloadTooLarge(f"The image has {sw}x{sh} pixels, over this server's limit of {max_pixels}")
        tw, th = _target((sw, sh), t)
        if image.format == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale when that still covers the target.
            scale = max(tw / sw, th / sh)
            image.draft("RGB", (max(1, int(sw * scale)), max(1, int(sh * scale))))
        try:
            image.load()
        except Exception:
            raise UnsupportedMediaType("The image could not be decoded") from None
        image = pil.ImageOps.exif_transpose(image)
        if (t.width or t.height) and (tw, th) != image.size:
            image = _fit(image, t, _target(image.size, t) if not (t.width and t.height) else (tw, th))
        return _encode(image, fmt, t.quality)


def _fit(image: Image.Image, t: Transform, box: tuple[int, int]) -> Image.Image:
    pil = _pil()
    ImageOps = pil.ImageOps
    resample = pil.Image.Resampling.LANCZOS
    if not (t.width and t.height):
        return image.resize(box, resample, reducing_gap=3.0)
    if t.fit == "cover":
        return ImageOps.fit(image, box, resample)
    if t.fit == "contain":
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA")
        color = (0, 0, 0, 0) if image.mode == "RGBA" else (255, 255, 255)
        return ImageOps.pad(image, box, resample, color=color)
    if t.fit == "inside":
        return ImageOps.contain(image, box, resample)
    # outside: the smallest size covering the box, aspect kept
    sw, sh = image.size
    scale = max(box[0] / sw, box[1] / sh)
    return image.resize((max(1, round(sw * scale)), max(1, round(sh * scale))), resample, reducing_gap=3.0)


def _encode(image: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "jpg":
        if image.mode != "RGB":
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=quality, optimize=False)
    elif fmt == "png":
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            image = image.convert("RGBA")
        image.save(out, "PNG", compress_level=6)
    else:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode or image.mode == "P" else "RGB")
        image.save(out, PIL_FORMAT[fmt], quality=quality)
    return out.getvalue()


class Transformer:
    """The thread pool for transforms, and one in-flight computation per cache
    key (a burst of requests for one new variant renders it once)."""

    def __init__(self, concurrency: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="wos-assets")
        self.inflight: dict[str, asyncio.Future[Any]] = {}

    async def run(self, key: str, work: Any) -> Any:
        """``work()`` is an async callable; its result is shared with every
        caller asking for ``key`` while it runs."""
        running = self.inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.inflight[key] = future
        try:
            result = await work()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when no one else waited
            raise
        else:
            future.set_result(result)
            return result
        finally:
            del self.inflight[key]

    async def render(self, source: Any, t: Transform, fmt: str, *, max_pixels: int) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: render(source, t, fmt, max_pixels=max_pixels))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
