# Cross-compiles the shim for Windows with zig from PyPI (`pip install ziglang`).
# Pass -DMSICA_ARCH=x64|x86|arm64. zig is found through the Python that
# has the ziglang package: $MSICA_PYTHON, else python3.
set(CMAKE_SYSTEM_NAME Windows)

if(NOT MSICA_ARCH)
  set(MSICA_ARCH x64)
endif()
if(MSICA_ARCH STREQUAL "x64")
  set(CMAKE_SYSTEM_PROCESSOR AMD64)
  set(zig_target x86_64-windows-gnu)
elseif(MSICA_ARCH STREQUAL "x86")
  set(CMAKE_SYSTEM_PROCESSOR X86)
  set(zig_target x86-windows-gnu)
elseif(MSICA_ARCH STREQUAL "arm64")
  set(CMAKE_SYSTEM_PROCESSOR ARM64)
  set(zig_target aarch64-windows-gnu)
else()
  message(FATAL_ERROR "MSICA_ARCH must be x64, x86 or arm64, not '${MSICA_ARCH}'")
endif()

if(DEFINED ENV{MSICA_PYTHON})
  set(python "$ENV{MSICA_PYTHON}")
else()
  set(python python3)
endif()
execute_process(
  COMMAND ${python} -c "import os, ziglang; print(os.path.dirname(ziglang.__file__))"
  OUTPUT_VARIABLE zig_dir OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE found)
if(NOT found EQUAL 0)
  message(FATAL_ERROR "zig not found: run `${python} -m pip install ziglang`")
endif()

# CMake wants one executable per tool; zig is one executable with verbs.
set(wrappers ${CMAKE_BINARY_DIR}/zig-wrappers)
file(MAKE_DIRECTORY ${wrappers})
foreach(tool cc ar ranlib rc)
  set(args "${tool}")
  if(tool STREQUAL "cc")
    set(args "cc -target ${zig_target}")
  endif()
  file(WRITE ${wrappers}/zig-${tool} "#!/bin/sh\nexec \"${zig_dir}/zig\" ${args} \"$@\"\n")
  file(CHMOD ${wrappers}/zig-${tool} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
       GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()

set(CMAKE_C_COMPILER ${wrappers}/zig-cc)
set(CMAKE_AR ${wrappers}/zig-ar)
set(CMAKE_RANLIB ${wrappers}/zig-ranlib)
set(CMAKE_RC_COMPILER ${wrappers}/zig-rc)
