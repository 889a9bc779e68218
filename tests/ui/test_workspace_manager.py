"""The workspace manager and first-run screen, against a real Secret Service, a real seeded
`mlflow server` and real Qt (offscreen)."""

from __future__ import annotations

import uuid

import keyring
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from tests.conftest import PROD_EXPERIMENT
from tests.keyringtools import (
    files_containing,
    secrets_deleted_afterwards,
    unique_name,
    without_keyring,
)
from traceviewer.core import conntest, keychain
from traceviewer.core.workspaces import Workspace, WorkspaceStore
from traceviewer.ui.workspaces.first_run import FirstRunScreen
from traceviewer.ui.workspaces.workspace_manager import WorkspaceManager


@pytest.fixture
def forget():
    with secrets_deleted_afterwards() as names:
        yield names


@pytest.fixture
def manager(qtbot):
    dialog = WorkspaceManager(WorkspaceStore())
    qtbot.addWidget(dialog)
    return dialog


def fill(dialog: WorkspaceManager, name: str, host: str, auth: str = "none",
         secret: str = "", username: str = "") -> None:
    form = dialog.form
    form.name_edit.setText(name)
    form.host_edit.setText(host)
    form.auth_box.setCurrentIndex(form.auth_box.findData(auth))
    form.username_edit.setText(username)
    form.secret_edit.setText(secret)
    form.experiment_edit.setText(PROD_EXPERIMENT)
    form.reviewer_edit.setText("reviewer@example.com")


def save(qtbot, dialog: WorkspaceManager) -> str:
    with qtbot.waitSignal(dialog.workspaces_changed, timeout=20_000) as signal:
        dialog.save_button.click()
    return signal.args[0]


def run_test(qtbot, dialog: WorkspaceManager) -> dict[str, tuple[str, str]]:
    """Click "Test connection", wait for the last step; {check: (status, result)}."""
    dialog.test_button.click()
    qtbot.waitUntil(lambda: not dialog._tester.busy, timeout=60_000)
    return dialog.steps.rows()


def message_box(qtbot, parent, name: str) -> QMessageBox:
    qtbot.waitUntil(lambda: parent.findChild(QMessageBox, name) is not None, timeout=20_000)
    return parent.findChild(QMessageBox, name)


@pytest.mark.keyring
def test_add_through_dialog_keeps_token_in_keyring_only(qtbot, manager, forget, isolated_dirs,
                                                        mlflow_server):
    name, token = unique_name(), f"tok-{uuid.uuid4().hex}"
    forget.append(name)
    manager.new_workspace()
    fill(manager, name, mlflow_server.url, auth="token", secret=token)
    assert save(qtbot, manager) == name

    assert keyring.get_password(keychain.SERVICE, name) == token
    saved = WorkspaceStore().get(name)
    assert (saved.auth, saved.default_experiment) == ("token", PROD_EXPERIMENT)
    assert saved.reviewer == "reviewer@example.com"
    manager.grab()  # render it, as a screenshot would
    assert files_containing(isolated_dirs, token) == []
    assert token not in manager.message.text()


@pytest.mark.keyring
def test_stored_token_is_never_filled_back_and_empty_field_keeps_it(qtbot, forget,
                                                                     mlflow_server):
    name, token = unique_name(), f"tok-{uuid.uuid4().hex}"
    forget.append(name)
    store = WorkspaceStore()
    store.save(Workspace(name, mlflow_server.url, auth="token"), token)
    dialog = WorkspaceManager(store, select=name)
    qtbot.addWidget(dialog)
    secret_field = dialog.form.secret_edit
    qtbot.waitUntil(lambda: "stored in keyring" in secret_field.placeholderText())
    assert secret_field.text() == ""
    assert secret_field.echoMode() == secret_field.EchoMode.Password

    dialog.form.experiment_edit.setText("another-experiment")
    save(qtbot, dialog)
    assert store.get(name).default_experiment == "another-experiment"
    assert keyring.get_password(keychain.SERVICE, name) == token
    assert dialog.form.secret_edit.text() == ""

    # Tested with the stored token, which the dialog never showed.
    steps = run_test(qtbot, dialog)
    assert steps["Credentials accepted"][0] == conntest.OK.upper()


