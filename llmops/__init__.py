"""The `llmops` command: one parser for the daemon's commands and the console's."""
