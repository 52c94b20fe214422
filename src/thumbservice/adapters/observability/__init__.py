"""Metrics and logs: the Telemetry port's adapter and the structlog set-up."""
