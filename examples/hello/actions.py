"""Two custom actions, built by `msica build` into one DLL with two exports."""

from msica import ActionResult, Session, custom_action


@custom_action
def SayHello(session: Session) -> ActionResult:
    """Read a property given on the msiexec command line and answer in another."""
    name = session.get("GREET_NAME", "world")
    session["GREETING"] = f"Hello, {name}!"
    session.log(f"greeted {name} ({len(name)} characters)")
    return ActionResult.SUCCESS


@custom_action(after="SayHello")
def MeasureGreeting(session: Session) -> ActionResult:
    """A second action in the same DLL, reached through its own export."""
    greeting = session["GREETING"]
    session["GREETING_LENGTH"] = str(len(greeting))
    session.log(f"the greeting has {len(greeting)} characters")
    return ActionResult.SUCCESS
