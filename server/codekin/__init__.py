"""codekin: local code search that learns your codebase."""

__version__ = "0.1.0"
