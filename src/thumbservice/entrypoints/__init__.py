"""Entrypoints: configuration, the composition root and the aiohttp application."""
