"""The Qt side of the panel (PythonQt, runs only inside Slicer): reads the widgets into Parameters, forwards
clicks to PanelController and shows what it reports. Behaviour lives in the plain classes it uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ctk
import qt
import slicer

from . import dependencies, device, models, presets
from .clicks import ClickSession
from .command import engine_environment, python_executable
from .demo_case import load_demo_case
from .engine_server import session_server
from .i18n import _
from .model_tasks import ModelTasks
from .panel import PanelController
from .parameters import DEVICES, INPUT_VOLUME_REFERENCE, MODALITIES, OUTPUT_SEGMENTATION_REFERENCE, QUALITIES, Parameters
from .presets import PromptHistory
from .results import LoadedResults, row_texts
from .runner import ProcessResult, ProcessRunner
from .server_logic import ServerLogic

POLL_INTERVAL_MS = 100
CLICK_SHORTCUTS = {"positive": "Shift+P", "negative": "Shift+N", "box": "Shift+B"}


def save_state_for_undo(segmentation_node: Any) -> None:
    """Before a click changes a segment: Segment Editor's undo gets the state to go back to."""
    try:
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        if editor.segmentationNode() is not segmentation_node:
            editor.setSegmentationNode(segmentation_node)
        editor.saveStateForUndo()
    except AttributeError:  # no Segment Editor module (a custom application)
        pass


