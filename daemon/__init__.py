"""llmops daemon: a local OpenAI-compatible LLMOps gateway."""

__version__ = "0.1.0"
