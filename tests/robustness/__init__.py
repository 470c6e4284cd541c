"""Robustness tests: bad inputs, crash safety (SIGKILL), loader fuzzing."""
