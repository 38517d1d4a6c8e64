"""Organs: the engine's organ vocabulary and organ priors (probability maps on the input's grid)."""
