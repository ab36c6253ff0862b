"""Training of the built-in shapes model (a small Wan2.1 trained on procedural clips).

* :mod:`.data`: captioned clip generator (torch, deterministic from a seed);
* :mod:`.vae`, :mod:`.dit`: the VAE autoencoder and flow-matching DiT loops;
* :mod:`.export`: the Diffusers-layout model folder, preview factors;
* :mod:`.judge`: colour/direction judge; :mod:`.evaluate`: held-out accuracy.

CLI: ``fastvideo train ...``; ``python -m fastvideo.training.evaluate MODEL``.
"""
