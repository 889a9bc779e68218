"""The one background-work mechanism: results arrive on the GUI thread, latest request wins."""

import threading

from PySide6.QtCore import QObject, QThread
from PySide6.QtWidgets import QApplication

from tests.ui.waiting import background_work_ended
from traceviewer.ui.common.tasks import TaskRunner, WriteRunner, activity


def test_result_is_delivered_on_the_gui_thread(qtbot):
    runner = TaskRunner()
    seen = {}

    def work(token):
        seen["worker"] = threading.get_ident()
        return 42

    def done(value):
        seen["value"] = value
        seen["gui"] = QThread.currentThread() is QApplication.instance().thread()

    runner.start(work, done)
    qtbot.waitUntil(lambda: "value" in seen)
    assert seen["value"] == 42
    assert seen["gui"] is True
    assert seen["worker"] != threading.get_ident()


def test_a_newer_request_cancels_the_older_and_drops_its_result(qtbot):
    runner = TaskRunner()
    release = threading.Event()
    results = []

    def slow(token):
        release.wait(5)
        return "stale"  # not checking its token: the runner itself must drop this

    first = runner.start(slow, results.append)
    runner.start(lambda token: "fresh", results.append)
    assert first.cancelled
    qtbot.waitUntil(lambda: results == ["fresh"])
    release.set()
    background_work_ended(qtbot)  # the stale task has ended and sent what it had
    assert results == ["fresh"]


def test_errors_reach_the_error_callback(qtbot):
    runner = TaskRunner()
    errors = []

    def boom(token):
        raise ValueError("server said no")

    runner.start(boom, lambda _: None, errors.append)
    qtbot.waitUntil(lambda: bool(errors))
    assert str(errors[0]) == "server said no"


def test_activity_stays_busy_across_a_chain_of_steps(qtbot):
    qtbot.waitUntil(lambda: activity.running == 0)  # tasks of earlier tests have ended
    runner = TaskRunner()
    idle_events = []
    activity.idle.connect(lambda: idle_events.append(True))
    finished = []

    def second(value):
        finished.append(value)

    runner.start(lambda t: 1, lambda v: runner.start(lambda t: v + 1, second))
    qtbot.waitUntil(lambda: finished == [2])
    assert len(idle_events) == 1
    assert activity.running == 0


def test_a_runner_destroyed_mid_task_ends_its_activity(qtbot):
    qtbot.waitUntil(lambda: activity.running == 0)
    owner = QObject()
    runner = TaskRunner(owner)
    release = threading.Event()
    runner.start(lambda token: release.wait(5), lambda _: None)
    assert activity.running == 1
    del runner
    owner.deleteLater()
    qtbot.waitUntil(lambda: activity.running == 0)
    release.set()


def test_a_write_never_cancels_a_write_in_flight_and_both_report(qtbot):
    writer = WriteRunner()
    release = threading.Event()
    done = []

    def slow(token):
        release.wait(5)
        return "first"

    writer.start(slow, done.append)
    writer.start(lambda token: "second", done.append)
    qtbot.waitUntil(lambda: done == ["second"])
    release.set()
    qtbot.waitUntil(lambda: done == ["second", "first"])
    assert not writer.busy


def test_a_write_callback_runs_on_the_gui_thread(qtbot):
    writer = WriteRunner()
    seen = []
    writer.start(lambda token: 1,
                 lambda _: seen.append(QThread.currentThread()
                                       is QApplication.instance().thread()))
    qtbot.waitUntil(lambda: bool(seen))
    assert seen == [True]


def test_a_failure_without_an_error_callback_still_reaches_the_user(qtbot):
    for runner in (TaskRunner(), WriteRunner()):
        with qtbot.waitSignal(activity.unhandled_failure, timeout=5000) as blocker:
            runner.start(lambda token: 1 / 0, lambda _: None)
        assert isinstance(blocker.args[0], ZeroDivisionError)


def test_a_task_runs_while_more_tasks_than_cores_wait_on_the_network(qtbot):
    """Background work is mostly waiting: tasks stuck on slow answers (as many as the machine
    has cores, and more) do not hold back the next one, such as a trace's header."""
    release = threading.Event()
    stuck = [TaskRunner() for _ in range(max(4, QThread.idealThreadCount() + 2))]
    try:
        for runner in stuck:
            runner.start(lambda token: release.wait(30), lambda _: None)
        got, header = [], TaskRunner()
        header.start(lambda token: "header", got.append)
        qtbot.waitUntil(lambda: got == ["header"], timeout=5_000)
    finally:
        release.set()
    background_work_ended(qtbot)
