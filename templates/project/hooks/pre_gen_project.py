"""Refuse names the generated project cannot use, before anything is written.

``msica new`` checks the same things first, with its own messages; this hook
is for running the template with cookiecutter itself.
"""

import keyword
import re
import sys

slug = "{{ cookiecutter.project_slug }}"
version = "{{ cookiecutter.version }}"
problems = []
if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", slug) or keyword.iskeyword(slug):
    problems.append(
        f"project_slug {slug!r} must be a Python module name and a DLL name: "
        "a letter, then letters, digits or '_'"
    )
if not re.fullmatch(r"\d+\.\d+\.\d+", version):
    problems.append(f"version {version!r} must be major.minor.build, e.g. 1.0.0")
for problem in problems:
    print(f"error: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
