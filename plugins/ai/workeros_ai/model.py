"""The model behind the AI endpoints: the Anthropic Messages API through the
``anthropic`` SDK, asked to answer through exactly one tool whose input schema
constrains the answer. No key configured → 503; anything the provider answers
other than a tool call (an HTTP error, a timeout, text) → 502."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from workeros.api import BadGateway, ServiceUnavailable, Settings, setting_or

log = logging.getLogger("workeros.ai")

DEFAULT_MODEL = "claude-haiku-4-5"
NO_KEY = ("No AI provider key is configured: set ai.api_key (WORKEROS_AI_API_KEY) or the ANTHROPIC_API_KEY "
          "environment variable")


@dataclass(frozen=True)
class Answer:
    """The tool input the model answered with, the model that answered and
    the tokens it took."""

    input: dict[str, Any]
    model: str
    usage: dict[str, int]


class Model:
    """One configured model (``ai.model``, ``ai.api_key``, ``ai.base_url``);
    the SDK client is made on first use and closed at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.name = setting_or(settings, "ai.model", None) or DEFAULT_MODEL
        self.base_url = setting_or(settings, "ai.base_url", None) or None
        self.max_tokens = int(setting_or(settings, "ai.max_tokens", 2048))
        self.timeout = float(setting_or(settings, "ai.timeout", 60.0))
        self.max_retries = int(setting_or(settings, "ai.max_retries", 2))
        self._key = setting_or(settings, "ai.api_key", None) or os.environ.get("ANTHROPIC_API_KEY") or None
        self._client: Any = None

    @property
    def configured(self) -> bool:
        return bool(self._key)

    def client(self) -> Any:
        if not self._key:
            raise ServiceUnavailable(NO_KEY)
        if self._client is None:
            import anthropic

            self._client = anthropic.AsyncAnthropic(api_key=self._key, base_url=self.base_url,
                                                    timeout=self.timeout, max_retries=self.max_retries)
        return self._client

    async def ask(self, *, system: str, prompt: str, tool: dict[str, Any]) -> Answer:
        """Ask with ``tool`` forced; the input of the model's ``tool_use`` block."""
        import anthropic

        client = self.client()
        try:
            message = await client.messages.create(
                model=self.name, max_tokens=self.max_tokens, system=system,
                messages=[{"role": "user", "content": prompt}],
                tools=[tool], tool_choice={"type": "tool", "name": tool["name"]})
        except anthropic.APIStatusError as exc:
            log.warning("AI provider answered HTTP %s", exc.status_code)
            raise BadGateway(f"The AI provider refused the request (HTTP {exc.status_code})",
                             upstream_status=exc.status_code) from None
        except anthropic.APITimeoutError:
            raise BadGateway("The AI provider did not answer in time") from None
        except anthropic.APIConnectionError:
            raise BadGateway("The AI provider could not be reached") from None
        except anthropic.APIError:
            raise BadGateway("The AI provider's answer could not be read") from None
        usage = getattr(message, "usage", None)
        spent = {"input_tokens": int(getattr(usage, "input_tokens", 0) or 0),
                 "output_tokens": int(getattr(usage, "output_tokens", 0) or 0)}
        for block in message.content or ():
            if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == tool["name"]:
                value = block.input
                if not isinstance(value, dict):
                    break
                return Answer(value, getattr(message, "model", None) or self.name, spent)
        raise BadGateway("The AI provider answered without the requested tool call", usage=spent)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
