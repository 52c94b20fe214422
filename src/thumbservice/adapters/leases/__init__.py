"""LeaseStore adapters: one render across replicas, with the store's conditional writes."""
