"""Backend selection: one frozen dataclass per backend, built by the gateway's config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024
# S3 refuses non-final multipart parts under 5 MiB.
S3_MIN_PART_SIZE = 5 * MIB


@dataclass(frozen=True)
class FilesystemStoreConfig:
    """Encrypted files under *root* (created 0700 if missing)."""

    root: Path


@dataclass(frozen=True)
class S3StoreConfig:
    """An S3-protocol service; ``endpoint`` is ``host:port`` without a scheme."""

    endpoint: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    bucket: str
    region: str = "us-east-1"
    secure: bool = True
    # Uploads buffer one part in memory; reads stream in chunks of this size.
    part_size: int = 8 * MIB
    read_chunk_size: int = 1 * MIB
    # Transient failures (connection errors, 5xx, SlowDown) are retried this many times.
    max_attempts: int = 5
    retry_base_delay: float = 0.2

    def __post_init__(self) -> None:
        if self.part_size < S3_MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {S3_MIN_PART_SIZE} bytes")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


StoreConfig = FilesystemStoreConfig | S3StoreConfig
