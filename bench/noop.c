/* Ten native no-op custom actions for bench/run.py, the baseline the Python
 * actions are compared with. bench/run.py exports them undecorated with a .def
 * file (Noop01 ... Noop10) and links nothing beyond the C runtime. */
#include <windows.h>
#include <msi.h>

UINT __stdcall Noop01(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
UINT __stdcall Noop02(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
UINT __stdcall Noop03(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
UINT __stdcall Noop04(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
UINT __stdcall Noop05(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
UINT __stdcall Noop06(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
UINT __stdcall Noop07(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
UINT __stdcall Noop08(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
UINT __stdcall Noop09(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
UINT __stdcall Noop10(MSIHANDLE h) { (void)h; return ERROR_SUCCESS; }
