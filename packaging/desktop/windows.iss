; Inno Setup script of the Windows installer (.github/workflows/desktop.yml runs `iscc` on it after
; packaging/desktop/build.py made dist/desktop/pixel-desktop/). Per-user install, no administrator needed.
#define AppVersion GetEnv("PIXEL_VERSION")

[Setup]
AppName=Pixel
AppVersion={#AppVersion}
AppPublisher=Pixel
DefaultDirName={autopf}\Pixel
DefaultGroupName=Pixel
PrivilegesRequired=lowest
OutputDir=..\..\dist\desktop
OutputBaseFilename=pixel-desktop-{#AppVersion}-windows-setup
Compression=lzma2
SolidCompression=yes
UninstallDisplayIcon={app}\pixel-desktop.exe

[Tasks]
Name: desktopicon; Description: "Create a desktop icon"

[Files]
Source: "..\..\dist\desktop\pixel-desktop\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Icons]
Name: "{group}\Pixel"; Filename: "{app}\pixel-desktop.exe"
Name: "{autodesktop}\Pixel"; Filename: "{app}\pixel-desktop.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\pixel-desktop.exe"; Description: "Start Pixel"; Flags: nowait postinstall skipifsilent
