"""Turning a project into a DLL: the prebuilt shims and the pure-Python edits made to them."""
