"""Layer 5: adapters for the ports."""
