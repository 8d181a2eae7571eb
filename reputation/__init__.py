"""Scam phone number reputation service."""

__version__ = "0.1.0"
