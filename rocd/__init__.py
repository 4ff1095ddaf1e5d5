"""rocd: a real-time audio streaming daemon, wire-compatible with Roc Toolkit 0.4."""

__version__ = "0.1.0"
