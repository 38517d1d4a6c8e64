"""Catch what ITK and GDCM print to the process's stderr (fd 2, from C++) and boil it down to one-line messages."""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import DiffuGTSError

# ITK: "WARNING: In /path/itkNiftiImageIO.cxx, line 2008"; GDCM: "Warning: In /path/gdcmReader.cxx, line 9, function f"
_LOCATION = re.compile(r"^(?:WARNING|ERROR|DEBUG|Warning|Error|Debug): In .*, line \d+.*$")
_OBJECT = re.compile(r"^\w+ \(0x[0-9a-fA-F]+\): ")  # "NiftiImageIO (0x5625fef58a40): "
_LOCK = threading.RLock()  # fd 2 belongs to the whole process: one capture at a time, nesting allowed


@dataclass
class ItkMessages:
    """What ITK printed while the ``captured_itk_messages`` block ran; filled in when the block ends."""

    text: str = ""

    def lines(self) -> list[str]:
        """Each message once, as one line, without ITK's source-file and object-address boilerplate."""
        return clean_itk_text(self.text)


@contextmanager
def captured_itk_messages() -> Iterator[ItkMessages]:
    """Send fd 2 to a temporary file for the block and give its text back; fd 2 is always restored.

    Works when fd 2 is closed or not a terminal, and when nested. If the block fails with anything but
    a DiffuGTSError (a bug, not bad input), the captured text is printed after all, to help diagnose it.
    """
    messages = ItkMessages()
    with _LOCK:
        try:
            sink = tempfile.TemporaryFile()  # takes fd 2 itself when that is closed; it is closed again after
        except OSError:  # no temporary space: read without capturing rather than not at all
            yield messages
            return
        _flush_python_stderr()
        try:
            saved = os.dup(2)
        except OSError:  # fd 2 is closed
            saved = None
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield messages
        except DiffuGTSError:
            raise
        except BaseException:
            failed = True
            raise
        finally:
            _flush_python_stderr()
            if saved is not None:
                os.dup2(saved, 2)
                os.close(saved)
            elif sink.fileno() != 2:
                os.close(2)
            sink.seek(0)
            messages.text = sink.read().decode(errors="replace")
            sink.close()
            if failed and messages.text and saved is not None:
                os.write(2, messages.text.encode())


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
