"""msica.testing.SimulatedSession and run_action: the real Session code over a
simulated engine, with what an action did recorded."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

import msica
from msica import ActionResult, custom_action
from msica.customactiondata import encode
from msica.enums import InstallMessage, InstallState, RunMode
from msica.errors import (
    ConditionError,
    DeferredPropertyError,
    DirectoryNotFoundError,
    FunctionFailedError,
    InstallUserExitError,
)
from msica.session import Session
from msica.testing import SimulatedSession, SimulatorError, run_action
from tests.helpers import wixl_msi

# --- properties -------------------------------------------------------------------------


def test_it_is_a_session_reading_and_writing_properties() -> None:
    session = SimulatedSession({"INSTALLDIR": "C:\\App\\", "EMPTY": ""})
    assert isinstance(session, msica.Session)
    assert session["INSTALLDIR"] == "C:\\App\\"
    assert session["MISSING"] == ""
    assert "EMPTY" not in session  # an empty value is no value, as for the engine
    session["OUT"] = "1"
    del session["INSTALLDIR"]
    assert session.properties == {"OUT": "1"}
    assert session.property_writes == [("OUT", "1"), ("INSTALLDIR", "")]


def test_long_and_non_ascii_values_make_the_round_trip() -> None:
    # Longer than the first 256-character buffer: the real Session's ERROR_MORE_DATA path.
    value = "Grüße 東京 𝄞 " * 100
    session = SimulatedSession({"TEXT": value})
    assert session["TEXT"] == value
    session["COPY"] = session["TEXT"][::-1]
    assert session.properties["COPY"] == value[::-1]


def test_a_property_value_must_be_text() -> None:
    session = SimulatedSession()
    with pytest.raises(TypeError, match=r"write str\(value\)"):
        session["COUNT"] = 3  # type: ignore[assignment]
    with pytest.raises(TypeError, match="must be a str"):
        SimulatedSession({"COUNT": 3})  # type: ignore[dict-item]


# --- deferred actions -------------------------------------------------------------------


def test_deferred_session_refuses_other_properties_with_the_guard_message() -> None:
    session = SimulatedSession(
        {"INSTALLDIR": "C:\\App\\", "ProductCode": "{P}"},
        action="Deploy", execute="deferred",
        custom_action_data={"INSTALLDIR": "C:\\App\\", "MODE": "a;b=c"},
    )
    assert session.in_script
    assert session.custom_action_data == {"INSTALLDIR": "C:\\App\\", "MODE": "a;b=c"}
    assert session.product_code == "{P}"
    with pytest.raises(DeferredPropertyError, match=r"Deploy runs deferred.*not INSTALLDIR"):
        session["INSTALLDIR"]
    # The engine keeps no properties set from the script: a clear error, not silence.
    with pytest.raises(FunctionFailedError, match="deferred action cannot set properties"):
        session["RESULT"] = "x"


@pytest.mark.parametrize("execute, mode", [
    ("deferred", RunMode.SCHEDULED), ("rollback", RunMode.ROLLBACK), ("commit", RunMode.COMMIT),
])
def test_script_modes_answer_msigetmode(execute: str, mode: RunMode) -> None:
    session = SimulatedSession(execute=execute)
    assert [m for m in (RunMode.SCHEDULED, RunMode.ROLLBACK, RunMode.COMMIT)
            if session.mode(m)] == [mode]


def test_custom_action_data_text_is_kept_as_it_is() -> None:
    session = SimulatedSession(execute="deferred", custom_action_data="raw text")
    assert session["CustomActionData"] == "raw text"
    with pytest.raises(ValueError, match="has no '='"):
        session.custom_action_data  # noqa: B018


# --- secrets ----------------------------------------------------------------------------


def test_hidden_values_never_reach_the_log_lines() -> None:
    def leaky(session: Session) -> None:
        session.log(f"password is {session['PASSWORD']}")
        print("printed", session["PASSWORD"])
        raise RuntimeError(f"failed with {session['PASSWORD']}")

    session = SimulatedSession({"PASSWORD": "hunter2-secret"}, hidden=["PASSWORD"],
                               action="Leaky")
    assert run_action(leaky, session) == 1603
    text = "\n".join(session.log_lines)
    assert "hunter2-secret" not in text
    assert "msica[Leaky] password is ******" in session.log_lines
    assert "RuntimeError: failed with ******" in text
    assert session.properties["MsiHiddenProperties"] == "PASSWORD"


def test_hide_target_masks_the_action_data() -> None:
    @custom_action(execute="deferred", hide_target=True)
    def HiddenData(session: Session) -> None:
        session.log("data: " + session["CustomActionData"])

    session = SimulatedSession(custom_action_data="TOKEN=abc123")
    assert run_action(HiddenData, session) == 0
    assert session.log_lines == ["msica[HiddenData] data: ******"]


# --- logging, progress, messages --------------------------------------------------------


def test_log_print_and_logging_are_recorded_as_the_log_shows_them() -> None:
    def chatty(session: Session) -> None:
        session.log("one [bracket] kept")
        print("two")
        logging.getLogger("chatty").warning("three")

    session = SimulatedSession(action="Chatty")
    assert run_action(chatty, session) == 0
    assert session.log_lines == [
        "msica[Chatty] one [bracket] kept",
        "msica[Chatty] two",
        "msica[Chatty] WARNING chatty: three",
    ]


def test_progress_records_are_kept_in_order() -> None:
    @custom_action
    def Progressing(session: Session) -> None:
        session.progress.add_ticks(300)
        session.progress.ticks_per_action_data(5)
        session.progress.report(100)

    session = SimulatedSession()
    assert run_action(Progressing, session) == 0
    assert session.progress == [(3, 300, 0), (1, 5, 1), (2, 100, 0)]


def test_a_cancel_answer_ends_the_action_with_1602() -> None:
    reached: list[int] = []

    def long_job(session: Session) -> None:
        for step in range(10):
            session.progress.report(1)
            reached.append(step)

    session = SimulatedSession(action="LongJob")
    session.cancel(after=3)
    assert run_action(long_job, session) == ActionResult.USER_EXIT
    assert reached == [0, 1, 2]
    assert session.log_lines[-1] == "msica[LongJob] cancelled by the user"


def test_messages_get_the_answer_given() -> None:
    session = SimulatedSession(answer=lambda kind, fields: 6)  # IDYES
    answer = session.message(InstallMessage.USER, "Continue with [1]?", "setup", flags=4)
    assert answer == 6
    assert session.messages == [(InstallMessage.USER, "Continue with setup?")]


# --- run_action -------------------------------------------------------------------------


@pytest.mark.parametrize("returned, code", [
    (None, 0),
    (ActionResult.SUCCESS, 0),
    (ActionResult.SKIP_REMAINING, 259),
    (ActionResult.USER_EXIT, 1602),
    (ActionResult.FAILURE, 1603),
    (1626, 1626),
])
def test_run_action_maps_return_values_as_the_host(returned: object, code: int) -> None:
    session = SimulatedSession()
    assert run_action(lambda s: returned, session) == code  # type: ignore[arg-type,return-value]
    assert session.log_lines == []


def test_an_unknown_return_value_fails_with_a_log_line() -> None:
    session = SimulatedSession(action="Odd")
    assert run_action(lambda s: "yes", session) == 1603  # type: ignore[arg-type,return-value]
    assert session.log_lines == [
        "msica[Odd] action failed:\nthe action returned 'yes'; return an ActionResult "
        "(or None for SUCCESS)"
    ]


def test_an_exception_is_1603_with_its_traceback() -> None:
    def broken(session: Session) -> None:
        {}["missing"]

    session = SimulatedSession(action="Broken")
    assert run_action(broken, session) == 1603
    (line,) = session.log_lines
    assert line.startswith("msica[Broken] action failed:\nTraceback (most recent call last):")
    assert "in broken" in line
    assert line.endswith("KeyError: 'missing'")


def test_install_user_exit_error_is_1602() -> None:
    def quits(session: Session) -> None:
        raise InstallUserExitError(1602, "MsiProcessMessage", "the user cancelled")

    assert run_action(quits, SimulatedSession()) == 1602


@custom_action(name="RegisteredByName")
def _registered(session: Session) -> None:
    session["RAN"] = session.action


def test_run_action_by_name_takes_the_action_name() -> None:
    session = SimulatedSession()
    assert run_action("RegisteredByName", session) == 0
    assert session.properties["RAN"] == "RegisteredByName"
    with pytest.raises(LookupError, match="import the module that defines it"):
        run_action("NoSuchAction", session)


@custom_action(execute="deferred", uses=["INSTALLDIR", "MODE"])
def WriteConfig(session: Session) -> None:
    data = session.custom_action_data
    session.log(f"would write {data['INSTALLDIR']}config.ini in mode {data['MODE']!r}")


def test_a_deferred_action_gets_the_data_its_uses_declare() -> None:
    # Made like an immediate-phase session; run_action makes it what the action declares.
    session = SimulatedSession({"INSTALLDIR": "C:\\App\\", "MODE": "a;b<=>c"})
    assert run_action(WriteConfig, session) == 0
    assert session.execute == "deferred"
    assert session["CustomActionData"] == encode({"INSTALLDIR": "C:\\App\\", "MODE": "a;b<=>c"})
    assert session.log_lines == [
        "msica[WriteConfig] would write C:\\App\\config.ini in mode 'a;b<=>c'"
    ]


def test_an_explicit_execute_that_contradicts_the_action_is_refused() -> None:
    with pytest.raises(ValueError, match=r"declared execute='deferred'.*execute='immediate'"):
        run_action(WriteConfig, SimulatedSession(execute="immediate"))


def test_an_immediate_action_reading_deferred_data_fails_like_in_an_install() -> None:
    @custom_action(execute="deferred")
    def ReadsTooMuch(session: Session) -> None:
        session["INSTALLDIR"]

    session = SimulatedSession({"INSTALLDIR": "C:\\App\\"}, execute="deferred")
    assert run_action(ReadsTooMuch, session) == 1603
    assert "DeferredPropertyError: ReadsTooMuch runs deferred" in session.log_lines[0]


# --- format, conditions, the rest of the session -----------------------------------------


def test_format_resolves_properties_environment_and_escapes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MSICA_SIM_ENV", "env value")
    session = SimulatedSession({"NAME": "app", "WHICH": "NAME"})
    assert session.format("[NAME] in [%MSICA_SIM_ENV] [\\[]x[\\]] [MISSING]<") == (
        "app in env value [x] <"
    )
    assert session.format("[[WHICH]]") == "app"
    # [~] is a null character; Session.format reads the buffer as a C string (as with
    # msi.dll), so the text ends there.
    assert session.format("a[~]b") == "a"
    with pytest.raises(SimulatorError, match=r"\[#App.exe\] needs the engine's file"):
        session.format("[#App.exe]")


@pytest.mark.parametrize("condition, expected", [
    ("", True),  # MSICONDITION_NONE counts as true
    ("NAME", True),
    ("NOT NAME", False),
    ("MISSING", False),
    ('NAME = "app"', True),
    ('NAME ~= "APP"', True),
    ('NAME = "APP"', False),
    ('NAME <> "app"', False),
    ("VERSION >= 500", True),
    ("VERSION < 60", False),
    ('VERSION = "600"', True),  # both all digits: compared as integers
    ("NAME = 3", False),
    ("NAME <> 3", True),  # text against an integer: only <> holds
    ('NAME >< "pp"', True),
    ('NAME << "ap"', True),
    ('NAME >> "PP"', False),
    ('NAME ~>> "PP"', True),
    ('REMOVE = "ALL" OR NAME', True),
    ('REMOVE = "ALL" AND NAME', False),
    ("NAME XOR VERSION", False),
    ("NOT (NAME AND MISSING)", True),
    ("not MISSING and NAME", True),  # keywords in any case
    ("name", False),  # property names are case-sensitive
    ("$Comp = 3 AND ?Comp = 2 AND &Main = 3 AND !Main = 2", True),
    ("MISSING IMP NAME", True),
    ("NAME EQV MISSING", False),
    ("-1 < 0", True),
])
def test_conditions(condition: str, expected: bool) -> None:
    session = SimulatedSession(
        {"NAME": "app", "VERSION": "600"},
        features={"Main": (InstallState.ABSENT, InstallState.LOCAL)},
        components={"Comp": (InstallState.ABSENT, InstallState.LOCAL)},
    )
    assert session.evaluate_condition(condition) is expected


@pytest.mark.parametrize("condition", ["1 = = 2", "(NAME", "NAME AND", '"open', "A @ B"])
def test_malformed_conditions_raise(condition: str) -> None:
    with pytest.raises(ConditionError, match="not valid MSI syntax"):
        SimulatedSession().evaluate_condition(condition)


def test_feature_and_component_states() -> None:
    session = SimulatedSession(features={"Main": (InstallState.ABSENT, InstallState.LOCAL)})
    feature = session.features["Main"]
    assert (feature.installed, feature.requested) == (InstallState.ABSENT, InstallState.LOCAL)
    feature.request(InstallState.ABSENT)
    assert session.feature_state("Main") == (InstallState.ABSENT, InstallState.ABSENT)
    with pytest.raises(msica.InstallerError, match=r"1606.*no feature Other"):
        session.features["Other"]


def test_modes_language_install_level_and_paths() -> None:
    session = SimulatedSession({"INSTALLDIR": "C:\\App", "ProductLanguage": "1031"})
    session.set_mode(RunMode.REBOOT_AT_END, True)
    assert session.mode(RunMode.REBOOT_AT_END)
    with pytest.raises(msica.InstallerError, match="error 5"):
        session.set_mode(RunMode.MAINTENANCE, True)
    assert session.language == 1031
    session.set_install_level(3)
    assert session.properties["INSTALLLEVEL"] == "3"
    assert session.target_path("INSTALLDIR") == "C:\\App\\"
    session.set_target_path("INSTALLDIR", "D:\\Other")
    assert session["INSTALLDIR"] == "D:\\Other\\"
    with pytest.raises(DirectoryNotFoundError):
        session.target_path("NOWHERE")


def test_what_the_simulator_cannot_do_is_said_plainly() -> None:
    session = SimulatedSession()
    with pytest.raises(SimulatorError, match=r"runs only msica actions.*msica run"):
        session.do_action("CostFinalize")
    with pytest.raises(SimulatorError, match=r"no database.*from_msi"):
        session.database  # noqa: B018
    with pytest.raises(SimulatorError, match="no costing"):
        session.verify_disk_space()


@custom_action
def SetsFlag(session: Session) -> None:
    session["FLAG"] = "set by SetsFlag"


def test_do_action_runs_an_imported_msica_action() -> None:
    session = SimulatedSession()
    session.do_action("SetsFlag")
    assert session.properties["FLAG"] == "set by SetsFlag"


# --- from_msi ---------------------------------------------------------------------------

PRODUCT_WXS = """<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="simulated from msi" Language="1031" Version="2.3.4" Manufacturer="msica"
           UpgradeCode="6f0c9a52-3d41-4f59-8c55-0f3b2a1d9e70">
    <Package InstallerVersion="500" Compressed="yes"/>
    <Property Id="GREETING" Value="hallo; a=b [x]"/>
    <Property Id="MULTI" Value="line one&#10;line two"/>
    <Directory Id="TARGETDIR" Name="SourceDir"/>
    <Feature Id="Main" Level="1"/>
  </Product>
