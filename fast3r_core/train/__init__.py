"""Training of small Fast3R models on procedural synthetic scenes (the bundled ``demo`` model).

Modules
-------
synthetic     numpy ray-caster of textured primitive scenes with ground-truth points and cameras
data          pre-rendered scene cache and multi-view batch sampler
loss          ``fast3r_loss``: the paper's confidence-weighted normalised pointmap regression
loop          ``train``: AdamW + warm-up/cosine, clipping, checkpoints, resume, evaluation, curves
evaluate      pose metrics of a model on held-out scene folders through the real pipeline
plot          loss / metric curves as a PNG (Pillow)
cli_commands  ``fast3r train ...`` / ``fast3r eval ...`` sub-parsers

Importing this package imports nothing heavy; ``synthetic`` and ``plot`` are numpy/Pillow only, the
others import torch.
"""
