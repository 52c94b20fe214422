"""The pure core: requests, frame rules, cache keys, errors, ports and the use case.

Nothing here imports a framework or an adapter (an import-linter contract checks it).
"""
