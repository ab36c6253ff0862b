"""The Models panel's "Download from the Hub" tab (a mixin of :class:`ModelsPanel`): resumable hub downloads
on their own thread (``app.services.downloads``)."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QWidget,
)

from app.panels.common import browse_row, form_tab
from app.services.downloads import Download, default_local_dir, free_space, human_size, human_time


class DownloadTabMixin:
    """The download form and what it does; the panel provides ``models_root``, ``tabs``, ``notify``, ``refresh``,
    ``selected_entry``, ``_selection_changed`` and ``_pick_dir``."""

    def _build_download_tab(self) -> QWidget:
        w = QWidget()
        self.repo_edit = QLineEdit()
        self.repo_edit.setPlaceholderText("owner/name, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
        self.revision_edit = QLineEdit()
        self.revision_edit.setPlaceholderText("main")
        self.local_dir_edit = QLineEdit()
        self.local_dir_edit.setPlaceholderText("<models folder>/owner--name")
        self.endpoint_edit = QLineEdit(os.environ.get("HF_ENDPOINT", ""))
        self.endpoint_edit.setPlaceholderText("https://huggingface.co (or $HF_ENDPOINT)")
        self.token_edit = QLineEdit()
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("$HF_TOKEN or the `hf auth login` token")
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("primaryButton")
        self.cancel_download_button = QPushButton("Cancel")
        self.cancel_download_button.setObjectName("dangerButton")
        self.cancel_download_button.setEnabled(False)
        self.plan_label = QLabel("Downloads resume where they stopped: finished files are never fetched again.")
        self.plan_label.setObjectName("dimLabel")
        self.plan_label.setWordWrap(True)
        self.total_bar = QProgressBar()
        self.total_bar.setRange(0, 1000)
        self.total_bar.setTextVisible(False)
        self.total_label = QLabel()
        self.total_label.setObjectName("progressLabel")
        self.file_bar = QProgressBar()
        self.file_bar.setRange(0, 1000)
        self.file_bar.setTextVisible(False)
        self.file_bar.setMaximumHeight(6)
        self.file_label = QLabel()
        self.file_label.setObjectName("dimLabel")
        self.download_error = QLabel()
        self.download_error.setObjectName("fieldError")
        self.download_error.setWordWrap(True)
        self.download_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.download_error.hide()

        form = QFormLayout()
        form.addRow("Repo id", self.repo_edit)
        rev_row = QHBoxLayout()
        rev_row.addWidget(self.revision_edit, 1)
        rev_row.addWidget(QLabel("Endpoint"))
        rev_row.addWidget(self.endpoint_edit, 2)
        form.addRow("Revision", rev_row)
        row, self.local_dir_browse = browse_row(self.local_dir_edit)
        form.addRow("Folder", row)
        form.addRow("Token", self.token_edit)
        form_tab(w, form, (self.download_button, self.cancel_download_button),
                 (self.plan_label, self.total_bar, self.total_label, self.file_bar, self.file_label,
                  self.download_error))

        self.repo_edit.textChanged.connect(self._repo_changed)
        self.local_dir_edit.textEdited.connect(lambda _t: setattr(self, "_local_dir_edited", True))
        self.local_dir_browse.clicked.connect(
            lambda: self._pick_dir(self.local_dir_edit, "Download into", mark_edited=True))
        self.download_button.clicked.connect(self.start_download)
        self.cancel_download_button.clicked.connect(self.cancel_download)
        self.repo_edit.returnPressed.connect(self.start_download)
        return w

    # ================================================================== download
    def _downloading(self) -> bool:
        return self.download is not None and self.download.is_active()

    def _repo_changed(self, text: str) -> None:
        if not self._downloading():
            self.download_button.setText("Download")
        if not self._local_dir_edited:
            rid = text.strip()
            self.local_dir_edit.setText(str(default_local_dir(self.models_root, rid)) if rid else "")

    def _resume_selected(self) -> None:
        from fastvideo.hub.download import read_manifest

        e = self.selected_entry()
        if e is None:
            return
        m = read_manifest(e.path)
        self.repo_edit.setText(str(m.get("repo_id") or ""))
        self.revision_edit.setText("" if m.get("revision") in (None, "main") else str(m["revision"]))
        if m.get("endpoint"):
            self.endpoint_edit.setText(str(m["endpoint"]))
        self.local_dir_edit.setText(str(e.path))
        self._local_dir_edited = True
        self.tabs.setCurrentIndex(0)
        self.start_download()

    def start_download(self, **options) -> Download | None:
        """Start (or resume) the download in the form; ``options`` go to ``download_repo``."""
        if self._downloading():
            return None
        rid = self.repo_edit.text().strip()
        parts = rid.split("/")
        if len(parts) != 2 or not all(parts) or " " in rid:
            self._download_failed("ValueError", "Repo id", "Enter a repo id as owner/name "
                                  "(as in the model page URL, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers).")
            return None
        local_dir = self.local_dir_edit.text().strip() or str(default_local_dir(self.models_root, rid))
        self.download_error.hide()
        self.total_bar.setValue(0)
        self.file_bar.setValue(0)
        self.total_label.setText("Asking the hub for the file list…")
        self.file_label.setText("")
        d = Download(rid, local_dir, self.revision_edit.text().strip() or None,
                     self.endpoint_edit.text().strip() or None, self.token_edit.text().strip() or None,
                     parent=self, **options)
        d.planned.connect(self._download_planned)
        d.progress.connect(self._download_progress)
        d.finished.connect(self._download_finished)
        d.failed.connect(self._download_failed)
        d.cancelled.connect(self._download_cancelled)
        self.download = d
        self._set_download_busy(True)
        d.start()
        return d

    def cancel_download(self) -> None:
        if self.download is not None and self.download.is_active():
            self.download.cancel()
            self.total_label.setText("Cancelling… (finished files and partial data are kept)")

    def _set_download_busy(self, busy: bool) -> None:
        self.download_button.setEnabled(not busy)
        self.cancel_download_button.setEnabled(busy)
        for w in (self.repo_edit, self.revision_edit, self.local_dir_edit, self.endpoint_edit, self.token_edit,
                  self.local_dir_browse):
            w.setEnabled(not busy)
        self._selection_changed()

    def _download_planned(self, plan) -> None:
        if self.download is None:
            return
        try:
            free = human_size(free_space(self.download.local_dir))
        except OSError:
            free = "?"
        self.plan_label.setText(f"{plan.repo_id}@{plan.commit[:12]}: {len(plan.files)} files, "
                                f"{human_size(plan.total_bytes)} → {self.download.local_dir} ({free} free)"
                                + (" · gated" if plan.gated else ""))

    def _download_progress(self, p) -> None:
        if p.kind == "retry":
            self.file_label.setText(p.message)
            return
        self.total_bar.setValue(int(1000 * p.fraction))
        if p.file_total:
            self.file_bar.setValue(int(1000 * p.file_bytes / p.file_total))
        self.total_label.setText(
            f"{100 * p.fraction:.1f}% · {human_size(p.bytes_done)} of {human_size(p.bytes_total)} · "
            f"files {p.files_done}/{p.files_total} · {human_size(p.speed)}/s · {human_time(p.eta)} left")
        if p.file:
            self.file_label.setText(f"{p.file}: {human_size(p.file_bytes)} of {human_size(p.file_total)}")
        elif p.kind == "done":
            self.file_label.setText("All files verified.")

    def _download_finished(self, path: str) -> None:
        self._set_download_busy(False)
        self.download_button.setText("Download")
        self.total_bar.setValue(1000)
        self.file_bar.setValue(1000)
        self.notify.emit(f"Downloaded {self.download.repo_id if self.download else ''} into {path}.", "info")
        self.refresh()

    def _download_failed(self, cls: str, title: str, message: str) -> None:
        self._set_download_busy(False)
        if self.download is not None and self.download.plan is not None:
            self.download_button.setText("Resume")
        self.download_error.setText(f"<b>{title}</b>: {message}")
        self.download_error.show()
        self.total_label.setText("Stopped." + (" Finished files are kept; Resume continues."
                                               if cls in ("HubOfflineError", "IntegrityError", "DownloadError")
                                               else ""))
        self.refresh()

    def _download_cancelled(self) -> None:
        self._set_download_busy(False)
        self.download_button.setText("Resume")
        self.total_label.setText("Cancelled. Finished files and partial data are kept; Resume continues "
                                 "from there (also after a restart).")
        self.refresh()
