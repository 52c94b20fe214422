"""thumbservice: thumbnails of FITS frames from an OCS Science Archive."""

__version__ = "0.1.0"
