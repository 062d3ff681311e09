"""Off-policy RL and inverse RL: replay buffers (`irl.replay`), demonstrations (`irl.demos`), networks
(`irl.networks`), SAC (`irl.sac`), the training loops (`irl.loops`) and experts (`irl.experts`). OPIRL
and its baselines come with the OPIRL issue."""
