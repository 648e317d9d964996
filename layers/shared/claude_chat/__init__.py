"""Shared code of the chat functions: one module per concern."""
