"""Continual learning: task streams, baselines, Bayes-duality methods and forgetting metrics."""