def test_test_button_reports_the_real_server_version_step_by_step(qtbot, manager,
                                                                  mlflow_server):
    fill(manager, "local", mlflow_server.url)
    seen: list[str] = []
    manager.steps.model().rowsInserted.connect(lambda *_: seen.append("row"))
    steps = run_test(qtbot, manager)
    assert len(seen) == 7  # one row per step, as they arrive
    assert steps["Server version"] == ("OK", "MLflow 3.17.2")
    assert steps["Default experiment found"][0] == "OK"
    status, result = steps["Traces in the last 24 hours"]
    assert status == "OK" and result.endswith("traces")
    assert manager.message.text() == "Connection OK."


def test_test_button_explains_an_unreachable_host(qtbot, manager):
    fill(manager, "nowhere", "http://127.0.0.1:9")
    steps = run_test(qtbot, manager)
    assert steps["Host reachable"][0] == "FAILED"
    assert "refused" in steps["Host reachable"][1]
    assert steps["Server version"] == ("SKIPPED", "not run: the host is not reachable")
    assert "failed" in manager.message.text()


def test_without_keyring_the_secret_is_kept_for_the_session_only_when_chosen(
        qtbot, manager, monkeypatch, isolated_dirs):
    without_keyring(monkeypatch)
    name, token = unique_name(), f"tok-{uuid.uuid4().hex}"
    fill(manager, name, "http://127.0.0.1:9", auth="token", secret=token)
    manager.save_button.click()
    box = message_box(qtbot, manager, "keyringUnavailableBox")
    assert "No secure OS keyring is available" in box.text()
    keep = next(b for b in box.buttons() if b.text() == "Keep for this session only")
    with qtbot.waitSignal(manager.workspaces_changed, timeout=20_000):
        keep.click()
    try:
        assert keychain.stored_in(name) == "session"
        assert keychain.get_secret(name) == token
        assert WorkspaceStore().get(name).auth == "token"
        assert files_containing(isolated_dirs, token) == []
    finally:
        keychain.delete_secret(name)


def test_without_keyring_cancel_saves_nothing_and_says_why(qtbot, manager, monkeypatch,
                                                           isolated_dirs):
    without_keyring(monkeypatch)
    token = f"tok-{uuid.uuid4().hex}"
    fill(manager, "cancelled", "http://127.0.0.1:9", auth="token", secret=token)
    manager.save_button.click()
    box = message_box(qtbot, manager, "keyringUnavailableBox")
    box.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: "No secure OS keyring" in manager.message.text())
    assert WorkspaceStore().list() == []
    assert files_containing(isolated_dirs, token) == []


def test_new_workspace_needing_a_secret_asks_for_it(manager):
    fill(manager, "prod", "https://adb-1.azuredatabricks.net", auth="token")
    manager.form.kind_box.setCurrentIndex(manager.form.kind_box.findData("databricks"))
    manager.save_button.click()
    assert manager.message.text().startswith("Enter the token")
    assert WorkspaceStore().list() == []


@pytest.mark.keyring
def test_duplicate_copies_the_secret_and_remove_asks_then_deletes_it(qtbot, forget):
    name, token = unique_name(), f"tok-{uuid.uuid4().hex}"
    forget += [name, f"{name}-copy"]
    store = WorkspaceStore()
    store.save(Workspace(name, "http://127.0.0.1:9", auth="token"), token)
    dialog = WorkspaceManager(store, select=name)
    qtbot.addWidget(dialog)
    dialog.duplicate()
    assert dialog.form.name_edit.text() == f"{name}-copy"
    assert save(qtbot, dialog) == f"{name}-copy"
    assert keyring.get_password(keychain.SERVICE, f"{name}-copy") == token

    dialog.remove_button.click()
    box = message_box(qtbot, dialog, "confirmRemoveBox")
    assert f"Remove workspace '{name}-copy'" in box.text()
    with qtbot.waitSignal(dialog.workspaces_changed, timeout=20_000):
        box.button(QMessageBox.StandardButton.Yes).click()
    assert [w.name for w in store.list()] == [name]
    assert keyring.get_password(keychain.SERVICE, f"{name}-copy") is None
    assert keyring.get_password(keychain.SERVICE, name) == token


