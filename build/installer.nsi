; Outpost's NSIS installer: our own script, with NSIS's stock includes and plugins only, so that
; Debian's makensis builds it (electron-builder's template needs plugins Debian lacks, and is a 32-bit
; stub). tools/dist/nsis.ts passes the defines; docs/installing.md documents switches, layout and
; exit codes.
;
;   VERSION      the app's version, as Apps & features shows it (1.2.3)
;   VI_VERSION   its four-part form for the version resource (1.2.3.0)
;   APP_DIR      electron-builder's win-unpacked folder (Outpost.exe, resources\...)
;   OUT_FILE     the setup program to write
;   COMPRESSION  release (LZMA, solid: small, slow to build) or fast (stored: for tests)
;   PUBLISHER    Apps & features' publisher
;   ICON         optional: the .ico of setup and uninstaller
;
; Layout: the application in $INSTDIR (exactly the packaged tree: the self-updater swaps that whole
; folder for the new version's tree), and the uninstaller beside it in "$INSTDIR.uninstall", where
; a self-update cannot take it away. The data folder is never inside either.

; The 64-bit stub: the default 32-bit one silently does nothing under 64-bit-only Wine, and Outpost
; is x64 only.
Target amd64-unicode

!macro REQUIRE name
  !ifndef ${name}
    !error "build/installer.nsi needs -D${name}=... (tools/dist/nsis.ts passes VERSION, VI_VERSION, APP_DIR, OUT_FILE, COMPRESSION, PUBLISHER)"
  !endif
!macroend
!insertmacro REQUIRE VERSION
!insertmacro REQUIRE VI_VERSION
!insertmacro REQUIRE APP_DIR
!insertmacro REQUIRE OUT_FILE
!insertmacro REQUIRE COMPRESSION
!insertmacro REQUIRE PUBLISHER

!if "${COMPRESSION}" == "release"
  SetCompressor /SOLID lzma
  SetCompressorDictSize 64
!else if "${COMPRESSION}" == "fast"
  ; 186 MB of files stored as they are: built in seconds; for tests, never for a release.
  SetCompress off
!else
  !error "COMPRESSION is release or fast (not ${COMPRESSION})"
!endif

!include MUI2.nsh
!include LogicLib.nsh
!include FileFunc.nsh

!define APP_NAME "Outpost"
!define APP_EXE "Outpost.exe"
!define UNINSTALLER "Uninstall Outpost.exe"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Outpost"
; Start at login (app/main/platform/win32-autostart.ts): SHCTX's Run key, value Outpost.
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define RUN_VALUE "Outpost"
; Beside $INSTDIR: the uninstaller's folder (ours), the previous tree while it is replaced (ours), and
; what the self-updater leaves after a crash (updater/, app/main/core/update/handoff.ts).
!define UNINSTALL_SUFFIX ".uninstall"
!define OLD_SUFFIX ".outpost-old"
!define BACKUP_SUFFIX ".outpost-backup"
!define FAILED_SUFFIX ".failed-"
; How long a running agent that is updating (`--quit` exit 3) is waited for.
!define STOP_WAIT_S 60

; Exit codes (besides NSIS's own: 1 cancelled, 2 aborted); docs/installing.md lists them.
!define EXIT_BUSY 3
!define EXIT_NOT_STOPPED 4
!define EXIT_AUTOSTART 6
!define EXIT_FOLDER 7
!define EXIT_IN_USE 8
!define EXIT_ENROLL 9
!define EXIT_USAGE 64
; Windows' ERROR_ELEVATION_REQUIRED.
!define EXIT_ELEVATION 740

Name "${APP_NAME}"
OutFile "${OUT_FILE}"
; Elevation only for a per-machine installation, which must be started elevated (checked in .onInit):
; a per-user installation never shows a UAC prompt.
RequestExecutionLevel user
ShowInstDetails show
ShowUninstDetails show
AllowSkipFiles off
BrandingText "${APP_NAME} ${VERSION}"

VIProductVersion "${VI_VERSION}"
VIAddVersionKey ProductName "${APP_NAME}"
VIAddVersionKey ProductVersion "${VERSION}"
VIAddVersionKey FileVersion "${VERSION}"
VIAddVersionKey CompanyName "${PUBLISHER}"
VIAddVersionKey FileDescription "${APP_NAME} ${VERSION} Setup"
VIAddVersionKey LegalCopyright "${PUBLISHER}"

!ifdef ICON
  !define MUI_ICON "${ICON}"
  !define MUI_UNICON "${ICON}"
!endif
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Var MoveTries    ; MoveAside's attempts
Var Scope        ; user | machine
Var NoStart      ; 1: /NOSTART
Var RemoveData   ; 1: /REMOVEDATA (uninstaller)
Var ExitCode     ; set on success paths that still have something to report (EXIT_AUTOSTART, EXIT_ENROLL)
Var Enroll       ; /ENROLL=FILE: the file holding the enrollment secret (a full path), or empty
Var MovedAside   ; 1 while the previous tree waits in $INSTDIR${OLD_SUFFIX}: .onInstFailed puts it back
Var LogFile
Var UninstDir    ; the uninstaller's own folder
Var Recorded     ; the folder of this scope's installation, from its Uninstall entry

; ---------------------------------------------------------------------------------------------
; Messages go to the details view and to a log file in %TEMP% (a silent run shows nothing else).

!macro Log text
  Push `${text}`
  !ifdef __UNINSTALL__
    Call un.WriteLog
  !else
    Call WriteLog
  !endif
!macroend
!define Log "!insertmacro Log"

; Stops with an exit code: the reason is logged and shown (not in silent mode).
!macro Fail code text
  ${Log} `ERROR: ${text}`
  MessageBox MB_ICONSTOP|MB_OK `${text}` /SD IDOK
  SetErrorLevel ${code}
  Abort
!macroend
!define Fail "!insertmacro Fail"

; Like Fail, before any page or section has run (in .onInit).
!macro Refuse code text
  ${Log} `ERROR: ${text}`
  MessageBox MB_ICONSTOP|MB_OK `${text}` /SD IDOK
  SetErrorLevel ${code}
  Quit
!macroend
!define Refuse "!insertmacro Refuse"

!macro FUNCTIONS un
  Function ${un}WriteLog
    Exch $0
    Push $1
    DetailPrint $0
    ClearErrors
    FileOpen $1 $LogFile a
    ${IfNot} ${Errors}
      FileSeek $1 0 END
      FileWriteUTF16LE $1 "$0$\r$\n"
      FileClose $1
    ${EndIf}
    Pop $1
    Pop $0
  FunctionEnd

  Function ${un}StartLog
    Exch $0
    StrCpy $LogFile $0
    Pop $0
    ClearErrors
    FileOpen $0 $LogFile w
    ${IfNot} ${Errors}
      FileWriteUTF16LE /BOM $0 ""
      FileClose $0
    ${EndIf}
  FunctionEnd

  ; Stops the agent of this installation gracefully: `Outpost.exe --quit` asks it over its
  ; authenticated IPC and returns once its process is gone (0, also when none runs). While it is
  ; updating it refuses (3): waited for, up to STOP_WAIT_S. With $0 = 1 (the installer), the
  ; updater's backup beside the installation is waited for too, before anything is stopped: an
  ; update is in flight, or was interrupted, and its recovery would put the backup back over freshly
  ; installed files. Returns $R9 = 0 or an exit code, and $R8 the reason.
  Function ${un}StopAgent
    StrCpy $R9 0
    StrCpy $R8 ""
    StrCpy $R7 0
    ${Do}
      StrCpy $R6 ""
      ${If} $0 == 1
      ${AndIf} ${FileExists} "$INSTDIR${BACKUP_SUFFIX}\*.*"
        StrCpy $R6 "an update is being applied ($INSTDIR${BACKUP_SUFFIX} exists)"
      ${ElseIf} ${FileExists} "$INSTDIR\${APP_EXE}"
        nsExec::ExecToStack '"$INSTDIR\${APP_EXE}" --quit'
        Pop $R0
        Pop $R1
        ${If} $R0 == 0
          ${Log} "Outpost.exe --quit: $R1"
          ; An update that began just before (the agent handed over and exited) shows as its backup.
          ${If} $0 == 1
          ${AndIf} ${FileExists} "$INSTDIR${BACKUP_SUFFIX}\*.*"
            StrCpy $R6 "an update is being applied ($INSTDIR${BACKUP_SUFFIX} exists)"
          ${EndIf}
        ${ElseIf} $R0 == 3
          StrCpy $R6 "the running agent is updating ($R1)"
        ${Else}
          StrCpy $R9 ${EXIT_NOT_STOPPED}
          StrCpy $R8 "The running Outpost could not be stopped: $\"$INSTDIR\${APP_EXE}$\" --quit exited with $R0: $R1"
          Return
        ${EndIf}
      ${EndIf}
      ${If} $R6 == ""
        Return
      ${EndIf}
      ${If} $R7 >= ${STOP_WAIT_S}
        StrCpy $R9 ${EXIT_BUSY}
        StrCpy $R8 "Outpost is busy: $R6, still after ${STOP_WAIT_S} s. Run this again in a few minutes; if an update was interrupted, starting Outpost once finishes or undoes it."
        Return
      ${EndIf}
      ${Log} "waiting: $R6"
      Sleep 2000
      IntOp $R7 $R7 + 2
    ${Loop}
  FunctionEnd

  ; Moves the installation aside to $INSTDIR${OLD_SUFFIX}: one rename, refused by Windows while a
  ; process runs from it or holds a file in it, so nothing is half-deleted. The working folder moves
  ; out first (Windows and Wine refuse to rename a process's working folder). Error flag on failure.
  ; Tried for a few seconds: a process that has just exited (the agent --quit stopped) can hold its
  ; files a moment longer. Sets the error flag when the folder could not be moved.
  Function ${un}MoveAside
    SetOutPath "$TEMP"
    RMDir /r "$INSTDIR${OLD_SUFFIX}"
    StrCpy $MoveTries 0
    ${Do}
      ClearErrors
      Rename "$INSTDIR" "$INSTDIR${OLD_SUFFIX}"
      ${IfNot} ${Errors}
        ${Break}
      ${EndIf}
      IntOp $MoveTries $MoveTries + 1
      ${If} $MoveTries >= 10
        ${Break}
      ${EndIf}
      Sleep 500
    ${Loop}
  FunctionEnd
!macroend
!insertmacro FUNCTIONS ""
!insertmacro FUNCTIONS "un."

; ---------------------------------------------------------------------------------------------
; Installer

Function .onInit
  SetRegView 64
  StrCpy $ExitCode 0
  StrCpy $MovedAside 0
  Push "$TEMP\Outpost-Setup.log"
  Call StartLog
  ${Log} "Outpost ${VERSION} setup: $CMDLINE"

  ${GetParameters} $R0
  StrCpy $R2 ""
  ClearErrors
  ${GetOptions} $R0 "/ALLUSERS" $R1
  ${IfNot} ${Errors}
    StrCpy $R2 machine
  ${EndIf}
  ClearErrors
  ${GetOptions} $R0 "/CURRENTUSER" $R1
  ${IfNot} ${Errors}
    ${If} $R2 == machine
      ${Refuse} ${EXIT_USAGE} "/ALLUSERS and /CURRENTUSER exclude each other: choose one."
    ${EndIf}
    StrCpy $R2 user
  ${EndIf}
  ClearErrors
  ${GetOptions} $R0 "/NOSTART" $R1
  ${IfNot} ${Errors}
    StrCpy $NoStart 1
  ${EndIf}
  ; /ENROLL=FILE (quoted when it holds a space): only the file's path is ever logged or passed on,
  ; never what it holds. A relative path is the setup program's folder's (a deployment package
  ; carries the file beside setup), whatever folder setup was started in.
  StrCpy $Enroll ""
  ClearErrors
  ${GetOptions} $R0 "/ENROLL=" $R1
  ${IfNot} ${Errors}
    ${If} $R1 == ""
      ${Refuse} ${EXIT_USAGE} "/ENROLL= needs the file that holds the organisation's enrollment secret: /ENROLL=C:\path\enrollment.secret"
    ${EndIf}
    StrCpy $R6 $R1 1
    StrCpy $R7 $R1 1 1
    ${If} $R6 == "\"
    ${OrIf} $R6 == "/"
    ${OrIf} $R7 == ":"
      StrCpy $Enroll $R1
    ${Else}
      StrCpy $Enroll "$EXEDIR\$R1"
    ${EndIf}
    ${Log} "enrollment secret from: $Enroll"
  ${EndIf}

  ; Where Outpost is installed already (an upgrade keeps its scope and folder).
  ReadRegStr $R3 HKCU "${UNINSTALL_KEY}" InstallLocation
  ReadRegStr $R4 HKLM "${UNINSTALL_KEY}" InstallLocation
  UserInfo::GetAccountType
  Pop $R5
  ${If} $R2 == ""
    ${If} $R3 != ""
      StrCpy $R2 user
    ${ElseIf} $R4 != ""
      ${If} $R5 != "Admin"
        ${Refuse} ${EXIT_ELEVATION} "Outpost is installed for every user of this computer in $R4: run this installer as an administrator to upgrade it, or with /CURRENTUSER to install it for you only."
      ${EndIf}
      StrCpy $R2 machine
    ${Else}
      StrCpy $R2 user
    ${EndIf}
  ${EndIf}
  StrCpy $Scope $R2
  ${If} $Scope == user
    StrCpy $Recorded $R3
  ${Else}
    StrCpy $Recorded $R4
  ${EndIf}

  ${If} $Scope == machine
    ${If} $R5 != "Admin"
      ${Refuse} ${EXIT_ELEVATION} "Installing Outpost for every user (/ALLUSERS) needs administrator rights: run this installer elevated (as an administrator), or without /ALLUSERS to install it for you only."
    ${EndIf}
    SetShellVarContext all
  ${Else}
    SetShellVarContext current
  ${EndIf}

  ; /D= (NSIS sets $INSTDIR before .onInit) wins; else the recorded folder; else the default.
  ${If} $INSTDIR == ""
    ${If} $Recorded != ""
      StrCpy $INSTDIR $Recorded
    ${ElseIf} $Scope == user
      StrCpy $INSTDIR "$LOCALAPPDATA\Programs\${APP_NAME}"
    ${Else}
      StrCpy $INSTDIR "$PROGRAMFILES64\${APP_NAME}"
    ${EndIf}
  ${EndIf}
  ${Log} "scope: $Scope; folder: $INSTDIR"
FunctionEnd

Section "Outpost" SecMain
  SectionIn RO
  ; One installation per scope (one Uninstall entry, one Run value): a second folder is refused
  ; while the recorded one still holds Outpost.
  ${If} $Recorded != ""
  ${AndIf} $Recorded != $INSTDIR
  ${AndIf} ${FileExists} "$Recorded\${APP_EXE}"
    ${Fail} ${EXIT_FOLDER} "Outpost is already installed in $Recorded: run this installer without /D= to upgrade it there, or uninstall it first."
  ${EndIf}
  ; A folder with someone else's files is refused: the installation (and every self-update, which
  ; swaps the whole folder) owns all of it.
  ${If} ${FileExists} "$INSTDIR\*.*"
  ${AndIfNot} ${FileExists} "$INSTDIR\${APP_EXE}"
    ${DirState} "$INSTDIR" $R0
    ${If} $R0 == 1
      ${Fail} ${EXIT_FOLDER} "$INSTDIR is not empty and holds no Outpost installation: choose an empty or new folder for Outpost."
    ${EndIf}
  ${EndIf}

  StrCpy $0 1
  Call StopAgent
  ${If} $R9 != 0
    ${Fail} $R9 $R8
  ${EndIf}

  ; The previous version's tree goes as a whole (files it had and this one has not must not stay),
  ; but only once the new one is in place: until then a failure puts it back (.onInstFailed).
  ${If} ${FileExists} "$INSTDIR\*.*"
    Call MoveAside
    ${If} ${Errors}
      ${Fail} ${EXIT_IN_USE} "$INSTDIR is in use (a program runs from it or holds one of its files open, perhaps another user's Outpost): close it, then run this installer again."
    ${EndIf}
    StrCpy $MovedAside 1
  ${EndIf}

  SetOutPath "$INSTDIR"
  File /r "${APP_DIR}\*.*"
  StrCpy $MovedAside 0
  ${If} ${FileExists} "$INSTDIR${OLD_SUFFIX}\*.*"
    RMDir /r "$INSTDIR${OLD_SUFFIX}"
    ${If} ${FileExists} "$INSTDIR${OLD_SUFFIX}\*.*"
      ${Log} "could not remove all of the previous version in $INSTDIR${OLD_SUFFIX} (the uninstaller removes it)"
    ${EndIf}
  ${EndIf}
  ${Log} "installed Outpost ${VERSION} in $INSTDIR"

  CreateDirectory "$INSTDIR${UNINSTALL_SUFFIX}"
  WriteUninstaller "$INSTDIR${UNINSTALL_SUFFIX}\${UNINSTALLER}"
  CreateShortcut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}"

  ; Apps & features (HKCU per user, HKLM per machine: SHCTX follows SetShellVarContext). The
  ; self-updater finds this entry by InstallLocation and updates DisplayVersion and EstimatedSize.
  ${GetSize} "$INSTDIR" "/S=0K" $R0 $R1 $R2
  WriteRegStr SHCTX "${UNINSTALL_KEY}" DisplayName "${APP_NAME}"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" DisplayVersion "${VERSION}"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" Publisher "${PUBLISHER}"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" DisplayIcon "$INSTDIR\${APP_EXE},0"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" InstallLocation "$INSTDIR"
  WriteRegStr SHCTX "${UNINSTALL_KEY}" UninstallString '"$INSTDIR${UNINSTALL_SUFFIX}\${UNINSTALLER}"'
  WriteRegStr SHCTX "${UNINSTALL_KEY}" QuietUninstallString '"$INSTDIR${UNINSTALL_SUFFIX}\${UNINSTALLER}" /S'
  WriteRegStr SHCTX "${UNINSTALL_KEY}" InstallScope "$Scope"
  WriteRegDWORD SHCTX "${UNINSTALL_KEY}" EstimatedSize $R0
  WriteRegDWORD SHCTX "${UNINSTALL_KEY}" NoModify 1
  WriteRegDWORD SHCTX "${UNINSTALL_KEY}" NoRepair 1

  ; Start at login, registered by the installed program itself (the one implementation of it). A
  ; failure does not undo the installation, which works without it: it is reported (exit 6).
  nsExec::ExecToStack '"$INSTDIR\${APP_EXE}" --enable-autostart --scope $Scope'
  Pop $R0
  Pop $R1
  ${If} $R0 == 0
    ${Log} "Outpost.exe --enable-autostart: $R1"
  ${Else}
    StrCpy $ExitCode ${EXIT_AUTOSTART}
    ${Log} "WARNING: start at login is not registered: Outpost.exe --enable-autostart --scope $Scope exited with $R0: $R1"
    MessageBox MB_ICONEXCLAMATION|MB_OK "Outpost is installed, but it could not register itself to start at login (exit $R0): $R1" /SD IDOK
  ${EndIf}

  ; /ENROLL=FILE: the organisation's enrollment secret, kept by the installed program where this
  ; scope's agent looks for it (per machine, elevated: the machine's storage folder). The program
  ; reads it from FILE: the command line and this log name the file only, and its output says where
  ; the secret went, never the secret. A failure leaves the installation as it is (exit 9, unless
  ; exit 6 came first).
  ${If} $Enroll != ""
    nsExec::ExecToStack '"$INSTDIR\${APP_EXE}" --set-enrollment-secret "$Enroll"'
    Pop $R0
    Pop $R1
    ${If} $R0 == 0
      ${Log} "Outpost.exe --set-enrollment-secret $\"$Enroll$\": $R1"
    ${Else}
      ${If} $ExitCode == 0
        StrCpy $ExitCode ${EXIT_ENROLL}
      ${EndIf}
      ${Log} "WARNING: the enrollment secret is not kept: Outpost.exe --set-enrollment-secret $\"$Enroll$\" exited with $R0: $R1"
      MessageBox MB_ICONEXCLAMATION|MB_OK "Outpost is installed, but it could not keep the enrollment secret from $Enroll (exit $R0): $R1" /SD IDOK
    ${EndIf}
  ${EndIf}

  ; Per user, the agent starts now. Per machine it does not: this installer runs elevated (or as
  ; SYSTEM under a deployment tool), and an agent it started would run with those rights and the
  ; machine's data folder instead of a user's; every user's agent starts at their next sign-in.
  ${If} $NoStart == 1
    ${Log} "not started (/NOSTART)"
  ${ElseIf} $Scope == machine
    ${Log} "not started: installed for every user, Outpost starts at each user's next sign-in"
  ${Else}
    Exec '"$INSTDIR\${APP_EXE}"'
    ${Log} "started $INSTDIR\${APP_EXE}"
  ${EndIf}
  SetErrorLevel $ExitCode
