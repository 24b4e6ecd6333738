"""Benchmarks: HTTP side-by-side, predictor micro-benchmarks, Locust runs, Inference Recommender."""
