"""Authoring: put msica DLLs into installers (WiX sources, .msi databases)."""
