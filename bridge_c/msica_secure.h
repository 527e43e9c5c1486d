/*
 * msica_secure.h - who may write the directories code is loaded from.
 *
 * Policy: the runtime tree (%LOCALAPPDATA%\msica\runtimes\<hash>) is created
 * with a protected DACL that gives full control to the current identity,
 * SYSTEM and Administrators only; nothing is inherited from above. Before
 * code is loaded from an existing directory, it and its parents up to
 * ...\msica must be owned by one of those three and grant no write access to
 * anyone else, or the action fails with a log line saying so. An elevated
 * action (SYSTEM's profile) therefore never loads from a directory a user
 * could have written, and a user's action never from one another user could.
 */
#ifndef MSICA_SECURE_H
#define MSICA_SECURE_H

#include <windows.h>
#include <msi.h>

/* Creates `path` (if missing) with the private DACL. 0 or -1 (logged). */
int msica_secure_mkdir(MSIHANDLE install, const wchar_t *path);

/* 0 when only the current identity, SYSTEM or Administrators own and may
 * write `path`; -1 (logged, naming the owner or the SID with access) else. */
int msica_secure_check(MSIHANDLE install, const wchar_t *path);

#endif /* MSICA_SECURE_H */
