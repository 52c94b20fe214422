"""Renderers: the ImageRenderer port's adapters and what runs in their worker processes."""
