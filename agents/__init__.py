"""LLM policies for idagym environments (installed as `idagym.agents`)."""

from idagym.agents.base import Policy

__all__ = ["Policy"]
