"""Testing custom actions: a simulated session, a real-engine runner, a log reader.

``SimulatedSession`` and ``run_action`` run an action's code against a
simulated install (no installer needed); :mod:`msica.testing.runner` installs
a real package with msiexec (wine64 msiexec off Windows) and
:mod:`msica.testing.log` reads its verbose log; :mod:`msica.testing.plugin`
gives pytest fixtures for both.
"""

from msica.testing.simulated import SimulatedSession, SimulatorError, run_action

__all__ = ["SimulatedSession", "SimulatorError", "run_action"]
