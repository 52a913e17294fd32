"""A gateway's supervision loop alone in a process, to be run twice and killed."""

from __future__ import annotations

import asyncio
import sys

from gateway.supervision.rules import RuleConfig
from gateway.supervision.service import SupervisionService
from storage.db import create_pool


async def evaluator(url: str) -> None:
    pool = await create_pool(url, min_size=1, max_size=2)
    service = SupervisionService(pool, RuleConfig(), interval=0.2)
    task = asyncio.create_task(service.run())
    print("STARTED", flush=True)
    announced = -1
    while not task.done():
        # Announce every pass this process made as the evaluator.
        if service.is_evaluator and service.passes != announced:
            announced = service.passes
            print(f"EVALUATED {announced}", flush=True)
        await asyncio.sleep(0.05)
    await task


if __name__ == "__main__":
    asyncio.run(evaluator(sys.argv[1]))
