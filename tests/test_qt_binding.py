"""The Qt binding keeps Python's reference counts. PySide6 6.12.0 on Python 3.11 takes one
reference off None on every call of a Qt method that returns nothing (setObjectName, QTimer.start,
processEvents, ...): after some tens of thousands of calls, minutes of a session, the app aborts
with "Fatal Python error: none_dealloc". pyproject.toml keeps that release out."""

import os
import subprocess
import sys

CALLS = """
import sys
from PySide6.QtCore import QCoreApplication, QObject, QTimer

app = QCoreApplication([])
obj, timer = QObject(), QTimer()
for call in (lambda: obj.setObjectName("x"), lambda: timer.start(1000), timer.stop,
             app.processEvents):
    before = sys.getrefcount(None)
    for _ in range(50_000):
        call()
    print(sys.getrefcount(None) - before)
"""


def test_qt_calls_returning_nothing_leave_nones_reference_count_as_it_was():
    done = subprocess.run([sys.executable, "-c", CALLS], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "0", "0", "0"]
