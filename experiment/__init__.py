"""Experiment plumbing shared by `cl/` and `irl/`: checkpoints, metric writers, config checks.

Nothing in here knows about a particular method; the libraries never import it (they report through
callbacks), only the scripts and tests do.
"""
