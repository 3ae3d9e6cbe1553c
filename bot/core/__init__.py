"""Foundations every layer may use: validated settings, the clock, logging and the user-facing error."""