@pytest.mark.keyring
def test_first_run_imports_the_environment_into_a_workspace(qtbot, forget, monkeypatch,
                                                           isolated_dirs, mlflow_server):
    token = f"tok-{uuid.uuid4().hex}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", PROD_EXPERIMENT)
    screen = FirstRunScreen(WorkspaceStore())
    qtbot.addWidget(screen)
    assert screen.env_button.isEnabled()
    assert mlflow_server.url in screen.env_detail.text()
    assert token not in screen.env_detail.text()
    with qtbot.waitSignal(screen.workspaces_changed, timeout=20_000) as signal:
        screen.env_button.click()
    name = signal.args[0]
    forget.append(name)
    ws = WorkspaceStore().get(name)
    assert (ws.host, ws.auth, ws.default_experiment) == (mlflow_server.url, "token",
                                                         PROD_EXPERIMENT)
    assert keyring.get_password(keychain.SERVICE, name) == token
    assert files_containing(isolated_dirs, token) == []


def test_first_run_without_anything_to_import_says_what_to_set(qtbot):
    screen = FirstRunScreen(WorkspaceStore())
    qtbot.addWidget(screen)
    assert not screen.env_button.isEnabled()
    assert "set MLFLOW_TRACKING_URI" in screen.env_detail.text()
    assert not screen.cfg_button.isEnabled()
    with qtbot.waitSignal(screen.demo_requested):
        screen.demo_button.click()


@pytest.mark.keyring
def test_renaming_in_the_dialog_moves_the_secret(qtbot, forget):
    name, renamed, token = unique_name(), unique_name(), f"tok-{uuid.uuid4().hex}"
    forget += [name, renamed]
    store = WorkspaceStore()
    store.save(Workspace(name, "http://127.0.0.1:9", auth="token"), token)
    dialog = WorkspaceManager(store, select=name)
    qtbot.addWidget(dialog)
    dialog.form.name_edit.setText(renamed)
    assert save(qtbot, dialog) == renamed
    assert [w.name for w in store.list()] == [renamed]
    assert keyring.get_password(keychain.SERVICE, renamed) == token
    assert keyring.get_password(keychain.SERVICE, name) is None


@pytest.mark.keyring
def test_first_run_imports_the_profiles_of_databrickscfg(qtbot, forget, isolated_dirs):
    profile, token = unique_name("prof"), f"dapi{uuid.uuid4().hex}"
    forget.append(profile)
    cfg = isolated_dirs / "home" / ".databrickscfg"
    cfg.write_text(f"[{profile}]\nhost = https://dbc-1.cloud.databricks.com\ntoken = {token}\n"
                   "[sso]\nhost = https://dbc-2.cloud.databricks.com\nauth_type = databricks-cli\n")
    screen = FirstRunScreen(WorkspaceStore())
    qtbot.addWidget(screen)
    assert screen.cfg_detail.text() == f"Profiles in ~/.databrickscfg: {profile}, sso."
    with qtbot.waitSignal(screen.workspaces_changed, timeout=20_000) as signal:
        screen.cfg_button.click()
    assert signal.args == [profile]
    assert WorkspaceStore().get(profile).kind == "databricks"
    assert WorkspaceStore().get("sso").auth == "profile"  # signs in through the databricks CLI
    assert keyring.get_password(keychain.SERVICE, profile) == token
    assert files_containing(isolated_dirs, token) == [cfg]


def test_first_run_add_opens_the_manager_and_forwards_its_saves(qtbot):
    screen = FirstRunScreen(WorkspaceStore())
    qtbot.addWidget(screen)
    screen.add_button.click()
    manager = screen.findChild(WorkspaceManager)
    assert manager is not None and manager.isVisible()
    assert manager.form.name_edit.text() == ""
    fill(manager, "local", "http://127.0.0.1:9")
    with qtbot.waitSignal(screen.workspaces_changed, timeout=20_000) as signal:
        manager.save_button.click()
    assert signal.args == ["local"]


