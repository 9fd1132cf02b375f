"""Tools for testing referral programs and stores: hypothesis strategies, invariant checks."""
