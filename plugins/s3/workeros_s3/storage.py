"""S3 objects through aiobotocore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from workeros.api import NotFound, Settings, StartupError

MIN_PART = 5 * 1024 * 1024
READ_CHUNK = 256 * 1024


def missing() -> str | None:
    try:
        import aiobotocore  # noqa: F401
    except ImportError:
        return "aiobotocore is not installed (pip install 'workeros[s3]')"
    return None


def _not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("NoSuchKey", "404", "NotFound") or status == 404


class S3Storage:
    name = "s3"

    def __init__(self, *, bucket: str, region: str | None, endpoint_url: str | None, access_key_id: str | None,
                 secret_access_key: str | None, prefix: str = "", part_size: int = 8 * 1024 * 1024,
                 path_style: bool = False, create_bucket: bool = False) -> None:
        self.bucket = bucket
        self.region = region
        self.endpoint_url = endpoint_url
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.part_size = max(MIN_PART, part_size)
        self.path_style = path_style
        self.create_bucket = create_bucket
        self._client: Any = None
        self._stack: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        bucket = settings["s3.bucket"]
        if not bucket:
            raise StartupError("storage backend s3 needs s3.bucket (WORKEROS_S3_BUCKET)")
        endpoint = settings["s3.endpoint_url"]
        region = settings["s3.region"]
        if not endpoint and settings["s3.account_id"]:
            endpoint = f"https://{settings['s3.account_id']}.r2.cloudflarestorage.com"
            region = region or "auto"
        return cls(bucket=bucket, region=region or "us-east-1", endpoint_url=endpoint,
                   access_key_id=settings["s3.access_key_id"], secret_access_key=settings["s3.secret_access_key"],
                   prefix=settings["s3.prefix"] or "", part_size=settings["s3.part_size"],
                   path_style=settings["s3.path_style"], create_bucket=settings["s3.create_bucket"])

    async def client(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                from contextlib import AsyncExitStack

                from aiobotocore.config import AioConfig
                from aiobotocore.session import get_session

                config = AioConfig(s3={"addressing_style": "path" if self.path_style else "auto"},
                                   retries={"max_attempts": 3, "mode": "standard"})
                stack = AsyncExitStack()
                client = await stack.enter_async_context(get_session().create_client(
                    "s3", region_name=self.region, endpoint_url=self.endpoint_url,
                    aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
                    config=config))
                if self.create_bucket:
                    await self._ensure_bucket(client)
                self._stack, self._client = stack, client
        return self._client

    async def _ensure_bucket(self, client: Any) -> None:
        try:
            await client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            if not _not_found(exc):
                raise
            await client.create_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()

    def key(self, key: str) -> str:
        return self.prefix + key

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str | None = None) -> int:
        client = await self.client()
        extra = {"ContentType": content_type} if content_type else {}
        buffer = bytearray()
        size = 0
        upload_id = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        created = await client.create_multipart_upload(Bucket=self.bucket, Key=self.key(key), **extra)
                        upload_id = created["UploadId"]
                    body = bytes(buffer[:self.part_size])
                    del buffer[:self.part_size]
                    parts.append(await self._part(client, key, upload_id, len(parts) + 1, body))
            if upload_id is None:
                await client.put_object(Bucket=self.bucket, Key=self.key(key), Body=bytes(buffer), **extra)
                return size
            if buffer:
                parts.append(await self._part(client, key, upload_id, len(parts) + 1, bytes(buffer)))
            await client.complete_multipart_upload(Bucket=self.bucket, Key=self.key(key), UploadId=upload_id,
                                                   MultipartUpload={"Parts": parts})
            return size
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(self._abort(client, key, upload_id))
            raise

    async def _part(self, client: Any, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        answer = await client.upload_part(Bucket=self.bucket, Key=self.key(key), UploadId=upload_id,
                                          PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def _abort(self, client: Any, key: str, upload_id: str) -> None:
        try:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=self.key(key), UploadId=upload_id)
        except Exception:
            pass

    async def get(self, key: str, *, start: int | None = None, end: int | None = None) -> AsyncIterator[bytes]:
        client = await self.client()
        extra = {}
        if start is not None or end is not None:
            extra["Range"] = f"bytes={start or 0}-{'' if end is None else end}"
        try:
            response = await client.get_object(Bucket=self.bucket, Key=self.key(key), **extra)
        except Exception as exc:
            if _not_found(exc):
                raise NotFound("The file's bytes are missing from storage") from None
            raise
        body = response["Body"]
        try:
            while chunk := await body.read(READ_CHUNK):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        client = await self.client()
        await client.delete_object(Bucket=self.bucket, Key=self.key(key))

    async def _head(self, key: str) -> dict[str, Any] | None:
        client = await self.client()
        try:
            return await client.head_object(Bucket=self.bucket, Key=self.key(key))
        except Exception as exc:
            if _not_found(exc):
                return None
            raise

    async def exists(self, key: str) -> bool:
        return await self._head(key) is not None

    async def size(self, key: str) -> int | None:
        head = await self._head(key)
        return None if head is None else int(head["ContentLength"])

    async def keys(self) -> list[str]:
        """Every key under the prefix (for operators and tests)."""
        client = await self.client()
        out: list[str] = []
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            out += [item["Key"][len(self.prefix):] for item in page.get("Contents", [])]
        return sorted(out)

    async def multipart_uploads(self) -> list[str]:
        """Keys of multipart uploads started and neither completed nor aborted."""
        client = await self.client()
        answer = await client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix)
        return [u["Key"] for u in answer.get("Uploads", [])]