</Wix>
"""


@pytest.fixture(scope="module")
def product_msi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("wixl") is None:
        pytest.fail("wixl not found: scripts/setup.sh installs it (apt-get install wixl)")
    return wixl_msi(tmp_path_factory.mktemp("from_msi"), PRODUCT_WXS, "product")


def test_from_msi_reads_the_property_table(product_msi: Path) -> None:
    session = SimulatedSession.from_msi(product_msi, {"GREETING": "overridden"},
                                        action="Check")
    assert session["ProductName"] == "simulated from msi"
    assert session["ProductVersion"] == "2.3.4"
    assert session["MULTI"] == "line one\nline two"
    assert session["GREETING"] == "overridden"
    assert session.product_code.startswith("{")
    assert session.language == 1031
    assert SimulatedSession.from_msi(product_msi)["GREETING"] == "hallo; a=b [x]"


def test_from_msi_database_answers_table_and_summary_questions(product_msi: Path) -> None:
    with SimulatedSession.from_msi(product_msi).database as database:
        assert database.has_table("Property")
        assert not database.has_table("NoSuchTable")
        assert database.has_column("Property", "Value")
        assert "InstallExecuteSequence" in database.tables
        assert database.summary["subject"] == "simulated from msi"


@custom_action
def ReadsTheDatabase(session: Session) -> None:
    with session.database as database:
        (value,) = database.execute(
            "SELECT `Value` FROM `Property` WHERE `Property` = ?", "GREETING")[0]
        session["SEEN"] = str(value)
        with database.view("SELECT `Property`, `Value` FROM `Property`") as view:
            view.execute()
            view.insert_temporary(msica.Record.of(["ADDED_AT_RUNTIME", "temporary row"]))
        rows = database.execute("SELECT `Value` FROM `Property` WHERE `Property` = ?",
                                "ADDED_AT_RUNTIME")
        session["TEMPORARY_SEEN"] = str(rows[0][0])
        database.execute("UPDATE `Property` SET `Value` = ? WHERE `Property` = ?",
                         "changed", "GREETING")


def test_an_action_queries_the_package_and_adds_temporary_rows(product_msi: Path) -> None:
    session = SimulatedSession.from_msi(product_msi)
    assert run_action(ReadsTheDatabase, session) == 1603
    assert session.properties["SEEN"] == "hallo; a=b [x]"
    assert session.properties["TEMPORARY_SEEN"] == "temporary row"
    # Persistent rows cannot change in a running install: the engine's error, with why.
    assert "FunctionFailedError: MsiViewExecute failed with error 1627" in session.log_lines[-1]
    assert "read-only but for temporary rows" in session.log_lines[-1]
    # The row lasts as long as the session; a new session sees the package as it is.
    fresh = SimulatedSession.from_msi(product_msi).database
    assert fresh.execute("SELECT `Value` FROM `Property` WHERE `Property` = ?",
                         "ADDED_AT_RUNTIME") == []
