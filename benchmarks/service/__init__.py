"""The end-to-end benchmark of the service, run by `benchmarks/service_benchmark.py`.

`harness` starts the stack (frames, archive stand-in, S3, the service process), `run` does what
every service benchmark (this one, the cluster and the frame cache ones) does around its
measurements, `proc` reads /proc (CPU time, RSS, the service's children), `client` times
requests, `report` collects and prints the figures. The measurements, in the order they run:
`startup`, `cold`, `warm`, `single_flight`, `health`, `leftovers`, `memory`, `shutdown`.
"""
