"""Observation beside the pipeline: metrics, structured logs, health, observers."""
