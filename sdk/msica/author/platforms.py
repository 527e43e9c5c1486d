"""Whether an msica DLL loads on every Windows a package can be installed on.

A package's platform is the first part of its summary Template ("Intel;1033",
"x64;1033", "Arm64;1033"; empty means Intel). Windows Installer runs a DLL
custom action in a custom-action server of the DLL's own bitness, so on
64-bit Windows either kind of DLL runs in either kind of package (Microsoft,
"64-Bit Custom Actions"). What fails is a DLL the machine cannot run at all:

- a 32-bit (Intel) package also installs on 32-bit Windows, where an x64 or
  ARM64 DLL cannot load; a LaunchCondition on ``VersionNT64`` keeps such a
  package off 32-bit Windows, and then an x64 DLL is fine;
- an ARM64 DLL loads only on ARM64 Windows, which an Intel or x64 package
  does not require.

Either way the action fails with error 1723 on the machines it cannot load
on, so ``msica inject`` warns and ``msica inspect`` shows it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["arch_warning", "package_platform"]


def package_platform(template: str | None) -> str:
    """The platform a summary Template names: "Intel", "x64", "Arm64", ... ("Intel" if empty)."""
    platform = (template or "").split(";", 1)[0].strip()
    return platform or "Intel"


def arch_warning(
    template: str | None, arch: str, launch_conditions: Iterable[str] = ()
) -> str | None:
    """Why a DLL built for ``arch`` fails on some Windows the package installs on, or None."""
    platform = package_platform(template).lower()
    arch = arch.lower()
    only_64_bit = any("versionnt64" in condition.lower() for condition in launch_conditions)
    if platform == "intel" and arch == "x64" and not only_64_bit:
        return (
            "the package is 32-bit (Template Intel), so 32-bit Windows can install it, and an "
            "x64 DLL cannot load there: build for x86 (archs = [\"x86\"]) or keep the package "
            "off 32-bit Windows with a VersionNT64 launch condition"
        )
    if arch == "arm64" and platform in ("intel", "x64"):
        return (
            f"the package is {package_platform(template)}, so Windows on x86 and x64 machines "
            "can install it, and an arm64 DLL loads only on ARM64 Windows: build for x86 or "
            "x64, or inject this DLL into an Arm64 package"
        )
    return None
