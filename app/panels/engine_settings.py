"""Settings → Engine: where the inference process runs (this computer or a remote host over SSH) and how
several GPUs are driven (worker processes, or a Ray cluster).  A part of the Settings panel."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QVBoxLayout, QWidget

from app.panels.generate import FormRow
from app.services.settings import Settings


class EngineSettings(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.engine = QComboBox()
        self.engine.addItem("This computer", "local")
        self.engine.addItem("Remote host (SSH)", "remote")
        self.host = QLineEdit()
        self.host.setPlaceholderText("gpu-server.example.org or 192.168.1.20")
        self.user = QLineEdit()
        self.user.setPlaceholderText("your user name there (empty: ssh's default)")
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setFixedWidth(96)
        self.python = QLineEdit()
        self.python.setPlaceholderText("/home/me/fastvideo/.venv/bin/python")
        self.python.setToolTip("The Python on the remote host that has fastvideo installed; the studio runs "
                               "'<python> -m fastvideo.serve' there")
        self.outputs = QLineEdit()
        self.outputs.setToolTip("Where the remote host writes each video before it is copied back into the "
                                "output folder here")
        self.ssh_options = QLineEdit()
        self.ssh_options.setPlaceholderText("e.g. -i ~/.ssh/gpu_key  (optional)")
        self.ssh_options.setToolTip("Extra options for ssh. The studio runs your own ssh with BatchMode=yes: it "
                                    "never asks for a password, so use a key (or an agent) the host accepts, and "
                                    "connect once in a terminal to accept the host's key")
        self.backend = QComboBox()
        self.backend.addItem("Worker processes on the engine's computer", "mp")
        self.backend.addItem("Ray cluster (one rank per GPU, one host or many)", "ray")
        self.ray_address = QLineEdit()
        self.ray_address.setPlaceholderText("head-node:6379  (empty: $RAY_ADDRESS there, else a local Ray)")
        self.note = QLabel("Previews, progress and cancel work as here; finished videos are copied back into "
                           "the output folder. Model paths are the remote host's.")
        self.note.setObjectName("dimLabel")
        self.note.setWordWrap(True)
        self.rows = {"host": FormRow(self.host), "user": FormRow(self.user),
                     "port": FormRow(self.port, stretch_first=False), "python": FormRow(self.python),
                     "outputs": FormRow(self.outputs), "ssh_options": FormRow(self.ssh_options),
                     "ray_address": FormRow(self.ray_address)}
        self.remote_box = QWidget()
        remote = QFormLayout(self.remote_box)
        remote.setContentsMargins(0, 0, 0, 0)
        remote.addRow("Host", self.rows["host"])
        remote.addRow("User", self.rows["user"])
        remote.addRow("SSH port", self.rows["port"])
        remote.addRow("Remote Python", self.rows["python"])
        remote.addRow("Remote outputs", self.rows["outputs"])
        remote.addRow("SSH options", self.rows["ssh_options"])
        remote.addRow(self.note)
        multi = QFormLayout()
        multi.setContentsMargins(0, 0, 0, 0)
        multi.addRow("Several GPUs", self.backend)
        multi.addRow("Ray address", self.rows["ray_address"])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.engine)
        lay.addWidget(self.remote_box)
        lay.addLayout(multi)
        self.engine.currentIndexChanged.connect(self._sync)
        self.backend.currentIndexChanged.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        self.remote_box.setVisible(self.engine.currentData() == "remote")
        self.ray_address.setEnabled(self.backend.currentData() == "ray")

    def load(self, s: Settings) -> None:
        self.engine.setCurrentIndex(max(0, self.engine.findData(s.engine)))
        self.host.setText(s.remote_host)
        self.user.setText(s.remote_user)
        self.port.setValue(s.remote_port)
        self.python.setText(s.remote_python)
        self.outputs.setText(s.remote_output_dir)
        self.ssh_options.setText(s.remote_ssh_options)
        self.backend.setCurrentIndex(max(0, self.backend.findData(s.executor_backend)))
        self.ray_address.setText(s.ray_address)
        for r in self.rows.values():
            r.set_error(None)
        self._sync()

    def apply(self, s: Settings) -> bool:
        """Write the fields into ``s``; False (with the problem shown at its field) when they cannot work."""
        for r in self.rows.values():
            r.set_error(None)
        s.engine = self.engine.currentData()
        s.remote_host, s.remote_user = self.host.text().strip(), self.user.text().strip()
        s.remote_port = self.port.value()
        s.remote_python, s.remote_output_dir = self.python.text().strip(), self.outputs.text().strip()
        s.remote_ssh_options = self.ssh_options.text().strip()
        s.executor_backend = self.backend.currentData()
        s.ray_address = self.ray_address.text().strip()
        if " " in s.ray_address:
            self.rows["ray_address"].set_error("A Ray address is host:port (or ray://host:port), without spaces")
            return False
        remote = s.remote_engine()
        problem = remote.problem() if remote is not None else None
        if problem:
            row = ("host" if "host" in problem.lower() and "remote host where" not in problem else
                   "user" if "user" in problem.lower() else "port" if "port" in problem.lower() else
                   "python" if "Python" in problem else "ssh_options" if "SSH options" in problem else "outputs")
            self.rows[row].set_error(problem)
            return False
        return True
