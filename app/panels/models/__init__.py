"""The Models panel: installed models (``panel``), hub downloads (``download_tab``), conversion and
hub-ready folders (``convert_tab``), the "does the checkpoint fit" column (``fit``)."""

from app.panels.models.convert_tab import DEFAULT_FLOW_SHIFT
from app.panels.models.fit import FitModelsTableModel
from app.panels.models.panel import ModelsPanel, default_models_root

__all__ = ["DEFAULT_FLOW_SHIFT", "FitModelsTableModel", "ModelsPanel", "default_models_root"]