class QtPanel:
    """Implements PanelView with the widgets of Resources/UI/DiffuGTSSlicer.ui."""

    def __init__(self, ui_widget: Any, parameter_node: Callable[[], Any]) -> None:
        self.ui = slicer.util.childWidgetVariables(ui_widget)
        self.parameter_node = parameter_node  # called each time: the node changes when the scene is closed
        self.logic = ServerLogic(session_server(), before_change=save_state_for_undo)  # or the Server URL's
        self.controller = PanelController(self, self.logic, PromptHistory(qt.QSettings()))
        self.clicks = ClickSession(self.logic, organ=self._organ)
        self.clicks.sent.connect(self.correction_sent)
        self.model_choices = models.model_choices([])
        self.shortcuts: list[Any] = []
        self.probe = ProcessRunner()
        self.tools = ModelTasks(lambda: engine_environment(self.parameters()))
        self.probe_lines: list[str] = []
        self.device_info = device.DeviceInfo()
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)
        self.timer.connect("timeout()", self._poll)
        self.ui.modelsFolderPathLineEdit.filters = ctk.ctkPathLineEdit.Dirs
        for path_edit in (self.ui.headsPathLineEdit, self.ui.refinePathLineEdit):
            path_edit.filters = ctk.ctkPathLineEdit.Files
        self._load_parameters()
        self._connect()
        self.refresh_setup()
        if hasattr(slicer.app, "connect"):
            slicer.app.connect("aboutToQuit()", self.close)  # the warm engine ends with Slicer

    def _connect(self) -> None:
        ui = self.ui
        ui.segmentButton.connect("clicked(bool)", lambda _checked: self.segment_or_cancel())
        for sequence in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = qt.QShortcut(qt.QKeySequence(sequence), ui.promptsTextEdit)
            shortcut.setContext(qt.Qt.WidgetShortcut)
            shortcut.connect("activated()", self.segment_or_cancel)
        ui.presetsComboBox.connect("activated(int)", lambda index: self._add_prompt(ui.presetsComboBox, index))
        ui.historyComboBox.connect("activated(int)", lambda index: self._add_prompt(ui.historyComboBox, index))
        ui.modalityComboBox.connect("currentIndexChanged(int)", lambda _index: self._fill_presets())
        for combo in (ui.qualityComboBox, ui.deviceComboBox):
            combo.connect("currentIndexChanged(int)", lambda _index: self._update_estimate())
        ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", lambda _node: self._update_estimate())
        ui.installButton.connect("clicked(bool)", lambda _checked: self._install())
        ui.downloadButton.connect("clicked(bool)", lambda _checked: self._download())
        ui.deleteModelsButton.connect("clicked(bool)", lambda _checked: self._delete_models())
        ui.modelsFolderPathLineEdit.connect("currentPathChanged(QString)",
                                            lambda _path: self._start_tools(self.tools.refresh))
        self.probe.log.connect(self.probe_lines.append)
        self.probe.finished.connect(self._on_probe_finished)
        self.tools.log.connect(self.append_log)
        self.tools.runner.progress.connect(lambda stage, fraction: self.set_progress(stage, round(100 * fraction)))
        self.tools.listed.connect(self._show_models)
        self.tools.failed.connect(self.show_error)
        for kind, button in (("positive", ui.positivePointButton), ("negative", ui.negativePointButton),
                             ("box", ui.boxButton)):
            button.connect("clicked(bool)", lambda _checked, k=kind: self.place(k))
            shortcut = qt.QShortcut(qt.QKeySequence(CLICK_SHORTCUTS[kind]), ui.clickButtonsLayoutWidget)
            shortcut.setContext(qt.Qt.ApplicationShortcut)  # from the slice views too, while the module is shown
            shortcut.connect("activated()", lambda k=kind: self.place(k))
            self.shortcuts.append(shortcut)
        ui.clearClicksButton.connect("clicked(bool)", lambda _checked: self.clicks.clear())
        ui.resultsTable.connect("currentCellChanged(int,int,int,int)", lambda row, *_rest: self.clicks.select(row))
        ui.organSegmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", lambda node: self._fill_organs(node))
        ui.organSegmentComboBox.connect("activated(int)", lambda _index: self._organ_changed())
        ui.loadDemoButton.connect("clicked(bool)", lambda _checked: self.load_demo())

    # --- parameters -------------------------------------------------------------------------------------
    def parameters(self) -> Parameters:
        ui = self.ui
        return Parameters(
            prompts=Parameters.prompts_from_text(ui.promptsTextEdit.plainText),
            modality=MODALITIES[ui.modalityComboBox.currentIndex], quality=QUALITIES[ui.qualityComboBox.currentIndex],
            device=DEVICES[ui.deviceComboBox.currentIndex], load_heat_map=ui.heatMapCheckBox.checked,
            load_pseudo_healthy=ui.pseudoHealthyCheckBox.checked, load_uncertainty=ui.uncertaintyCheckBox.checked,
            models_folder=ui.modelsFolderPathLineEdit.currentPath, server_url=ui.serverUrlLineEdit.text.strip(),
            server_token=ui.serverTokenLineEdit.text, backbone=self._model().backbone, weights=self._model().weights,
            heads=ui.headsPathLineEdit.currentPath, refine=ui.refinePathLineEdit.currentPath)

    def _model(self) -> models.ModelChoice:
        index = self.ui.modelComboBox.currentIndex
        return self.model_choices[index] if 0 <= index < len(self.model_choices) else self.model_choices[0]

    def _load_parameters(self) -> None:
        node = self.parameter_node()
        stored = Parameters.read_from(node)
        ui = self.ui
        ui.promptsTextEdit.setPlainText("\n".join(stored.prompts))
        ui.modalityComboBox.currentIndex = MODALITIES.index(stored.modality)
        ui.qualityComboBox.currentIndex = QUALITIES.index(stored.quality)
        ui.deviceComboBox.currentIndex = DEVICES.index(stored.device)
        ui.heatMapCheckBox.checked = stored.load_heat_map
        ui.pseudoHealthyCheckBox.checked = stored.load_pseudo_healthy
        ui.uncertaintyCheckBox.checked = stored.load_uncertainty
        ui.modelsFolderPathLineEdit.currentPath = stored.models_folder
        ui.serverUrlLineEdit.text = stored.server_url
        ui.headsPathLineEdit.currentPath = stored.heads
        ui.refinePathLineEdit.currentPath = stored.refine
        self._fill_models(stored.backbone, stored.weights)
        ui.inputVolumeSelector.setCurrentNode(node.GetNodeReference(INPUT_VOLUME_REFERENCE))
        ui.outputSegmentationSelector.setCurrentNode(node.GetNodeReference(OUTPUT_SEGMENTATION_REFERENCE))
        self._fill_presets()
        self._fill_history()

    def _save_parameters(self, parameters: Parameters) -> None:
        node = self.parameter_node()
        parameters.write_to(node)
        for reference, selector in ((INPUT_VOLUME_REFERENCE, self.ui.inputVolumeSelector),
                                    (OUTPUT_SEGMENTATION_REFERENCE, self.ui.outputSegmentationSelector)):
            chosen = selector.currentNode()
            node.SetNodeReferenceID(reference, chosen.GetID() if chosen else None)

    # --- prompts --------------------------------------------------------------------------------------
    def _fill_presets(self) -> None:
        combo = self.ui.presetsComboBox
        combo.clear()
        combo.addItem(_("Add a common tumor type..."))
        for prompt in presets.presets_for(MODALITIES[self.ui.modalityComboBox.currentIndex]):
            combo.addItem(prompt)

    def _fill_history(self) -> None:
        combo = self.ui.historyComboBox
        combo.clear()
        combo.addItem(_("Recent prompts..."))
        for prompt in self.controller.history.entries():
            combo.addItem(prompt)

    def _add_prompt(self, combo: Any, index: int) -> None:
        if index > 0:
            text = self.ui.promptsTextEdit.plainText.rstrip("\n")
            self.ui.promptsTextEdit.setPlainText(f"{text}\n{combo.itemText(index)}" if text else combo.itemText(index))
        combo.setCurrentIndex(0)

    # --- run ------------------------------------------------------------------------------------------
    def segment_or_cancel(self) -> None:
        parameters = self.parameters()
        if not self.logic.running:
            self._save_parameters(parameters)
            self.ui.logTextEdit.clear()
        self.controller.segment_or_cancel(self.ui.inputVolumeSelector.currentNode(), parameters,
                                          self.ui.outputSegmentationSelector.currentNode(), self._organ())
        self._fill_history()
        if self.logic.running:
            self.timer.start()

    def _poll(self) -> None:
        running = self.logic.poll() | self.probe.poll() | self.tools.poll()
        if not running:
            self.timer.stop()

    def set_running(self, running: bool) -> None:
        self.ui.segmentButton.text = _("Cancel") if running else _("Segment")
        for widget in (self.ui.inputsCollapsibleButton, self.ui.outputsCollapsibleButton, self.ui.installButton):
            widget.enabled = not running
        if running:
            self.timer.start()

    def set_progress(self, text: str, percent: int) -> None:
        self.ui.statusLabel.text = text
        self.ui.progressBar.value = percent

    def append_log(self, line: str) -> None:
        self.ui.logTextEdit.appendPlainText(line)

    def show_error(self, message: str) -> None:
        self.ui.statusLabel.text = message
        slicer.util.errorDisplay(message, detailedText=self.ui.logTextEdit.plainText)

    def show_results(self, results: LoadedResults) -> None:
        table = self.ui.resultsTable
        table.setRowCount(len(results.rows))
        for row, result in enumerate(results.rows):
            for column, text in enumerate(row_texts(result)):
                table.setItem(row, column, qt.QTableWidgetItem(text))
        self.ui.outputSegmentationSelector.setCurrentNode(results.segmentation_node)
        self.clicks.set_results(results, self.ui.inputVolumeSelector.currentNode(), self.parameters())
        table.setCurrentCell(0, 0)
        self.ui.clicksLabel.text = _("Place points (Shift+P: on what was missed, Shift+N: on what is wrong) or a "
                                     "box (Shift+B) for the selected prompt; each one corrects its segment.")
        heat_maps = [node for name, node in results.volumes.items() if name.startswith("attention_")]
        slicer.util.setSliceViewerLayers(background=self.ui.inputVolumeSelector.currentNode(),
                                         foreground=heat_maps[0] if heat_maps else None, foregroundOpacity=0.5)
        three_d = slicer.app.layoutManager().threeDWidget(0)
        if three_d:
            three_d.threeDView().resetFocalPoint()

    def show_update(self, results: LoadedResults, index: int) -> None:
        for column, text in enumerate(row_texts(results.rows[index])):
            self.ui.resultsTable.setItem(index, column, qt.QTableWidgetItem(text))

    # --- clicks, organ, demo ------------------------------------------------------------------------------
    def place(self, kind: str) -> None:
        problem = self.clicks.place(kind)
        if problem:
            self.ui.statusLabel.text = problem

    def correction_sent(self, prompt: str) -> None:
        """The session sent a prompt again (a click, an organ): the timer brings its result."""
        self.controller.correction_started(prompt)

    def _organ(self) -> tuple[Any, str]:
        node = self.ui.organSegmentationSelector.currentNode()
        index = self.ui.organSegmentComboBox.currentIndex
        segment = self.ui.organSegmentComboBox.itemData(index) if node is not None and index > 0 else ""
        return node, segment or ""

    def _fill_organs(self, node: Any) -> None:
        combo = self.ui.organSegmentComboBox
        combo.clear()
        combo.addItem(_("All segments"), "")
        if node is not None:
            segmentation = node.GetSegmentation()
            for number in range(segmentation.GetNumberOfSegments()):
                combo.addItem(segmentation.GetNthSegment(number).GetName(), segmentation.GetNthSegmentID(number))
        self._organ_changed()

    def _organ_changed(self) -> None:
        """A new organ restricts the selected prompt of the results shown: it is sent again inside it."""
        if self.clicks.problem() is None:
            self.clicks.changed(self.clicks.selected)

    def load_demo(self) -> None:
        volume, prompt = load_demo_case(slicer.mrmlScene)
        self.ui.inputVolumeSelector.setCurrentNode(volume)
        self.ui.promptsTextEdit.setPlainText(prompt)
        self.ui.modalityComboBox.currentIndex = MODALITIES.index("CT")
        slicer.util.setSliceViewerLayers(background=volume, fit=True)

    def set_shortcuts(self, enabled: bool) -> None:
        """Click shortcuts work only while the module is shown (they are application-wide)."""
        for shortcut in self.shortcuts:
            shortcut.setEnabled(enabled)

    # --- setup ------------------------------------------------------------------------------------------
    def refresh_setup(self) -> None:
        self.ui.dependenciesLabel.text = dependencies.check().describe()
        self._start_tools(self.tools.refresh)
        if not self.probe.running and not self.device_info.torch:
            self.probe_lines.clear()
            self.probe.start(device.probe_command(python_executable()))
            self.timer.start()

    def _show_models(self, packages: list[models.ModelPackage]) -> None:
        self.ui.modelsLabel.text = models.describe(packages)
        chosen = self._model()
        self._fill_models(chosen.backbone, chosen.weights, packages)

    def _fill_models(self, backbone: str, weights: str, packages: list[models.ModelPackage] | None = None) -> None:
        """The Model list from the engine's listing, keeping the chosen model selected (listed even when it is not
        downloaded here: the engine then says what is missing)."""
        self.model_choices = models.model_choices(packages if packages is not None else self.tools.packages)
        index = models.choice_index(self.model_choices, backbone)
        if index < 0:
            self.model_choices.append(models.ModelChoice(backbone, backbone, weights))
            index = len(self.model_choices) - 1
        combo = self.ui.modelComboBox
        combo.clear()
        for choice in self.model_choices:
            combo.addItem(choice.label)
        combo.setCurrentIndex(index)

    def _on_probe_finished(self, _result: ProcessResult) -> None:
        self.device_info = device.parse_probe(self.probe_lines)
        self.ui.deviceInfoLabel.text = self.device_info.describe()
        self._update_estimate()

    def _update_estimate(self) -> None:
        volume = self.ui.inputVolumeSelector.currentNode()
        image = volume.GetImageData() if volume else None
        if image is None:
            self.ui.estimateLabel.text = ""
            return
        parameters = self.parameters()
        self.ui.estimateLabel.text = device.describe_estimate(
            image.GetNumberOfPoints(), parameters.quality, parameters.device, self.device_info)

    def _install(self) -> None:
        status = dependencies.check()
        if status.python:
            slicer.util.errorDisplay(status.python)
            return
        if status.ready:
            slicer.util.infoDisplay(_("Everything the engine needs is installed."))
            return
        installer = dependencies.pytorch_utils_installer()
        if not slicer.util.confirmOkCancelDisplay(dependencies.consent_text(status, installer is not None)):
            return
        with slicer.util.tryWithErrorDisplay(_("Installation failed."), waitCursor=True):
            dependencies.install(status, slicer.util.pip_install, installer)
        self.refresh_setup()

    def _start_tools(self, action: Callable[..., None], *arguments: Any) -> None:
        action(*arguments)
        self.timer.start()

    def _download(self) -> None:
        package = models.next_download(self.tools.packages)
        if package is None:
            slicer.util.infoDisplay(_("Every model package is downloaded."))
        elif slicer.util.confirmOkCancelDisplay(models.download_consent_text(package)):
            self._start_tools(self.tools.download, package)

    def _delete_models(self) -> None:
        packages = models.downloaded(self.tools.packages)
        if not packages:
            slicer.util.infoDisplay(_("No downloaded models to delete."))
        elif slicer.util.confirmYesNoDisplay(models.delete_consent_text(packages)):
            self._start_tools(self.tools.delete, packages)

    def close(self) -> None:
        """Stop everything this panel started (module reload or application exit): the warm engine, running
        commands and temporary files."""
        self.timer.stop()
        self.logic.close()
        for runner in (self.probe, self.tools):
            if runner.running:
                runner.cancel()
                runner.wait(timeout=10)
