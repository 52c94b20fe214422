"""Adapters: the archive, the renderer, the object stores, the scratch space, the telemetry."""
