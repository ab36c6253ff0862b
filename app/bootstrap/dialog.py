"""The first-launch window: sets up (or repairs) the inference runtime with a progress bar.

Runs the plan of :mod:`app.bootstrap.runtime` one step at a time through ``QProcess`` (the GUI
stays responsive; no threads), shows pip's lines as they come, can be cancelled (the step's
process is killed; the marker is not written, so the next launch repairs), and on a failure
shows what went wrong with Retry.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
)

from app.bootstrap import runtime as R


class BootstrapDialog(QDialog):
    """``exec()`` returns Accepted once the runtime is ready, Rejected when cancelled or closed."""

    def __init__(self, plan: R.Plan, reason: str = "", parent=None):
        super().__init__(parent)
        self.plan = plan
        self.marker: R.Marker | None = None
        self.error: str | None = None
        self.proc: QProcess | None = None
        self.index = -1
        self.outputs: dict[str, list[str]] = {}
        self._partial = b""
        self._started = 0.0
        self._cancelled = False
        self.setWindowTitle("FastVideo Studio: setting up")
        self.setMinimumSize(720, 460)

        title = QLabel("Setting up the inference runtime")
        f = title.font()
        f.setPointSize(f.pointSize() + 3)
        f.setBold(True)
        title.setFont(f)
        intro = QLabel((reason + ". " if reason else "") +
                       "FastVideo Studio installs torch and its engine once, into "
                       f"{plan.runtime}. " + " ".join(plan.notes))
        intro.setWordWrap(True)
        self.step_label = QLabel("")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.log_view.setFont(mono)
        self.buttons = QDialogButtonBox()
        self.retry_button = QPushButton("Retry")
        self.cancel_button = QPushButton("Cancel")
        self.buttons.addButton(self.retry_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.retry_button.hide()
        self.retry_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

        lay = QVBoxLayout(self)
        lay.addWidget(title)
        lay.addWidget(intro)
        lay.addWidget(self.step_label)
        lay.addWidget(self.bar)
        lay.addWidget(self.log_view, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.buttons)
        lay.addLayout(row)
        self._total = sum(s.weight for s in plan.steps) or 1.0

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        self.error = None
        self._cancelled = False
        self.retry_button.hide()
        self.cancel_button.setText("Cancel")
        self.outputs.clear()
        R.prepare_runtime_dir(self.plan)
        self._started = time.monotonic()
        self.index = -1
        self._next()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt)
        super().showEvent(event)
        if self.index < 0 and self.proc is None and self.error is None and self.marker is None:
            self.start()

    def _next(self) -> None:
        self.index += 1
        steps = self.plan.steps
        if self.index >= len(steps):
            self._done()
            return
        step = steps[self.index]
        done = sum(s.weight for s in steps[: self.index])
        self.bar.setValue(int(1000 * done / self._total))
        self.step_label.setText(f"Step {self.index + 1} of {len(steps)}: {step.label}")
        self._append(f"$ {' '.join(step.argv)}")
        self.outputs[step.key] = []
        self._partial = b""
        proc = QProcess(self)
        env = QProcessEnvironment()
        for k, v in R.child_env().items():
            env.insert(k, v)
        proc.setProcessEnvironment(env)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.setProgram(step.argv[0])
        proc.setArguments(step.argv[1:])
        proc.readyReadStandardOutput.connect(self._on_output)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self.proc = proc
        proc.start()

    def _on_output(self) -> None:
        if self.proc is None:
            return
        self._partial += bytes(self.proc.readAllStandardOutput())
        *lines, self._partial = self._partial.replace(b"\r", b"\n").split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", errors="replace").rstrip()
            if text:
                self.outputs[self.plan.steps[self.index].key].append(text)
                self._append(text)
                if self.index < len(self.plan.steps) and self.plan.steps[self.index].weight > 1:
                    self._nudge()

    def _nudge(self) -> None:
        """Inside a long pip step, creep forward per line (pip gives no total)."""
        steps = self.plan.steps
        lo = sum(s.weight for s in steps[: self.index]) / self._total
        hi = sum(s.weight for s in steps[: self.index + 1]) / self._total
        cur = self.bar.value() / 1000
        self.bar.setValue(int(1000 * min(hi - 0.005, cur + (hi - cur) * 0.04 if cur >= lo else lo)))

    def _on_finished(self, code: int, status: QProcess.ExitStatus) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        self._on_output_from(proc)
        proc.deleteLater()
        if self._cancelled:
            return
        if status != QProcess.ExitStatus.NormalExit or code != 0:
            step = self.plan.steps[self.index]
            tail = "\n".join(self.outputs.get(step.key, [])[-12:])
            self._fail(f"{step.label} failed (exit {code}).\n{tail}")
            return
        self._next()

    def _on_output_from(self, proc: QProcess) -> None:
        rest = self._partial + bytes(proc.readAllStandardOutput())
        self._partial = b""
        for raw in rest.replace(b"\r", b"\n").split(b"\n"):
            text = raw.decode("utf-8", errors="replace").rstrip()
            if text:
                self.outputs[self.plan.steps[self.index].key].append(text)
                self._append(text)

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.proc is not None:
            step = self.plan.steps[self.index]
            msg = self.proc.errorString()
            self.proc.deleteLater()
            self.proc = None
            self._fail(f"{step.label}: could not start {step.argv[0]}: {msg}")

    def _done(self) -> None:
        try:
            self.marker = R.finish(self.plan, "\n".join(self.outputs.get("verify", [])),
                                   "\n".join(self.outputs.get("model", [])), time.monotonic() - self._started)
        except OSError as exc:
            self._fail(f"could not write the runtime marker: {exc}")
            return
        self.bar.setValue(1000)
        m = self.marker
        self.step_label.setText(f"Ready in {m.seconds:.0f} s: torch {m.torch_version} ({m.torch_build}"
                                f"{', CUDA available' if m.cuda_available else ''}).")
        self.accept()

    def _fail(self, message: str) -> None:
        self.error = message
        self.step_label.setText("The setup stopped. Fix the problem below, then Retry.")
        self._append("ERROR: " + message)
        self.retry_button.show()
        self.cancel_button.setText("Close")

    def cancel(self) -> None:
        if self.proc is not None:
            self._cancelled = True
            self.proc.kill()
            self.proc.waitForFinished(3000)
            self._append("Cancelled. The setup continues on the next launch.")
        self.reject()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt)
        if self.proc is not None:
            self._cancelled = True
            self.proc.kill()
            self.proc.waitForFinished(3000)
        super().closeEvent(event)

    def _append(self, text: str) -> None:
        self.log_view.appendPlainText(text)
        self.log_view.verticalScrollBar().setValue(self.log_view.verticalScrollBar().maximum())


def ensure_runtime(parent=None, *, data_dir=None, wheels_dir=None, torch_build=None, python=None,
                   force: bool = False) -> bool:
    """Before the main window of a frozen studio: True when the runtime is ready (now or after the dialog)."""
    from PySide6.QtWidgets import QMessageBox

    try:
        status, plan = R.prepare(data_dir, wheels_dir=wheels_dir, torch_build=torch_build, python=python,
                                 force=force)
    except R.BootstrapError as exc:
        QMessageBox.critical(parent, "FastVideo Studio", f"The inference runtime cannot be set up:\n\n{exc}\n\n"
                             "The studio opens, but cannot generate until this is fixed.")
        return False
    if plan is None:
        return True
    dlg = BootstrapDialog(plan, status.reason[:1].upper() + status.reason[1:], parent)
    dlg.setWindowModality(Qt.WindowModality.ApplicationModal)
    return dlg.exec() == QDialog.DialogCode.Accepted
