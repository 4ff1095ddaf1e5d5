"""Audio mechanisms: frames, ring buffers, resampling, mixing and device drivers."""
