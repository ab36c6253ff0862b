"""Arch configs of audio components (LTX-2's vocoder)."""
