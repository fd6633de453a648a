"""Benchmark helpers: timing, reports (Markdown table, JSON, PNG) and torch reference models.

Benchmarks live in ``scripts/bench_*.py``; they time the reference (torch, plain lax) in the same
run as cnnlab and report ratios. Nothing here is imported by the library proper.
"""
