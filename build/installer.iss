; Outpost's Inno Setup 6 installer: the behaviour of build/installer.nsi (docs/installing.md documents
; both). Compiled by tools/dist/inno.ts (ISCC of the npm `innosetup` package, under Wine on Linux),
; which passes with /D:
;   AppVersion          the app's version, as Apps & features shows it (1.2.3 or 1.2.3-beta.1)
;   AppDir              electron-builder's win-unpacked folder (Outpost.exe, resources\...)
;   OutputDir           where Setup goes
;   OutputBaseFilename  Outpost-Setup-<version>-inno (without .exe)
;   Compression         lzma2/max (a release) or none (tests: 186 MB must not take minutes)
;   SolidCompression    yes (a release) or no
;   Publisher           Apps & features' publisher (default Outpost)
;   Icon                optional: the .ico of Setup
;
; Layout, as the NSIS installer's: the application in {app}, exactly the packaged tree (the
; self-updater swaps that whole folder for the new version's tree), and the uninstaller beside it in
; {app}.uninstall, where a self-update cannot take it away. The data folder is never inside either.
;
; Per user by default (/CURRENTUSER: %LOCALAPPDATA%\Programs\Outpost, no elevation), for every user
; with /ALLUSERS (Program Files, elevated); an upgrade keeps the previous installation's mode. Setup
; stops a running agent through the program's own `--quit` (graceful, over its authenticated IPC),
; replaces the tree, registers autostart through the program (`--enable-autostart --scope user|machine`),
; with /ENROLL=FILE keeps the organisation's enrollment secret through the program
; (`--set-enrollment-secret FILE`), and, per user, starts the agent unless /NOSTART is given. The
; uninstaller stops the agent, removes autostart, the tree, the Start menu shortcut, the Uninstall entry
; and what the self-updater may leave beside the folder; it keeps the data folder unless /REMOVEDATA is
; given.

#ifndef AppVersion
  #error Pass the version: /DAppVersion=1.2.3
#endif
#ifndef AppDir
  #error Pass the packaged app folder: /DAppDir=...\win-unpacked
#endif
#ifndef OutputDir
  #error Pass the output folder: /DOutputDir=...
#endif
#ifndef OutputBaseFilename
  #define OutputBaseFilename "Outpost-Setup-" + AppVersion + "-inno"
#endif
#ifndef Compression
  #define Compression "lzma2/max"
#endif
#ifndef SolidCompression
  #define SolidCompression "yes"
#endif
#ifndef Publisher
  #define Publisher "Outpost"
#endif
#if !FileExists(AddBackslash(AppDir) + "Outpost.exe")
  #error AppDir holds no Outpost.exe: pass the packaged app folder (win-unpacked)
#endif
; Windows' version resources take numbers only: 1.2.3-beta.1 -> 1.2.3.
#define DashAt Pos("-", AppVersion)
#if DashAt > 0
  #define NumericVersion Copy(AppVersion, 1, DashAt - 1)
#else
  #define NumericVersion AppVersion
#endif

