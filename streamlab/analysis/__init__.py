"""Analysis: detectors, the executor-backed engine, and the overlay."""
