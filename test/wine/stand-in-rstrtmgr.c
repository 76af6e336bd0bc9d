/*
 * A stand-in for rstrtmgr.dll, for test/wine/held-files.test.ts: Wine 8's Restart Manager is a stub
 * that never names a process, so this one answers, to check the calls' marshalling on the real x64 ABI.
 * Every registered file is "held" by one process: pid 1000 + its registration index, strAppName the
 * file name exactly as received, and every second one a service named "svc". Arguments the caller must
 * not send (flags, applications, services, NULL out-pointers, another session) are refused with
 * ERROR_INVALID_PARAMETER, and a list that does not fit gets ERROR_MORE_DATA, as the real one does.
 * Built by the test: x86_64-w64-mingw32-gcc -shared -o rstrtmgr.dll stand-in-rstrtmgr.c
 */
#include <windows.h>
#include <restartmanager.h>

#define SESSION 7
#define MAX_FILES 64

static WCHAR names[MAX_FILES][MAX_PATH];
static UINT registered;

__declspec(dllexport) DWORD WINAPI RmStartSession(DWORD *handle, DWORD flags, WCHAR key[]) {
  if (!handle || flags != 0 || !key) return ERROR_INVALID_PARAMETER;
  *handle = SESSION;
  registered = 0;
  lstrcpyW(key, L"0123456789abcdef0123456789abcdef");
  return ERROR_SUCCESS;
}

__declspec(dllexport) DWORD WINAPI RmRegisterResources(DWORD session, UINT nFiles, LPCWSTR files[], UINT nApps,
                                                       RM_UNIQUE_PROCESS apps[], UINT nServices, LPCWSTR services[]) {
  if (session != SESSION) return ERROR_INVALID_HANDLE;
  if (!files || nApps || apps || nServices || services || registered + nFiles > MAX_FILES) return ERROR_INVALID_PARAMETER;
  for (UINT i = 0; i < nFiles; i++) lstrcpynW(names[registered++], files[i], MAX_PATH);
  return ERROR_SUCCESS;
}

__declspec(dllexport) DWORD WINAPI RmGetList(DWORD session, UINT *needed, UINT *count, RM_PROCESS_INFO info[], LPDWORD reasons) {
  if (session != SESSION) return ERROR_INVALID_HANDLE;
  if (!needed || !count || !reasons || (*count > 0 && !info)) return ERROR_INVALID_PARAMETER;
  *needed = registered;
  *reasons = RmRebootReasonNone;
  if (*count < registered) return ERROR_MORE_DATA;
  for (UINT i = 0; i < registered; i++) {
    ZeroMemory(&info[i], sizeof info[i]);
    info[i].Process.dwProcessId = 1000 + i;
    info[i].Process.ProcessStartTime.dwLowDateTime = 0xffffffff;
    lstrcpynW(info[i].strAppName, names[i], CCH_RM_MAX_APP_NAME + 1);
    if (i % 2) lstrcpyW(info[i].strServiceShortName, L"svc");
    info[i].ApplicationType = RmConsole;
    info[i].AppStatus = RmStatusRunning;
    info[i].TSSessionId = 1;
    info[i].bRestartable = TRUE;
  }
  *count = registered;
  return ERROR_SUCCESS;
}

__declspec(dllexport) DWORD WINAPI RmEndSession(DWORD session) {
  return session == SESSION ? ERROR_SUCCESS : ERROR_INVALID_HANDLE;
}
