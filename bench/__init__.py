"""Benchmarks of comfy_mcp: run ``python bench/run.py`` (see bench/README.md)."""