SectionEnd

; An aborted installation puts the previous version back, as it was (its agent, if it was stopped,
; starts again at the next sign-in or from the Start menu).
Function .onInstFailed
  ${Log} "the installation failed"
  ${If} $MovedAside == 1
    SetOutPath "$TEMP"
    RMDir /r "$INSTDIR"
    Rename "$INSTDIR${OLD_SUFFIX}" "$INSTDIR"
    ${Log} "the previous installation is back in $INSTDIR"
  ${EndIf}
FunctionEnd

; ---------------------------------------------------------------------------------------------
; Uninstaller: "Uninstall Outpost.exe" in $INSTDIR${UNINSTALL_SUFFIX}. It runs as a copy in %TEMP%
; (NSIS relaunches it there, so it can remove itself); its own folder arrives as $INSTDIR.

Function un.onInit
  SetRegView 64
  StrCpy $ExitCode 0
  Push "$TEMP\Outpost-Uninstall.log"
  Call un.StartLog
  ${Log} "Outpost uninstaller: $CMDLINE"

  StrCpy $UninstDir $INSTDIR
  StrLen $R0 "${UNINSTALL_SUFFIX}"
  StrCpy $R1 $INSTDIR "" -$R0
  ${If} $R1 != "${UNINSTALL_SUFFIX}"
    ${Refuse} ${EXIT_USAGE} "This uninstaller is not in its folder (<installation>${UNINSTALL_SUFFIX}): $INSTDIR."
  ${EndIf}
  StrCpy $INSTDIR $INSTDIR -$R0

  ; The scope is the hive whose entry names this installation.
  ReadRegStr $R2 HKCU "${UNINSTALL_KEY}" InstallLocation
  ReadRegStr $R3 HKLM "${UNINSTALL_KEY}" InstallLocation
  ${If} $R2 == $INSTDIR
    StrCpy $Scope user
  ${ElseIf} $R3 == $INSTDIR
    StrCpy $Scope machine
  ${Else}
    StrCpy $Scope user
    ${Log} "no Uninstall entry names $INSTDIR: removing it as a per-user installation"
  ${EndIf}
  ${If} $Scope == machine
    UserInfo::GetAccountType
    Pop $R4
    ${If} $R4 != "Admin"
      ${Refuse} ${EXIT_ELEVATION} "Outpost is installed for every user of this computer: uninstall it as an administrator."
    ${EndIf}
    SetShellVarContext all
  ${Else}
    SetShellVarContext current
  ${EndIf}

  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/REMOVEDATA" $R1
  ${IfNot} ${Errors}
    StrCpy $RemoveData 1
  ${EndIf}
  ${Log} "scope: $Scope; folder: $INSTDIR"
