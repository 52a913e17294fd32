"""Child process for the crash test: streams an endless, slow put until it is killed.

Prints ``streaming`` once enough has gone out that the backend holds partial data.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from keys.master import MasterKey
from storage.objects import FilesystemStoreConfig, S3StoreConfig, StoreConfig, open_store


async def main() -> None:
    spec = json.loads(sys.argv[1])
    config: StoreConfig
    if spec["kind"] == "fs":
        config = FilesystemStoreConfig(root=Path(spec["root"]))
    else:
        config = S3StoreConfig(**spec["s3"])
    store = await open_store(config, MasterKey.from_base64(os.environ["SEALHUB_TEST_MASTER_KEY"]))
    announce_after = int(spec["announce_after"])

    async def endless() -> AsyncIterator[bytes]:
        block = os.urandom(256 * 1024)
        sent = 0
        while True:
            yield block
            sent += len(block)
            if sent - len(block) < announce_after <= sent:
                print("streaming", flush=True)
            await asyncio.sleep(0.002)

    await store.put(endless(), max_bytes=2**40)


if __name__ == "__main__":
    asyncio.run(main())
