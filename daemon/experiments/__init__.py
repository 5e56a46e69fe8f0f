"""Prompt experiments: the book of experiments a daemon runs, and their per-arm statistics."""
