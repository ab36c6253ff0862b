"""The inference process the studio owns, and the protocol it speaks.

``python -m fastvideo.serve`` runs :func:`fastvideo.serve.host.main`;
:mod:`fastvideo.serve.protocol` is torch-free and shared with the studio.
Nothing here may print at import time: stdout is the protocol channel.
"""
