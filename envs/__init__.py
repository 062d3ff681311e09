"""One functional environment interface over JAX-native environments, Gymnasium and Brax. Not
implemented yet: see the open issue for the RL substrate."""