@pytest.mark.keyring
def test_sign_in_with_databricks_then_the_workspace_connects(qtbot, manager, forget, tmp_path,
                                                              monkeypatch, isolated_dirs,
                                                              databricks_standin, prod_infos):
    import webbrowser

    from tests.cli.test_databricks import browser_script

    # The system browser is $BROWSER, read again here (webbrowser reads it once per process).
    monkeypatch.setenv("BROWSER", browser_script(tmp_path))
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    monkeypatch.setattr(webbrowser, "_browsers", {})
    user = databricks_standin.credentials.user
    name = unique_name("u2m")
    forget.append(name)
    form = manager.form
    form.name_edit.setText(name)
    form.kind_box.setCurrentIndex(form.kind_box.findData("databricks"))
    form.host_edit.setText(databricks_standin.url)
    assert [form.auth_box.itemData(i) for i in range(form.auth_box.count())] == [
        "oauth-u2m", "pat", "oauth-m2m", "profile"]
    form.auth_box.setCurrentIndex(form.auth_box.findData("oauth-u2m"))
    form.experiment_edit.setText(PROD_EXPERIMENT)
    # No secret to type: the browser sign-in gets its own.
    assert not form._layout.isRowVisible(form.secret_edit)
    assert form.sign_in_button.isEnabled()

    with qtbot.waitSignal(manager.workspaces_changed, timeout=60_000) as signal:
        form.sign_in_button.click()
    assert signal.args == [name]
    assert manager.message.text().startswith(f"Signed in to '{name}' as {user}")
    saved = WorkspaceStore().get(name)
    assert (saved.kind, saved.auth, saved.reviewer) == ("databricks", "oauth-u2m", user)
    refresh = keyring.get_password(keychain.SERVICE, name)
    assert refresh and refresh.startswith("dbx-refresh-")
    qtbot.waitUntil(lambda: form.sign_in_status.text() == "signed in (kept in the OS keyring)")

    steps = run_test(qtbot, manager)
    label = "OAuth user sign-in (U2M)"
    assert steps["Credentials accepted"] == ("OK", f"signed in as {user} with the {label}")
    assert steps["Default experiment found"][0] == "OK"
    assert manager.message.text().startswith(
        f"Connection OK: signed in as {user} with the {label}")
    manager.grab()

    # The main window connects to it and opens a trace, its spans through a signed URL.
    from traceviewer.ui.main_window import MainWindow

    trace_id = next(i.trace_id for i in prod_infos if i.state == "OK")
    window = MainWindow()
    qtbot.addWidget(window)
    window.load_workspaces(select=name)
    qtbot.waitUntil(lambda: window.app_model.client is not None, timeout=60_000)
    assert window.connection_label.text() == f"{databricks_standin.url} · Databricks · {user}"
    before = databricks_standin.stats().get("storage_downloads", 0)
    with qtbot.waitSignal(window.trace_view.trace_shown, timeout=60_000) as shown:
        window.open_trace(trace_id)
    assert shown.args[0].info.trace_id == trace_id
    assert databricks_standin.stats()["storage_downloads"] == before + 1
    for secret in (refresh, keyring.get_password(keychain.SERVICE, name)):
        assert files_containing(isolated_dirs, secret) == []
        assert secret not in manager.message.text()


def test_databricks_auth_choices_show_their_own_fields(manager):
    form = manager.form
    form.kind_box.setCurrentIndex(form.kind_box.findData("databricks"))
    shown = {}
    for auth in ("pat", "oauth-u2m", "oauth-m2m", "profile"):
        form.auth_box.setCurrentIndex(form.auth_box.findData(auth))
        shown[auth] = (form._layout.isRowVisible(form.secret_edit), form.secret_label.text(),
                       form._layout.isRowVisible(form.client_id_edit),
                       form._layout.isRowVisible(form.profile_edit),
                       form.sign_in_button.isEnabled())
    assert shown == {"pat": (True, "Token", False, False, False),
                     "oauth-u2m": (False, "Token", False, False, True),
                     "oauth-m2m": (True, "Client secret", True, False, False),
                     "profile": (False, "Token", False, True, True)}
    form.name_edit.setText("sp")
    form.host_edit.setText("https://dbc-1.cloud.databricks.com")
    form.auth_box.setCurrentIndex(form.auth_box.findData("oauth-m2m"))
    form.client_id_edit.setText("sp-1")
    assert form.workspace().client_id == "sp-1"
    manager.save_button.click()
    assert manager.message.text().startswith("Enter the client secret")
    form.auth_box.setCurrentIndex(form.auth_box.findData("profile"))
    form.profile_edit.setText("DEFAULT")
    ws = form.workspace()
    assert (ws.auth, ws.profile, ws.client_id, ws.enters_secret) == ("profile", "DEFAULT", None,
                                                                     False)
    # Back to an MLflow server: a Databricks PAT is a bearer token there.
    form.auth_box.setCurrentIndex(form.auth_box.findData("pat"))
    form.kind_box.setCurrentIndex(form.kind_box.findData("mlflow"))
    assert form.auth_box.currentData() == "token"


