"""llmtap benchmarks: ``python -m bench`` (load bench) and pytest-benchmark microbenches."""