FunctionEnd

Section "Uninstall"
  StrCpy $0 0
  Call un.StopAgent
  ${If} $R9 != 0
    ${Fail} $R9 $R8
  ${EndIf}

  ; One rename first: if anything still runs from the installation (another user's Outpost), nothing
  ; is removed and the uninstaller can be run again.
  ${If} ${FileExists} "$INSTDIR\*.*"
    Call un.MoveAside
    ${If} ${Errors}
      ${Fail} ${EXIT_IN_USE} "$INSTDIR is in use (a program runs from it or holds one of its files open, perhaps another user's Outpost): close it, then uninstall again."
    ${EndIf}
  ${EndIf}

  ; Start at login goes through the program, as it came (from where it now lies).
  ${If} ${FileExists} "$INSTDIR${OLD_SUFFIX}\${APP_EXE}"
    nsExec::ExecToStack '"$INSTDIR${OLD_SUFFIX}\${APP_EXE}" --disable-autostart --scope $Scope'
    Pop $R0
    Pop $R1
    ${If} $R0 == 0
      ${Log} "Outpost.exe --disable-autostart: $R1"
    ${Else}
      ${Log} "Outpost.exe --disable-autostart --scope $Scope exited with $R0: $R1"
    ${EndIf}
  ${EndIf}
  ; A Run value must not outlive the program it starts: when the program could not remove it (it
  ; failed, or the installation was damaged and Outpost.exe is gone), it is removed here.
  ClearErrors
  ReadRegStr $R0 SHCTX "${RUN_KEY}" "${RUN_VALUE}"
  ${IfNot} ${Errors}
    DeleteRegValue SHCTX "${RUN_KEY}" "${RUN_VALUE}"
    ${If} ${Errors}
      StrCpy $ExitCode ${EXIT_AUTOSTART}
      ${Log} "WARNING: start at login is still registered: could not remove the Run value ${RUN_VALUE}"
    ${Else}
      ${Log} "removed the Run value ${RUN_VALUE}, which the program had left"
    ${EndIf}
  ${EndIf}

  RMDir /r "$INSTDIR${OLD_SUFFIX}"
  ; What a self-update leaves beside the installation after a crash.
  RMDir /r "$INSTDIR${BACKUP_SUFFIX}"
  ${GetParent} "$INSTDIR" $R2
  FindFirst $R0 $R1 "$INSTDIR${FAILED_SUFFIX}*"
  ${DoWhile} $R1 != ""
    RMDir /r "$R2\$R1"
    FindNext $R0 $R1
  ${Loop}
  FindClose $R0
  ${If} ${FileExists} "$INSTDIR${OLD_SUFFIX}\*.*"
    ${Log} "WARNING: could not remove all of $INSTDIR${OLD_SUFFIX}"
  ${EndIf}
  ${Log} "removed $INSTDIR"

  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  DeleteRegKey SHCTX "${UNINSTALL_KEY}"

  ; The data folder (config, logs, update files) stays unless asked: /REMOVEDATA, or Yes to the
  ; question of an interactive uninstall. It is the agent's: OUTPOST_HOME, else the scope's folder.
  ReadEnvStr $R0 OUTPOST_HOME
  ${If} $R0 == ""
    ${If} $Scope == machine
      ReadEnvStr $R0 ProgramData
    ${Else}
      ReadEnvStr $R0 LOCALAPPDATA
    ${EndIf}
    StrCpy $R0 "$R0\${APP_NAME}"
  ${EndIf}
  ${If} $RemoveData != 1
  ${AndIfNot} ${Silent}
  ${AndIf} ${FileExists} "$R0\*.*"
    MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON2 "Also remove Outpost's data in $R0 (its settings, logs and downloaded updates)? Choose No to keep it for a later installation." /SD IDNO IDNO +2
    StrCpy $RemoveData 1
  ${EndIf}
  ${If} $RemoveData == 1
    ; Only a folder the agent made (its config.json): never whatever OUTPOST_HOME happens to name.
    ${If} ${FileExists} "$R0\config.json"
      RMDir /r "$R0"
      ${Log} "removed the data folder $R0"
    ${ElseIf} ${FileExists} "$R0\*.*"
      RMDir "$R0"
      ${Log} "kept $R0: it holds no config.json, so it is not known to be Outpost's data folder"
    ${EndIf}
  ${Else}
    ${Log} "kept the data folder $R0"
  ${EndIf}

  Delete "$UninstDir\${UNINSTALLER}"
  RMDir "$UninstDir"
  SetErrorLevel $ExitCode
SectionEnd