# -- unsaved edits ---------------------------------------------------------------------------


def two_workspaces() -> WorkspaceStore:
    store = WorkspaceStore()
    store.upsert(Workspace("alpha", "http://127.0.0.1:5001"))
    store.upsert(Workspace("beta", "http://127.0.0.1:5002"))
    return store


def open_manager(qtbot, store: WorkspaceStore) -> WorkspaceManager:
    dialog = WorkspaceManager(store, select="alpha")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.form.name_edit.text() == "alpha"
    return dialog


def answer(qtbot, dialog: WorkspaceManager, button: QMessageBox.StandardButton) -> None:
    """Click `button` in the "unsaved changes" question once it shows (it never blocks)."""
    def shown() -> list[QMessageBox]:
        return [b for b in dialog.findChildren(QMessageBox, "unsavedEditsBox") if b.isVisible()]
    qtbot.waitUntil(lambda: len(shown()) == 1, timeout=5_000)
    (box,) = shown()
    assert "alpha" in box.text()
    box.button(button).click()


def no_question(dialog: WorkspaceManager) -> bool:
    return not any(b.isVisible() for b in dialog.findChildren(QMessageBox, "unsavedEditsBox"))


def test_picking_another_workspace_with_unsaved_edits_asks_and_cancel_keeps_them(qtbot):
    store = two_workspaces()
    dialog = open_manager(qtbot, store)
    dialog.form.experiment_edit.setText("edited-experiment")
    dialog.list.setCurrentRow(1)  # beta
    answer(qtbot, dialog, QMessageBox.StandardButton.Cancel)
    assert dialog.form.name_edit.text() == "alpha"
    assert dialog.form.experiment_edit.text() == "edited-experiment"
    assert dialog.list.currentItem().text() == "alpha"
    assert store.get("alpha").default_experiment is None


def test_discarding_unsaved_edits_shows_the_picked_workspace_and_saves_nothing(qtbot):
    store = two_workspaces()
    dialog = open_manager(qtbot, store)
    dialog.form.experiment_edit.setText("edited-experiment")
    dialog.list.setCurrentRow(1)
    answer(qtbot, dialog, QMessageBox.StandardButton.Discard)
    assert dialog.form.name_edit.text() == "beta"
    assert dialog.list.currentItem().text() == "beta"
    assert store.get("alpha").default_experiment is None


def test_saving_unsaved_edits_keeps_them_then_shows_the_picked_workspace(qtbot):
    store = two_workspaces()
    dialog = open_manager(qtbot, store)
    dialog.form.experiment_edit.setText("edited-experiment")
    dialog.list.setCurrentRow(1)
    with qtbot.waitSignal(dialog.workspaces_changed, timeout=20_000):
        answer(qtbot, dialog, QMessageBox.StandardButton.Save)
    qtbot.waitUntil(lambda: dialog.form.name_edit.text() == "beta", timeout=5_000)
    assert dialog.list.currentItem().text() == "beta"
    assert WorkspaceStore().get("alpha").default_experiment == "edited-experiment"


def test_escape_with_unsaved_edits_asks_and_cancel_keeps_the_dialog_open(qtbot):
    dialog = open_manager(qtbot, two_workspaces())
    dialog.form.reviewer_edit.setText("someone@example.com")
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    answer(qtbot, dialog, QMessageBox.StandardButton.Cancel)
    assert dialog.isVisible()
    assert dialog.form.reviewer_edit.text() == "someone@example.com"


def test_closing_with_unsaved_edits_and_discarding_closes_without_saving(qtbot):
    store = two_workspaces()
    dialog = open_manager(qtbot, store)
    dialog.form.reviewer_edit.setText("someone@example.com")
    with qtbot.waitSignal(dialog.rejected, timeout=5_000):
        dialog.close()
        answer(qtbot, dialog, QMessageBox.StandardButton.Discard)
    assert not dialog.isVisible()
    assert store.get("alpha").reviewer is None


def test_without_edits_switching_and_escape_never_ask(qtbot):
    dialog = open_manager(qtbot, two_workspaces())
    dialog.list.setCurrentRow(1)
    assert no_question(dialog)
    assert dialog.form.name_edit.text() == "beta"
    with qtbot.waitSignal(dialog.rejected, timeout=5_000):
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert no_question(dialog)
