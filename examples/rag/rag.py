"""Retrieval-augmented answers with workeros, end to end over HTTP.

1. a ``notes`` collection whose ``embedding`` follows its ``body`` text
   (``source``), filled by the server's embedder (the offline WordLlama model,
   or an OpenAI-compatible API at ``vectors.embedder_url``);
2. a few notes;
3. the ``answer`` function (``answer.js`` beside this file): it searches the
   notes nearest the question with the caller's permissions
   (``ctx.db.items("notes").nearest``), builds a prompt and, with ``CHAT_URL``
   in the server's ``functions.env``, asks a chat model.

Run against a server: ``python examples/rag/rag.py http://localhost:8055 ADMIN_TOKEN
"how long do refunds take?"``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp

NOTES = [
    "Refunds are paid back to the original card within 14 days of the return arriving.",
    "Shipping to addresses in the European Union takes three working days.",
    "Gift cards never expire and can be combined with discount codes.",
    "Returned items must be unused and in their original packaging.",
    "Our support team answers e-mails on weekdays between 9 and 17.",
]


async def setup(session: aiohttp.ClientSession, base: str, dimensions: int = 256) -> None:
    """The collection, the notes and the function (idempotent enough for a demo)."""
    async with session.post(f"{base}/api/collections", json={"collection": "notes", "fields": [
            {"field": "body", "type": "text"},
            {"field": "embedding", "type": "vector", "dimensions": dimensions, "source": "body"}]}) as r:
        if r.status not in (200, 201, 409):
            raise RuntimeError(f"creating the collection: {r.status} {await r.text()}")
    async with session.post(f"{base}/api/items/notes", json=[{"body": n} for n in NOTES]) as r:
        if r.status != 200:
            raise RuntimeError(f"adding the notes: {r.status} {await r.text()}")
    code = (Path(__file__).parent / "answer.js").read_text()
    async with session.post(f"{base}/api/functions", json={"name": "answer", "code": code}) as r:
        if r.status not in (201, 409):
            raise RuntimeError(f"creating the function: {r.status} {await r.text()}")


async def ask(session: aiohttp.ClientSession, base: str, question: str) -> dict[str, Any]:
    async with session.post(f"{base}/api/functions/answer/run", json={"question": question}) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"asking: {r.status} {body}")
        return body["data"]


async def main(base: str, token: str, question: str) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        await setup(session, base)
        result = await ask(session, base, question)
    print(result["prompt"])
    if result["answer"]:
        print("\n" + result["answer"])


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(*sys.argv[1:4]))
