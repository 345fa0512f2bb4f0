"""Files: assets against a bare aiohttp ``FileResponse`` of the same bytes,
memory while a large file uploads, and the first transform of a 12-megapixel
JPEG against Pillow doing the same in this process.

(a) Requests per second for an original asset (a 1 MB JPEG) and for a cached
    transformed asset (``?width=800``), each against a bare aiohttp server
    answering ``web.FileResponse`` with the same bytes, both in their own
    process on loopback, driven by the same aiohttp client (16 connections,
    ``WOS_BENCH_FILES_SECONDS`` each, default 5; ``--quick`` 1, taken in 10
    (``--quick`` 4) alternating rounds so a change in the machine's load falls
    on both sides), with each server's CPU time per request. The assets are
    public (a ``public`` read permission on ``wos_files``), so no sign-in runs
    per request on either side, and neither server writes an access log.
(b) Uploading ``WOS_BENCH_UPLOAD_MB`` (default 200; ``--quick`` 50) MB through
    ``POST /api/files``: the server's peak RSS growth, sampled every 10 ms.
(c) First transform of a 4000x3000 JPEG to width 800 (a new file each time, so
    nothing is cached): p50 of 5 (``--quick`` 2) against Pillow opening,
    drafting, resizing and encoding the same bytes at quality 80.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, clean_env, wait_http_ok

BARE_SERVER = """
import sys
from aiohttp import web
path = sys.argv[2]
async def serve(request):
    return web.FileResponse(path)
