"""Layers by kind; ``dlbasics.nn`` re-exports them flat."""
