"""Embedders: an OpenAI-compatible HTTP endpoint (``POST {url}/embeddings``),
and a local model carried by a package (no download at run time).

The request goes through ``services.outbound``, under the same network rule as
webhooks: an embedding server on loopback or a private network must be allowed
with ``network.allow_hosts`` (or ``network.allow_private``).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from typing import Any

from workeros.api import OutboundError, OutboundRefused, ServiceUnavailable, dumps, loads, setting_or


class OpenAIEmbedder:
    """Any server speaking OpenAI's embeddings API (OpenAI, Ollama, vLLM, LM
    Studio, llama.cpp, text-embeddings-inference…)."""

    def __init__(self, url: str, model: str, *, key: str | None = None, dimensions: int | None = None,
                 batch: int = 64) -> None:
        self.url = url.rstrip("/") + "/embeddings"
        self.model = model
        self.key = key
        self.dimensions = dimensions
        self.batch = batch
        #: Set when the services open (``services.outbound``).
        self.outbound: Any = None

    @classmethod
    def from_settings(cls, settings: Any) -> OpenAIEmbedder | None:
        url = setting_or(settings, "vectors.embedder_url", None)
        if not url:
            return None  # no embedder: searches by text and `source` fields answer 503
        return cls(url, setting_or(settings, "vectors.embedder_model", "text-embedding-3-small"),
                   key=setting_or(settings, "vectors.embedder_api_key", None),
                   dimensions=setting_or(settings, "vectors.embedder_dimensions", None))

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch):
            out += await self._call(list(texts[start:start + self.batch]))
        return out

    async def _call(self, texts: list[str]) -> list[list[float]]:
        if self.outbound is None:
            raise ServiceUnavailable("The embedder is not ready")
        body: dict[str, Any] = {"model": self.model, "input": texts}
        if self.dimensions:
            body["dimensions"] = self.dimensions
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        try:
            result = await self.outbound.fetch("POST", self.url, headers=headers, data=dumps(body))
        except (OutboundError, OutboundRefused) as exc:
            raise ServiceUnavailable(f"The embedder could not be reached: {exc.message}") from None
        if result.status != 200:
            raise ServiceUnavailable(f"The embedder answered HTTP {result.status}")
        try:
            data = loads(result.body)["data"]
            ordered = sorted(data, key=lambda d: d.get("index", 0))
            vectors = [[float(x) for x in d["embedding"]] for d in ordered]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ServiceUnavailable("The embedder's answer is not an embeddings response") from None
        if len(vectors) != len(texts):
            raise ServiceUnavailable("The embedder answered a different number of vectors")
        return vectors


class LocalEmbedder:
    """WordLlama's ``l2_supercat`` model (256 dimensions), whose weights and
    tokenizer ship inside the ``wordllama`` wheel: nothing is downloaded at run
    time. Static token embeddings, average-pooled: fast on a CPU, good enough
    for "related text" search, well below a transformer model in quality."""

    dimensions = 256
    name = "wordllama"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = asyncio.Lock()

    @staticmethod
    def _load() -> Any:
        from pathlib import Path

        import wordllama
        from safetensors import safe_open
        from wordllama import WordLlama
        from wordllama.inference import WordLlamaInference

        # Built from the package's own files: WordLlama.load() looks for the
        # tokenizer in a folder the wheel does not have and would download it.
        package = Path(wordllama.__file__).parent
        tokenizer = WordLlama.load_tokenizer(package / "tokenizers" / "l2_supercat_tokenizer_config.json")
        with safe_open(str(package / "weights" / "l2_supercat_256.safetensors"), framework="np", device="cpu") as f:
            embedding = f.get_tensor("embedding.weight")
        return WordLlamaInference(embedding, tokenizer, binary=False)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        async with self._lock:
            if self._model is None:
                try:
                    self._model = await asyncio.to_thread(self._load)
                except Exception as exc:  # a broken install: say so, never an empty vector
                    raise ServiceUnavailable(f"The local embedder could not load its model "
                                             f"({type(exc).__name__})") from None
        vectors = await asyncio.to_thread(self._model.embed, list(texts))
        return [[float(x) for x in row] for row in vectors]


def wordllama_missing() -> str | None:
    # Looked up, not imported: the model library loads with the first embedding.
    if importlib.util.find_spec("wordllama") is None:
        return "wordllama is not installed (pip install workeros-vectors[local])"
    return None
