"""The llmops console: a Textual app that talks to the daemon over HTTP and SSE only."""
