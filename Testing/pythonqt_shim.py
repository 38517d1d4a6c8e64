"""Just enough of Slicer's Qt (PythonQt: qt, ctk, Slicer's custom widgets) on top of PySide6 to run the
module's Qt panel outside Slicer: properties read and written as attributes, connect('signal(args)', slot),
and stand-ins for qMRMLNodeComboBox, ctkCollapsibleButton and ctkPathLineEdit."""

from __future__ import annotations

import types
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Property, Signal


class PythonQtObject:
    """A QObject seen the PythonQt way: ``label.text = "x"``, ``combo.currentIndex``, ``connect("clicked(bool)", f)``."""

    def __init__(self, qobject: QtCore.QObject) -> None:
        object.__setattr__(self, "qobject", qobject)

    def __getattr__(self, name: str) -> Any:
        if self.qobject.metaObject().indexOfProperty(name) >= 0:
            return self.qobject.property(name)
        return getattr(self.qobject, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if self.qobject.metaObject().indexOfProperty(name) < 0:
            raise AttributeError(f"{type(self.qobject).__name__} has no property {name!r}")
        if not self.qobject.setProperty(name, value):
            raise AttributeError(f"could not set {name!r} on {type(self.qobject).__name__}")

    def connect(self, signature: str, slot) -> None:
        getattr(self.qobject, signature.split("(")[0]).connect(slot)


def unwrap(value: Any) -> Any:
    return value.qobject if isinstance(value, PythonQtObject) else value


class qMRMLNodeComboBox(QtWidgets.QComboBox):  # noqa: N801 - Slicer's class names
    currentNodeChanged = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._node = None

    def currentNode(self):  # noqa: N802
        return self._node

    def setCurrentNode(self, node) -> None:  # noqa: N802
        self._node = node
        self.clear()
        self.addItem(node.GetName() if node else "")
        self.currentNodeChanged.emit(node)


class ctkPathLineEdit(QtWidgets.QLineEdit):  # noqa: N801
    Dirs = 1
    Files = 2
    currentPathChanged = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._filters = 0
        self.textChanged.connect(self.currentPathChanged)

    currentPath = Property(str, QtWidgets.QLineEdit.text, QtWidgets.QLineEdit.setText)
    filters = Property(int, lambda self: self._filters, lambda self, value: setattr(self, "_filters", value))


class ctkCollapsibleButton(QtWidgets.QGroupBox):  # noqa: N801
    """A group box with the ``text`` and ``collapsed`` properties the .ui sets."""

    def _set_collapsed(self, collapsed: bool) -> None:
        self.setFlat(collapsed)
        self.setTitle(("▸ " if collapsed else "▾ ") + self.title().lstrip("▸▾ "))
        self.setMaximumHeight(24 if collapsed else 16777215)

    text = Property(str, QtWidgets.QGroupBox.title, QtWidgets.QGroupBox.setTitle)
    collapsed = Property(bool, QtWidgets.QGroupBox.isFlat, _set_collapsed)


STAND_INS = (qMRMLNodeComboBox, ctkPathLineEdit, ctkCollapsibleButton)


def qt_module(settings: Any) -> types.ModuleType:
    """A ``qt`` module: the classes the panel creates, wrapped like PythonQt's."""
    module = types.ModuleType("qt")
    module.Qt = QtCore.Qt
    module.QKeySequence = QtGui.QKeySequence
    module.QTableWidgetItem = QtWidgets.QTableWidgetItem
    module.QTimer = lambda: PythonQtObject(QtCore.QTimer())
    module.QShortcut = lambda keys, parent: PythonQtObject(QtGui.QShortcut(keys, unwrap(parent)))
    module.QSettings = lambda: settings
    return module


def ctk_module() -> types.ModuleType:
    module = types.ModuleType("ctk")
    module.ctkPathLineEdit = ctkPathLineEdit
    return module


def child_widget_variables(widget: QtWidgets.QWidget) -> types.SimpleNamespace:
    """slicer.util.childWidgetVariables, returning PythonQt-style objects."""
    return types.SimpleNamespace(**{child.objectName(): PythonQtObject(child)
                                    for child in widget.findChildren(QtCore.QObject) if child.objectName()})
