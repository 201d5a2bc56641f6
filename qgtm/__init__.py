"""QGTM: a local-first systematic trading terminal for commodity ETFs."""

__version__ = "0.1.0"
