"""Object stores: the ObjectStore port's adapters (S3 and the local filesystem)."""
