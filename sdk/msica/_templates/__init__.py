"""Not code: the name under which the top-level templates/ directory ships in a wheel.

pyproject.toml maps the package ``msica._templates`` onto templates/, so a
wheel carries the cookiecutter template as ``msica/_templates/project``; this
file only makes setuptools' package discovery list the name. ``msica new``
finds the template in either place (see :mod:`msica.author.new`).
"""