async def health(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_get("/f", serve)
app.router.add_get("/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv: list[str], ready: str, **env: str) -> subprocess.Popen:
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=clean_env(**env))
    try:
        wait_http_ok(ready, proc, timeout=60)
    except Exception:
        proc.kill()
        log.seek(0)
        raise RuntimeError(log.read().decode(errors="replace")[-2000:]) from None
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _photo(width: int, height: int, seed: int) -> bytes:
    """A JPEG with detail (gradient plus noise), like a photo for the encoders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    base = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                           np.full((height, width, 1), 128, np.float32)], axis=2)
    pixels = np.clip(base + rng.normal(0, 12, (height, width, 3)), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


async def _load(url: str, seconds: float, connections: int = 16) -> tuple[int, float]:
    """Requests completed in ``seconds`` of load, and the time taken."""
    import aiohttp

    done = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.get(url) as r:
                    await r.read()
                    assert r.status == 200, r.status
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return done, time.perf_counter() - start


def _cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def _compare(sides: dict[str, tuple[str, int]], seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    """Load each side in turn, ``rounds`` times, so a change in the machine's
    load falls on both: requests/s over all rounds, and the server's CPU time
    per request (which the load of other processes does not inflate)."""
    totals = {name: [0, 0.0, 0.0] for name in sides}
    for _ in range(rounds):
        for name, (url, pid) in sides.items():
            cpu = _cpu(pid)
            done, took = await _load(url, seconds / rounds)
            totals[name][0] += done
            totals[name][1] += took
            totals[name][2] += _cpu(pid) - cpu
    return {name: {"rps": done / took, "cpu_us": cpu / max(done, 1) * 1e6}
            for name, (done, took, cpu) in totals.items()}


class Workeros:
    def __init__(self, data_dir: Path) -> None:
        self.port = _port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = _start([PYTHON, "-m", "workeros", "serve", "--port", str(self.port), "--data-dir",
                            str(data_dir)], self.base + "/api/server/health",
                           # Neither server writes an access log line per request.
                           WORKEROS_LOG_ACCESS="false")
        self.token = ""

    async def setup(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as s:
            body = {"email": "bench@example.com", "password": "bench-password-1"}
            async with s.post(self.base + "/api/auth/sign-up", json=body) as r:
                assert r.status == 201, await r.text()
            async with s.post(self.base + "/api/auth/login", json={**body, "mode": "json"}) as r:
                self.token = (await r.json())["data"]["access_token"]
            async with s.post(self.base + "/api/permissions", headers=self.auth, json={
                    "role": "public", "collection": "wos_files", "action": "read"}) as r:
                assert r.status in (200, 201), await r.text()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def upload(self, data: Any, filename: str = "photo.jpg") -> dict:
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as s, \
                s.post(self.base + "/api/files", data=form, headers=self.auth) as r:
            assert r.status == 201, await r.text()
            return (await r.json())["data"]


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


class _Zeros(io.RawIOBase):
    """``size`` bytes read in pieces, never held whole (the client streams it)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = os.urandom(n) if n < 4096 else bytes(n)
        self.left -= n
        return n


async def _bench(quick: bool) -> dict[str, Any]:
    seconds = float(os.environ.get("WOS_BENCH_FILES_SECONDS", 1 if quick else 5))
    upload_mb = int(os.environ.get("WOS_BENCH_UPLOAD_MB", 50 if quick else 200))
    runs = 2 if quick else 5
    rounds_load = 4 if quick else 10
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photo = _photo(1600, 1200, 1)
        server = Workeros(work / "data")
        try:
            await server.setup()
            row = await server.upload(photo)
            original = f"{server.base}/api/assets/{row['id']}"
            transformed = original + "?width=800"
            import aiohttp

            async with aiohttp.ClientSession() as s, s.get(transformed) as r:
                variant = await r.read()
            (work / "original.jpg").write_bytes(photo)
            (work / "variant.jpg").write_bytes(variant)
            results = {}
            for label, url, path in (("original", original, work / "original.jpg"),
                                     ("transformed (cached)", transformed, work / "variant.jpg")):
                port = _port()
                bare = _start([PYTHON, "-c", BARE_SERVER, str(port), str(path)], f"http://127.0.0.1:{port}/health")
                try:
                    got = await _compare({"bare": (f"http://127.0.0.1:{port}/f", bare.pid),
                                          "ours": (url, server.proc.pid)}, seconds, rounds=rounds_load)
                finally:
                    _stop(bare)
                ours, base = got["ours"], got["bare"]
                ratio = ours["rps"] / base["rps"]
                print(f"  asset {label:<22} {ours['rps']:8.0f} req/s   FileResponse {base['rps']:8.0f} req/s   "
                      f"ratio {ratio:.2f}x   server CPU/request {ours['cpu_us']:.0f} vs {base['cpu_us']:.0f} us")
                results[label] = {"rps": ours["rps"], "baseline_rps": base["rps"], "ratio": ratio,
                                  "cpu_us": ours["cpu_us"], "baseline_cpu_us": base["cpu_us"],
                                  "bytes": path.stat().st_size}
            out["assets"] = results

            # (b) a large upload: peak RSS growth of the server
            before = _rss(server.proc.pid)
            peak = before
            stop = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, _rss(server.proc.pid))
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample)
            sampler.start()
            t0 = time.perf_counter()
            try:
                big = await server.upload(io.BufferedReader(_Zeros(upload_mb * 1024 * 1024), 256 * 1024), "big.bin")
            finally:
                stop.set()
                sampler.join()
            took = time.perf_counter() - t0
            growth = (peak - before) / 1024 / 1024
            assert big["filesize"] == upload_mb * 1024 * 1024
            print(f"  upload {upload_mb} MB: server RSS growth {growth:.1f} MB (peak), {upload_mb / took:.0f} MB/s")
            out["upload"] = {"megabytes": upload_mb, "rss_growth_mb": growth, "seconds": took}

            # (c) first transform of a 12-megapixel JPEG
            big_photo = _photo(4000, 3000, 2)
            ours_times = []
            for i in range(runs):
                row = await server.upload(big_photo, f"big{i}.jpg")
                async with aiohttp.ClientSession() as s:
                    t0 = time.perf_counter()
                    async with s.get(f"{server.base}/api/assets/{row['id']}?width=800") as r:
                        await r.read()
                        assert r.status == 200
                    ours_times.append(time.perf_counter() - t0)
            bare_times = [_bare_transform(big_photo) for _ in range(runs)]
            ours_p50, bare_p50 = statistics.median(ours_times), statistics.median(bare_times)
            print(f"  first transform 12 MP -> 800 wide       {ours_p50 * 1000:8.1f} ms   Pillow "
                  f"{bare_p50 * 1000:8.1f} ms   ratio {ours_p50 / bare_p50:.2f}x")
            out["transform"] = {"p50_s": ours_p50, "baseline_p50_s": bare_p50, "ratio": ours_p50 / bare_p50,
                                "source_bytes": len(big_photo)}
        finally:
            _stop(server.proc)
    return out


def _bare_transform(data: bytes) -> float:
    from PIL import Image

    t0 = time.perf_counter()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        target = (800, round(height * 800 / width))
        image.draft("RGB", target)
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=80)
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict[str, Any]:
    return asyncio.run(_bench(quick))
