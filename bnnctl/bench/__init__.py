"""Benchmarks that print their figures: methods interleaved in one process, ratios quoted."""
