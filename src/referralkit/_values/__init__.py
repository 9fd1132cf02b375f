"""Layer 1: immutable values, no I/O."""
