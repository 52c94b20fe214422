"""The science archive: the ArchiveGateway port's adapters."""
