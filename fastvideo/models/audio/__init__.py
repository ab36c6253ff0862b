"""Audio components: mel spectrogram -> waveform vocoders (LTX-2)."""
