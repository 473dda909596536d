"""Provider adapters: turn a ChatRequest into an HTTP call and an HTTP answer into a ChatResponse.

Adapters are stateless and know nothing about pacing or retries; the endpoint pool owns those.
"""

from __future__ import annotations

from engine.endpoints.providers.anthropic import AnthropicProvider
from engine.endpoints.providers.base import HttpCall, Provider
from engine.endpoints.providers.openai import OpenAIProvider

__all__ = ["HttpCall", "Provider", "provider_for"]

_PROVIDERS: dict[str, Provider] = {"openai": OpenAIProvider(), "anthropic": AnthropicProvider()}


def provider_for(api: str) -> Provider:
    return _PROVIDERS[api]
