"""Catch what ITK and GDCM say while a file is read, per call and per thread, and boil it down to one-line messages.

ITK's own messages (warnings and errors of its readers and filters) reach SimpleITK's global logger in the thread
that caused them; one logger, installed on first use, hands each to the innermost capture open in that thread, so
another thread's reads or log lines never become this volume's warnings. C libraries inside ITK (MetaIO, NIfTI,
HDF5) print straight to the process's stderr (fd 2): that is sent to a temporary file for the block (one block at a
time, as fd 2 belongs to the whole process) and written back to stderr after it, unless the block failed with a
DiffuGTSError, whose one line then replaces the library's text (other threads' lines printed meanwhile go with it).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..errors import DiffuGTSError

# ITK: "WARNING: In /path/itkNiftiImageIO.cxx, line 2008"; GDCM: "Warning: In /path/gdcmReader.cxx, line 9, function f"
_LOCATION = re.compile(r"^(?:WARNING|ERROR|DEBUG|Warning|Error|Debug): In .*, line \d+.*$")
_OBJECT = re.compile(r"^\w+ \(0x[0-9a-fA-F]+\): ")  # "NiftiImageIO (0x5625fef58a40): "
_FD2_LOCK = threading.RLock()  # fd 2 belongs to the whole process: one redirection at a time, nesting allowed
_THREAD = threading.local()  # .captures: the ItkMessages open in this thread, innermost last
_LOGGER_LOCK = threading.Lock()
_logger = None  # the installed router (kept alive: ITK holds only a reference to it)


@dataclass
class ItkMessages:
    """What ITK said in this thread while the ``captured_itk_messages`` block ran."""

    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def lines(self) -> list[str]:
        """Each message once, as one line, without ITK's source-file and object-address boilerplate."""
        return clean_itk_text(self.text)


def _route(text: str) -> None:
    """One ITK message: to the innermost capture of the thread that caused it, else to stderr as ITK would."""
    captures = getattr(_THREAD, "captures", None)
    if captures:
        captures[-1].parts.append(text)
        return
    try:
        os.write(2, text.encode(errors="replace"))
    except OSError:  # fd 2 closed: ITK's own output would be lost too
        pass


def _install_logger() -> None:
    global _logger
    with _LOGGER_LOCK:
        if _logger is not None:
            return
        import SimpleITK as sitk

        class ThreadRouter(sitk.LoggerBase):
            def DisplayText(self, text):  # noqa: N802 - SimpleITK's names
                _route(text)

            DisplayErrorText = DisplayWarningText = DisplayGenericOutputText = DisplayDebugText = DisplayText

        router = ThreadRouter()
        router.SetAsGlobalITKLogger()
        _logger = router


@contextmanager
def captured_itk_messages() -> Iterator[ItkMessages]:
    """Collect ITK's messages of this thread for the block, and keep C libraries' stderr text out of sight.

    Works when fd 2 is closed or not a terminal, and when nested (the inner block gets what was said inside it).
    If the block fails with anything but a DiffuGTSError (a bug, not bad input), what was said is printed after
    all, to help diagnose it.
    """
    _install_logger()
    messages = ItkMessages()
    captures = _THREAD.__dict__.setdefault("captures", [])
    captures.append(messages)
    try:
        with _fd2_aside() as raw:
            try:
                yield messages
            except DiffuGTSError:
                raw.drop = True
                raise
            except BaseException:
                raw.extra = messages.text
                raise
    finally:
        captures.remove(messages)


@dataclass
class _Aside:
    drop: bool = False  # the text is the library's account of a failure already explained in one line
    extra: str = ""  # printed first when the block failed with a bug


@contextmanager
def _fd2_aside() -> Iterator[_Aside]:
    """fd 2 into a temporary file for the block, then restored and the text written back (see the module)."""
    aside = _Aside()
    with _FD2_LOCK:
        try:
            sink = tempfile.TemporaryFile()  # takes fd 2 itself when that is closed; it is closed again after
        except OSError:  # no temporary space: read without setting stderr aside rather than not at all
            yield aside
            return
        _flush_python_stderr()
        try:
            saved = os.dup(2)
        except OSError:  # fd 2 is closed
            saved = None
        os.dup2(sink.fileno(), 2)
        try:
            yield aside
        finally:
            _flush_python_stderr()
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
            elif sink.fileno() != 2:
                os.close(2)
            sink.seek(0)
            text = aside.extra + ("" if aside.drop else sink.read().decode(errors="replace"))
            sink.close()
            if text and saved is not None:
                try:
                    os.write(2, text.encode())
                except OSError:  # fd 2 was closed before the block (the temporary file had taken its number)
                    pass


def clean_itk_text(text: str) -> list[str]:
    """ITK/GDCM output as distinct one-line messages: blank lines and location headers end a message."""
    messages: list[str] = []
    current: list[str] = []
    for raw in [*text.splitlines(), ""]:
        line = raw.strip()
        if not line or _LOCATION.match(line):
            message = " ".join(current)
            if message and message not in messages:
                messages.append(message)
            current = []
        else:
            current.append(_OBJECT.sub("", line))
    return messages


def _flush_python_stderr() -> None:
    """Write out Python's buffered stderr so it lands where it was meant to, not in the capture."""
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # sys.stderr is None or closed
        pass
