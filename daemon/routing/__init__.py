"""Routing: the complexity scorer's fitting and its shipped parameters."""
