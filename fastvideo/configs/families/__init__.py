"""The model families fastvideo runs; each module registers itself with ``fastvideo.configs.registry``.

A family module (torch-free: the studio reads the registry) calls ``register_family(Family(...))`` with

* ``latent_geometry(folder)``: its :class:`~fastvideo.configs.geometry.LatentGeometry` from the folder's configs;
* ``pipelines``: ``model_index.json`` ``_class_name`` -> ``PipelineEntry`` (tasks, presets, required components,
  the ``module:PIPELINES_BY_TASK`` of its stage pipelines, the denoiser experts, and a ``match`` on the index
  when several families share one class name);
* ``component_classes``: checkpoint class names -> our ``module:Class`` (and arch config);
* ``known_repos``: hub repo ids -> presets the folder alone does not tell.

Adding a family: one module here and one line below (docs/porting.md, "Adding a model family").
"""

from fastvideo.configs.families import ltx2, wan, wan22  # noqa: F401  (import order = match order)
