"""Training: group sampling, cross-device negatives and the multi-process launcher."""
