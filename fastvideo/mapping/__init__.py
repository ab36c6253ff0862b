"""Checkpoint-key mapping, torch-free: ordered regex rules (first match wins) from an arch config's
``param_names_mapping`` or a rules file, the mapping report (status per key, near misses by name and shape),
and rules-file parsing.  Used by the loader, conversion, LoRA loading and the studio's inspector."""
