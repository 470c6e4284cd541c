"""Trackpaint's headless core: video, propagation, project document, export. Never imports Qt."""

__version__ = "0.1.0"
