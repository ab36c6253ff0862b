"""Process groups and collectives for multi-GPU inference."""