[Setup]
; AppId makes the Uninstall key `Outpost_is1`, in HKCU (per user) or HKLM (per machine, 64-bit view).
AppId=Outpost
AppName=Outpost
AppVersion={#AppVersion}
AppVerName=Outpost {#AppVersion}
AppPublisher={#Publisher}
AppCopyright={#Publisher}
VersionInfoVersion={#NumericVersion}
VersionInfoProductVersion={#NumericVersion}
VersionInfoProductTextVersion={#AppVersion}
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=commandline dialog
; Not {autopf}: Windows has a per-user Program Files folder that Wine lacks, and per-user Electron
; apps live in %LOCALAPPDATA%\Programs (where the NSIS installer puts them too).
DefaultDirName={code:DefaultInstallDir}
UninstallFilesDir={app}.uninstall
DisableProgramGroupPage=yes
DisableWelcomePage=yes
UninstallDisplayName=Outpost
UninstallDisplayIcon={app}\Outpost.exe
; The agent is stopped through its own --quit (PrepareToInstall), which it refuses while it updates
; itself; the Restart Manager would close it without asking.
CloseApplications=no
RestartApplications=no
SetupMutex=OutpostSetup,Global\OutpostSetup
; A log in %TEMP% for every run ("Setup Log <date> #NNN.txt", "Uninstall Log ..."); /LOG=file names one.
SetupLogging=yes
UninstallLogging=yes
WizardStyle=modern
#ifdef Icon
SetupIconFile={#Icon}
#endif
OutputDir={#OutputDir}
OutputBaseFilename={#OutputBaseFilename}
Compression={#Compression}
SolidCompression={#SolidCompression}

[Files]
Source: "{#AddBackslash(AppDir)}*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Outpost"; Filename: "{app}\Outpost.exe"; WorkingDir: "{app}"

[Code]
const
  UNINSTALL_KEY = 'Software\Microsoft\Windows\CurrentVersion\Uninstall\Outpost_is1';
  // Start at login (app/main/platform/win32-autostart.ts): HKA's Run key, value Outpost.
  RUN_KEY = 'Software\Microsoft\Windows\CurrentVersion\Run';
  RUN_VALUE = 'Outpost';
  // Outpost's exit codes (app/common/exit-codes.ts) that --quit returns.
  EXIT_OK = 0;
  EXIT_BUSY_UPDATING = 3;
  EXIT_AUTH_FAILED = 4;
  EXIT_TIMED_OUT = 5;
  // Setup's own exit code when it installed Outpost but could not register autostart (the NSIS installer's too).
  EXIT_AUTOSTART = 6;
  // ... and when it installed Outpost but could not keep the enrollment secret of /ENROLL=FILE (the NSIS installer's too).
  EXIT_ENROLL = 9;
  // How long an agent that is updating (--quit exit 3), or an update in flight, is waited for.
  STOP_WAIT_MS = 60000;
  STOP_RETRY_MS = 2000;
  // Moving the installation aside: up to 10 tries, half a second apart.
  MOVE_TRIES = 10;
  MOVE_RETRY_MS = 500;
  // Beside {app}: the previous tree while it is replaced (ours), and what the self-updater leaves
  // after a crash (app/main/core/update/handoff.ts, updater/records.ts).
  OLD_SUFFIX = '.outpost-old';
  BACKUP_SUFFIX = '.outpost-backup';
  FAILED_SUFFIX = '.failed-';

function GetTickCount: DWord; external 'GetTickCount@kernel32.dll stdcall';

var
  // The previous tree waits in {app}.outpost-old until the new one is in place; a failed Setup puts it back.
  MovedAside: Boolean;
  AutostartFailed: Boolean;
  EnrollFailed: Boolean;
  // /ENROLL=FILE: the file holding the enrollment secret (a full path), or ''.
  EnrollFile: String;

function DefaultInstallDir(Param: String): String;
begin
  if IsAdminInstallMode then
    Result := ExpandConstant('{commonpf64}\Outpost')
  else
    Result := ExpandConstant('{localappdata}\Programs\Outpost');
end;

function Scope: String;
begin
  if IsAdminInstallMode then
    Result := 'machine'
  else
    Result := 'user';
end;

// A switch given on the command line (/NOSTART, /REMOVEDATA), in any case.
function HasSwitch(const Name: String): Boolean;
var
  I: Integer;
begin
  Result := False;
  for I := 1 to ParamCount do
    if CompareText(ParamStr(I), '/' + Name) = 0 then
      Result := True;
end;

// The value of a /NAME=value switch (quoted on the command line when it holds a space), in any case;
// Given is False when the switch is absent.
function SwitchValue(const Name: String; var Given: Boolean): String;
var
  I: Integer;
  Prefix: String;
begin
  Result := '';
  Given := False;
  Prefix := '/' + Name + '=';
  for I := 1 to ParamCount do
    if CompareText(Copy(ParamStr(I), 1, Length(Prefix)), Prefix) = 0 then
    begin
      Result := Copy(ParamStr(I), Length(Prefix) + 1, Length(ParamStr(I)));
      Given := True;
    end;
end;

// /ENROLL=FILE: only the file's path is ever logged or passed on, never what it holds. A relative path
// is the setup program's folder's (a deployment package carries the file beside Setup).
function InitializeSetup: Boolean;
var
  Given: Boolean;
begin
  Result := True;
  EnrollFile := SwitchValue('ENROLL', Given);
  if not Given then
    Exit;
  if EnrollFile = '' then
  begin
    Log('ERROR: /ENROLL= needs the file that holds the organisation''s enrollment secret: /ENROLL="C:\path\enrollment.secret"');
    SuppressibleMsgBox('/ENROLL= needs the file that holds the organisation''s enrollment secret: /ENROLL="C:\path\enrollment.secret"', mbError, MB_OK, IDOK);
    Result := False;
    Exit;
  end;
  if not ((Copy(EnrollFile, 2, 1) = ':') or (Copy(EnrollFile, 1, 1) = '\') or (Copy(EnrollFile, 1, 1) = '/')) then
    EnrollFile := AddBackslash(ExpandConstant('{src}')) + EnrollFile;
  Log('Enrollment secret from: ' + EnrollFile);
end;

// Runs `Outpost.exe --set-enrollment-secret "FILE"`: the program reads the secret from the file and
// says where it kept it (never the secret itself); its output is logged either way.
procedure KeepEnrollmentSecret(const Dir: String);
var
  Output: TExecOutput;
  Code, I: Integer;
  Said: String;
  Ran: Boolean;
begin
  Said := '';
  try
    Ran := ExecAndCaptureOutput(Dir + '\Outpost.exe', '--set-enrollment-secret "' + EnrollFile + '"', ExtractFileDir(Dir), SW_HIDE, ewWaitUntilTerminated, Code, Output);
    if not Ran then
      Said := 'did not start (' + SysErrorMessage(Code) + ')'
    else
    begin
      for I := 0 to GetArrayLength(Output.StdOut) - 1 do
        Said := Trim(Said + ' ' + Output.StdOut[I]);
      for I := 0 to GetArrayLength(Output.StdErr) - 1 do
        Said := Trim(Said + ' ' + Output.StdErr[I]);
    end;
  except
    Ran := False;
    Said := GetExceptionMessage;
  end;
  if Ran and (Code = 0) then
    Log('Outpost.exe --set-enrollment-secret "' + EnrollFile + '": ' + Said)
  else
  begin
    EnrollFailed := True;
    if Ran then
      Said := Format('exited with code %d: %s', [Code, Said]);
    Log('WARNING: the enrollment secret is not kept: Outpost.exe --set-enrollment-secret "' + EnrollFile + '" ' + Said);
    SuppressibleMsgBox('Outpost is installed, but it could not keep the enrollment secret from ' + EnrollFile + ': ' + Said, mbError, MB_OK, IDOK);
  end;
end;

function QuitCodeMeaning(Code: Integer): String;
begin
  case Code of
    EXIT_AUTH_FAILED: Result := 'authentication with the running agent failed';
    EXIT_TIMED_OUT: Result := 'the agent did not stop in time';
  else
    Result := 'unexpected';
  end;
end;

// Stops the agent of the installation in Dir gracefully: `Outpost.exe --quit` asks it over its
// authenticated IPC and returns once its process is gone (0, also when none runs). While it is
// updating it refuses (3): waited for, up to STOP_WAIT_MS. With WaitForUpdate (Setup), the updater's
// backup beside the installation is waited for too: an update is in flight, or was interrupted, and
// its recovery would put the backup back over freshly installed files. Returns '' once stopped, or
// why Setup or the uninstaller must not go on.
function StopAgent(const Dir: String; WaitForUpdate: Boolean): String;
var
  Busy: String;
  Code: Integer;
  Deadline: DWord;
begin
  Result := '';
  Deadline := GetTickCount + STOP_WAIT_MS;
  repeat
    Busy := '';
    if WaitForUpdate and DirExists(Dir + BACKUP_SUFFIX) then
      Busy := 'an update is being applied (' + Dir + BACKUP_SUFFIX + ' exists)'
    else if FileExists(Dir + '\Outpost.exe') then
    begin
      Log('Stopping a running Outpost agent: "' + Dir + '\Outpost.exe" --quit');
      if not Exec(Dir + '\Outpost.exe', '--quit', ExtractFileDir(Dir), SW_HIDE, ewWaitUntilTerminated, Code) then
      begin
        Result := 'Outpost could not be asked to stop: "' + Dir + '\Outpost.exe" --quit did not start (' + SysErrorMessage(Code) + ').';
        Exit;
      end;
      Log(Format('Outpost.exe --quit exited with code %d', [Code]));
      if Code = EXIT_BUSY_UPDATING then
        Busy := 'the running agent is updating'
      else if Code <> EXIT_OK then
      begin
        Result := Format('Outpost could not be stopped: Outpost.exe --quit exited with code %d (%s). Stop it, then run this again.', [Code, QuitCodeMeaning(Code)]);
        Exit;
      end
      // An update that began just before (the agent handed over and exited) shows as its backup.
      else if WaitForUpdate and DirExists(Dir + BACKUP_SUFFIX) then
        Busy := 'an update is being applied (' + Dir + BACKUP_SUFFIX + ' exists)';
    end;
    if Busy = '' then
      Exit;
    if GetTickCount >= Deadline then
    begin
      Result := Format('Outpost is busy: %s, still after %d s. Run this again in a few minutes; if an update was interrupted, starting Outpost once finishes or undoes it.', [Busy, STOP_WAIT_MS div 1000]);
      Exit;
    end;
    Log('Waiting: ' + Busy);
    Sleep(STOP_RETRY_MS);
  until False;
end;

// Moves the installation aside to Dir.outpost-old: one rename, which Windows refuses while a process
// runs from the folder or holds a file in it, so nothing is left half-deleted. Tried for a few
// seconds: a process that has just exited (the agent --quit stopped) can hold its files a moment
// longer. The programs Setup runs work in the folder's parent, never in it.
function MoveAside(const Dir: String): Boolean;
var
  Tries: Integer;
begin
  if DirExists(Dir + OLD_SUFFIX) then
    DelTree(Dir + OLD_SUFFIX, True, True, True);
  Result := RenameFile(Dir, Dir + OLD_SUFFIX);
  Tries := 1;
  while not Result and (Tries < MOVE_TRIES) do
  begin
    Sleep(MOVE_RETRY_MS);
    Result := RenameFile(Dir, Dir + OLD_SUFFIX);
    Tries := Tries + 1;
  end;
end;

// What the self-updater leaves beside the installation after a crash: its backup of the previous
// version, and a failed new version set aside.
procedure RemoveUpdaterLeftovers(const Dir: String);
var
  Found: TFindRec;
  Parent: String;
begin
  if DirExists(Dir + BACKUP_SUFFIX) then
    DelTree(Dir + BACKUP_SUFFIX, True, True, True);
  Parent := ExtractFileDir(Dir);
  if FindFirst(Dir + FAILED_SUFFIX + '*', Found) then
  try
    repeat
      if Found.Attributes and FILE_ATTRIBUTE_DIRECTORY <> 0 then
        DelTree(Parent + '\' + Found.Name, True, True, True);
    until not FindNext(Found);
  finally
    FindClose(Found);
  end;
end;

// True when Dir is missing or empty.
function IsEmptyDir(const Dir: String): Boolean;
var
  Found: TFindRec;
begin
  Result := True;
  if not FindFirst(Dir + '\*', Found) then
    Exit;
  try
    repeat
      if (Found.Name <> '.') and (Found.Name <> '..') then
        Result := False;
    until (not Result) or (not FindNext(Found));
  finally
    FindClose(Found);
  end;
end;

function PrepareToInstall(var NeedsRestart: Boolean): String;
var
  Dir, Recorded: String;
begin
  Dir := ExpandConstant('{app}');
  // One installation per mode (one Uninstall entry, one Run value): a second folder is refused while
  // the recorded one still holds Outpost.
  if RegQueryStringValue(HKA, UNINSTALL_KEY, 'Inno Setup: App Path', Recorded) and (CompareText(Recorded, Dir) <> 0) and FileExists(Recorded + '\Outpost.exe') then
  begin
    Result := 'Outpost is already installed in ' + Recorded + ': run this installer without /DIR= to upgrade it there, or uninstall it first.';
    Exit;
  end;
  // The installation (and every self-update, which swaps the whole folder) owns all of it.
  if not FileExists(Dir + '\Outpost.exe') and not IsEmptyDir(Dir) then
  begin
    Result := Dir + ' is not empty and holds no Outpost installation: choose an empty or new folder for Outpost.';
    Exit;
  end;
  Result := StopAgent(Dir, True);
  if Result <> '' then
    Exit;
  // The previous version's tree goes as a whole (files it had and this one has not must not stay),
  // but only once the new one is in place: until then a failure puts it back (DeinitializeSetup).
  if DirExists(Dir) then
  begin
    if not MoveAside(Dir) then
    begin
      Result := Dir + ' is in use (a program runs from it or holds one of its files open, perhaps another user''s Outpost): close it, then run this installer again.';
      Exit;
    end;
    MovedAside := True;
    Log('The previous installation waits in ' + Dir + OLD_SUFFIX);
  end;
end;

procedure CurStepChanged(CurStep: TSetupStep);
var
  Dir: String;
  Code: Integer;
begin
  if CurStep <> ssPostInstall then
    Exit;
  Dir := ExpandConstant('{app}');
  if MovedAside then
  begin
    MovedAside := False;
    if not DelTree(Dir + OLD_SUFFIX, True, True, True) then
      Log('Could not remove all of the previous version in ' + Dir + OLD_SUFFIX + ' (the uninstaller removes it)');
  end;
  // Start at login, registered by the installed program itself (the one implementation of it). A
  // failure does not undo the installation, which works without it: it is reported (exit code 6).
  if not Exec(Dir + '\Outpost.exe', '--enable-autostart --scope ' + Scope, ExtractFileDir(Dir), SW_HIDE, ewWaitUntilTerminated, Code) or (Code <> 0) then
  begin
    AutostartFailed := True;
    Log(Format('WARNING: start at login is not registered: Outpost.exe --enable-autostart --scope %s exited with code %d', [Scope, Code]));
    SuppressibleMsgBox(Format('Outpost is installed, but it could not register itself to start at login (exit code %d).', [Code]), mbError, MB_OK, IDOK);
  end
  else
    Log('Outpost.exe --enable-autostart --scope ' + Scope + ': done');
  // The organisation's enrollment secret, kept where this mode's agent looks for it (per machine,
  // elevated: the machine's storage folder). A failure leaves the installation as it is (exit code 9,
  // unless 6 came first).
  if EnrollFile <> '' then
    KeepEnrollmentSecret(Dir);
  // Per user, the agent starts now. Per machine it does not: Setup runs elevated (or as SYSTEM under
  // a deployment tool), and an agent it started would run with those rights and the machine's data
  // folder instead of a user's; every user's agent starts at their next sign-in.
  if HasSwitch('NOSTART') then
    Log('Not started (/NOSTART)')
  else if IsAdminInstallMode then
    Log('Not started: installed for every user, Outpost starts at each user''s next sign-in')
  else if Exec(Dir + '\Outpost.exe', '', ExtractFileDir(Dir), SW_HIDE, ewNoWait, Code) then
    Log('Started ' + Dir + '\Outpost.exe')
  else
    Log('Could not start ' + Dir + '\Outpost.exe: ' + SysErrorMessage(Code));
end;

// A failed or cancelled Setup puts the previous version back, as it was.
procedure DeinitializeSetup;
var
  Dir: String;
begin
  if not MovedAside then
    Exit;
  Dir := ExpandConstant('{app}');
  DelTree(Dir, True, True, True);
  if RenameFile(Dir + OLD_SUFFIX, Dir) then
    Log('The previous installation is back in ' + Dir + ' (the agent starts at the next sign-in)')
  else
    Log('Could not put the previous installation back from ' + Dir + OLD_SUFFIX);
end;

function GetCustomSetupExitCode: Integer;
begin
  if AutostartFailed then
    Result := EXIT_AUTOSTART
  else if EnrollFailed then
    Result := EXIT_ENROLL
  else
    Result := 0;
end;

// The agent's data folder: OUTPOST_HOME, else the mode's folder (app/main/platform).
function DataDir: String;
begin
  Result := GetEnv('OUTPOST_HOME');
  if Result = '' then
    if IsAdminInstallMode then
      Result := ExpandConstant('{commonappdata}\Outpost')
    else
      Result := ExpandConstant('{localappdata}\Outpost');
end;

// Everything the uninstaller does beyond its log happens here, before the log is processed: the
// uninstaller's first phase (what a caller waits for) returns as soon as the logged files are gone,
// so work left for usPostUninstall would still run after the caller saw the exit code. Abort here
// stops the uninstallation with nothing removed (exit code 1).
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Dir, Problem, Data: String;
  Code: Integer;
  RemoveData: Boolean;
begin
  if CurUninstallStep <> usUninstall then
    Exit;
  Dir := ExpandConstant('{app}');
  Problem := StopAgent(Dir, False);
  if (Problem = '') and DirExists(Dir) and not MoveAside(Dir) then
    Problem := Dir + ' is in use (a program runs from it or holds one of its files open, perhaps another user''s Outpost): close it, then uninstall again.';
  if Problem <> '' then
  begin
    Log('ERROR: ' + Problem);
    SuppressibleMsgBox(Problem, mbError, MB_OK, IDOK);
    Abort;
  end;
  // Start at login goes through the program, as it came (from where it now lies).
  if FileExists(Dir + OLD_SUFFIX + '\Outpost.exe') then
  begin
    if Exec(Dir + OLD_SUFFIX + '\Outpost.exe', '--disable-autostart --scope ' + Scope, ExtractFileDir(Dir), SW_HIDE, ewWaitUntilTerminated, Code) and (Code = 0) then
      Log('Outpost.exe --disable-autostart --scope ' + Scope + ': done')
    else
      Log(Format('Outpost.exe --disable-autostart --scope %s exited with code %d', [Scope, Code]));
  end;
  // A Run value must not outlive the program it starts: when the program could not remove it (it
  // failed, or the installation was damaged and Outpost.exe is gone), it is removed here.
  if RegValueExists(HKA, RUN_KEY, RUN_VALUE) then
  begin
    if RegDeleteValue(HKA, RUN_KEY, RUN_VALUE) then
      Log('Removed the Run value ' + RUN_VALUE + ', which the program had left')
    else
      Log('WARNING: start at login is still registered: could not remove the Run value ' + RUN_VALUE);
  end;
  // The whole tree, with what the self-updater installed, which is not in the uninstaller's log.
  if not DelTree(Dir + OLD_SUFFIX, True, True, True) then
    Log('WARNING: could not remove all of ' + Dir + OLD_SUFFIX);
  RemoveUpdaterLeftovers(Dir);
  Log('Removed ' + Dir);

  // The data folder (config, logs, update files) stays unless asked: /REMOVEDATA, or Yes to the
  // question of an interactive uninstall.
  Data := DataDir;
  RemoveData := HasSwitch('REMOVEDATA');
  if not RemoveData and not UninstallSilent and DirExists(Data) then
    RemoveData := MsgBox('Also remove Outpost''s data in ' + Data + ' (its settings, logs and downloaded updates)? Choose No to keep it for a later installation.', mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES;
  if not RemoveData then
    Log('Kept the data folder ' + Data)
  // Only a folder the agent made (its config.json): never whatever OUTPOST_HOME happens to name.
  else if FileExists(Data + '\config.json') then
  begin
    if DelTree(Data, True, True, True) then
      Log('Removed the data folder ' + Data)
    else
      Log('WARNING: could not remove all of the data folder ' + Data);
  end
  else if DirExists(Data) then
    Log('Kept ' + Data + ': it holds no config.json, so it is not known to be Outpost''s data folder');
end;
