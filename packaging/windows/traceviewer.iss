; Inno Setup script: the Windows installer of Trace Viewer's one-folder bundle.
; Build the bundle first, then compile this script (Inno Setup 6):
;   pyinstaller --noconfirm --distpath dist --workpath build packaging\traceviewer.spec
;   iscc /DAppVersion=0.1.0 packaging\windows\traceviewer.iss
; Output: dist\TraceViewer-<version>-setup.exe. The CI workflow .github/workflows/packages.yml
; does both and runs the bundle's self-test.
; Installs per user by default (no administrator rights needed); the setup offers an
; all-users install in Program Files too.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z packaging\windows\traceviewer.iss
#endif

[Setup]
AppId={{5C2A9E3B-7D41-4F0A-9B6E-3F1D8C2B7A64}
AppName=Trace Viewer
AppVersion={#AppVersion}
AppVerName=Trace Viewer {#AppVersion}
AppPublisher=Trace Viewer developers
AppPublisherURL=https://github.com/traceviewer/traceviewer
AppSupportURL=https://github.com/traceviewer/traceviewer/issues
DefaultDirName={autopf}\Trace Viewer
DefaultGroupName=Trace Viewer
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
SourceDir=..\..
OutputDir=dist
OutputBaseFilename=TraceViewer-{#AppVersion}-setup
SetupIconFile=resources\icons\traceviewer.ico
UninstallDisplayIcon={app}\traceviewer.exe
UninstallDisplayName=Trace Viewer
Compression=lzma2
SolidCompression=yes
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; traceviewer.exe is the windowed app; traceviewer-cli.exe the same app for the command line
; (--self-test, --version, exports), where a windowed program has no console output.
Source: "dist\traceviewer\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; An upgrade replaces the whole bundle: no stale modules or libraries of an older version.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\Trace Viewer"; Filename: "{app}\traceviewer.exe"; Comment: "Browse, inspect and review MLflow traces"
Name: "{autodesktop}\Trace Viewer"; Filename: "{app}\traceviewer.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\traceviewer.exe"; Description: "{cm:LaunchProgram,Trace Viewer}"; Flags: nowait postinstall skipifsilent
