"""Give every msica action in an .msi built by wixl the Type its DLL declares.

wixl (msitools 0.101, measured) knows Execute="deferred" but writes
Execute="rollback" and Execute="commit" actions as immediate ones: a rollback
action would then run during the install instead of on failure. Run this after
wixl (WiX v4 needs nothing of the kind):

    python tools/wixl_types.py dist/{{ cookiecutter.project_slug }}.x64.dll dist/{{ cookiecutter.project_slug }}.msi

It reads the actions from the DLL's manifest (msica build wrote it) and sets
each one's CustomAction.Type with msibuild (msitools).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from msica.author.wxs import read_dll


def main(dll: Path, msi: Path) -> int:
    for action in read_dll(dll).actions:
        query = f"UPDATE CustomAction SET Type = {int(action['type'])} WHERE Action = '{action['name']}'"
        done = subprocess.run(["msibuild", str(msi), "-q", query], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"msibuild failed on {msi}: {done.stderr.strip()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(f"usage: python {sys.argv[0]} DLL MSI", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
