"""Performance tools: FLOP counts, measured ceilings, the benchmark behind ``fastvideo bench``."""
