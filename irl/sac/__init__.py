"""Soft Actor-Critic (Haarnoja et al. 2018, arXiv 1812.05905): `losses.py` (the three objectives as
pure functions), `agent.py` (config, state, `make_sac` and the `irl.loops.Agent` adapter); the
networks are the shared ones in `irl.networks`."""

from irl.sac.agent import SAC, SACConfig, SACState, as_agent, init, make_sac

__all__ = ['SAC', 'SACConfig', 'SACState', 'as_agent', 'init', 'make_sac']
