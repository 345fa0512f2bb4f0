"""The ``s3`` storage backend (DESIGN §6 "Files"): AWS S3, Cloudflare R2 (by
account id or endpoint) and MinIO or any S3-compatible service, through
aiobotocore. Objects larger than ``s3.part_size`` go up as multipart uploads,
part by part as the bytes arrive (one part in memory at a time); an upload that
fails is aborted, so no parts are left behind. Reads stream.

Install with ``pip install 'workeros[s3]'`` (or ``workeros[r2]``).
"""

from __future__ import annotations

from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.storage import StorageBackend

from .storage import S3Storage, missing

__all__ = ["S3Storage"]

CONFIG_KEYS = (
    ConfigKey("s3.bucket", "str", None, "Bucket holding the files"),
    ConfigKey("s3.region", "str", None, "Region (default us-east-1; 'auto' for R2)"),
    ConfigKey("s3.endpoint_url", "str", None,
              "Endpoint of an S3-compatible service (MinIO, R2); default: AWS S3 for the region"),
    ConfigKey("s3.account_id", "str", None,
              "Cloudflare R2 account id: the endpoint becomes https://<id>.r2.cloudflarestorage.com"),
    ConfigKey("s3.access_key_id", "str", None, "Access key id (default: the AWS credential chain)", secret=True),
    ConfigKey("s3.secret_access_key", "str", None, "Secret access key", secret=True),
    ConfigKey("s3.prefix", "str", "", "Prefix put before every object key (a folder inside the bucket)"),
    ConfigKey("s3.part_size", "int", 8 * 1024 * 1024,
              "Part size of multipart uploads, in bytes (at least 5 MiB); smaller objects are one PUT"),
    ConfigKey("s3.path_style", "bool", False, "Address the bucket in the path (MinIO) instead of the host name"),
    ConfigKey("s3.create_bucket", "bool", False, "Create the bucket at start if it does not exist"),
)


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return list(CONFIG_KEYS)


@hookimpl
def workeros_register_storage_backends() -> list[StorageBackend]:
    return [StorageBackend(name="s3", factory=S3Storage.from_settings, priority=-1, check=missing,
                           config_keys=CONFIG_KEYS, description="AWS S3, Cloudflare R2, MinIO (aiobotocore)")]
