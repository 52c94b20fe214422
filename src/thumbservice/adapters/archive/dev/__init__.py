"""Development stand-ins of the archive, never used in production.

The sample archive behind `make run`, the generator of its realistic FITS frames, and the
permission rule that every stand-in archive (this one and the test server) applies.
"""
