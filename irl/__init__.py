"""Off-policy inverse reinforcement learning (OPIRL and its baselines). Not implemented yet: see the
open issue for OPIRL; nothing here is importable API so far."""
