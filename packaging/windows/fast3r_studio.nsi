; Windows installer of Fast3R Studio (NSIS 3, Unicode). makensis runs on Windows and on Linux.
;
;   makensis /DBUNDLE_DIR=<dist\fast3r-studio> /DVERSION=<x.y.z> [/DOUTFILE=<setup.exe>] [/DICON=<.ico>]
;            packaging/windows/fast3r_studio.nsi
;
; makensis runs in the script's folder: give BUNDLE_DIR/OUTFILE/ICON as absolute paths (or relative to
; packaging/windows/).
;
; BUNDLE_DIR is the PyInstaller one-folder bundle (fast3r-studio.exe, fast3r.exe, _internal\), built on
; Windows from packaging/fast3r_studio.spec. VERSION is the project version from pyproject.toml (x.y.z;
; pass /DVERSION_NUMERIC=a.b.c.d as well when it has a suffix). The installer
;   - installs the bundle into $PROGRAMFILES64\Fast3R Studio (for all users, needs admin rights),
;   - adds Start-menu shortcuts and (optional section) a desktop shortcut,
;   - associates .f3r project files (ProgID Fast3RStudio.Project: icon + open command) and adds
;     "Open in Fast3R Studio" to the context menu of folders (the app reconstructs a folder of photos),
;   - registers in Add/Remove Programs and writes an uninstaller that removes all of the above.
; The published Fast3R weights are never in the installer: the app downloads them into the user's cache
; after the user accepts their licence (the uninstaller leaves that cache and the settings alone).

Unicode true
ManifestDPIAware true
SetCompressor /SOLID lzma
SetCompressorDictSize 64

!ifndef BUNDLE_DIR
  !error "pass /DBUNDLE_DIR=<the PyInstaller bundle folder>"
!endif
!ifndef VERSION
  !error "pass /DVERSION=<x.y.z>"
!endif
!ifndef VERSION_NUMERIC
  !define VERSION_NUMERIC "${VERSION}.0"
!endif
!ifndef OUTFILE
  !define OUTFILE "fast3r-studio-${VERSION}-windows-x64-setup.exe"
!endif
!ifndef ICON
  !define ICON "${__FILEDIR__}/../../resources/icons/fast3r-studio.ico"
!endif

!define APP_NAME "Fast3R Studio"
!define APP_EXE "fast3r-studio.exe"
!define CLI_EXE "fast3r.exe"
!define PUBLISHER "Fast3R Studio developers"
!define PROGID "Fast3RStudio.Project"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Fast3RStudio"
!define DIR_VERB "Directory\shell\Fast3RStudio"

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "x64.nsh"

Name "${APP_NAME} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${APP_NAME}"
InstallDirRegKey HKLM "${UNINST_KEY}" "InstallLocation"
RequestExecutionLevel admin
BrandingText "${APP_NAME} ${VERSION}"

VIProductVersion "${VERSION_NUMERIC}"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "FileDescription" "${APP_NAME} installer"
VIAddVersionKey "LegalCopyright" "Apache-2.0 (code); model weights under their own licences"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME} (opens a sample scene with the demo model)"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "${APP_NAME} needs 64-bit Windows."
    Abort
  ${EndIf}
  SetRegView 64
  ; An earlier installation: remove it first (its _internal folder may hold files this version lacks).
  ReadRegStr $0 HKLM "${UNINST_KEY}" "InstallLocation"
  ${If} $0 != ""
  ${AndIf} ${FileExists} "$0\uninstall.exe"
    MessageBox MB_OKCANCEL|MB_ICONINFORMATION \
      "${APP_NAME} is already installed in $0. It will be removed before this version is installed." \
      /SD IDOK IDOK uninstall_previous
    Abort
    uninstall_previous:
    ; _?= runs the uninstaller in place and waits for it
    ExecWait '"$0\uninstall.exe" /S _?=$0' $1
    Delete "$0\uninstall.exe"
    RMDir "$0"
  ${EndIf}
FunctionEnd

Function un.onInit
  SetRegView 64
FunctionEnd

Section "${APP_NAME} (required)" SecApp
  SectionIn RO
  SetShellVarContext all
  SetOutPath "$INSTDIR"
  ; compile-time paths with "/": makensis accepts them on Windows and on Linux
  File "/oname=${APP_EXE}" "${BUNDLE_DIR}/${APP_EXE}"
  File "/oname=${CLI_EXE}" "${BUNDLE_DIR}/${CLI_EXE}"
  SetOutPath "$INSTDIR\_internal"
  File /r "${BUNDLE_DIR}/_internal/*.*"
  SetOutPath "$INSTDIR"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; Start menu
  CreateDirectory "$SMPROGRAMS\${APP_NAME}"
  CreateShortcut "$SMPROGRAMS\${APP_NAME}\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
  CreateShortcut "$SMPROGRAMS\${APP_NAME}\Uninstall ${APP_NAME}.lnk" "$INSTDIR\uninstall.exe"

  ; .f3r projects: extension -> ProgID -> icon and open command
  WriteRegStr HKCR ".f3r" "" "${PROGID}"
  WriteRegStr HKCR ".f3r" "Content Type" "application/x-fast3r-project"
  WriteRegStr HKCR ".f3r\OpenWithProgids" "${PROGID}" ""
  WriteRegStr HKCR "${PROGID}" "" "Fast3R Studio project"
  WriteRegStr HKCR "${PROGID}\DefaultIcon" "" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCR "${PROGID}\shell\open\command" "" '"$INSTDIR\${APP_EXE}" "%1"'
  ; "Open with" list and folders: the app reconstructs a folder of photos given on its command line
  WriteRegStr HKCR "Applications\${APP_EXE}\shell\open\command" "" '"$INSTDIR\${APP_EXE}" "%1"'
  WriteRegStr HKCR "Applications\${APP_EXE}\SupportedTypes" ".f3r" ""
  WriteRegStr HKCR "${DIR_VERB}" "" "Open in ${APP_NAME}"
  WriteRegStr HKCR "${DIR_VERB}" "Icon" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKCR "${DIR_VERB}\command" "" '"$INSTDIR\${APP_EXE}" "%1"'

  ; Add/Remove Programs
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\${APP_EXE},0"
  WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2  ; $0: size in KB, what EstimatedSize wants
  WriteRegDWORD HKLM "${UNINST_KEY}" "EstimatedSize" "$0"

  ; tell Explorer that file associations changed (SHCNE_ASSOCCHANGED, SHCNF_IDLIST)
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd

Section "Desktop shortcut" SecDesktop
  SetShellVarContext all
  CreateShortcut "$DESKTOP\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
SectionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecApp} "The app (fast3r-studio.exe), the command line (fast3r.exe), the demo model and sample scenes."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecDesktop} "A shortcut to ${APP_NAME} on the desktop."
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Section "Uninstall"
  SetShellVarContext all
  ; only what the installer put there: never RMDir /r the install folder itself (the user may have
  ; chosen a folder that holds other files)
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${APP_EXE}"
  Delete "$INSTDIR\${CLI_EXE}"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"

  Delete "$SMPROGRAMS\${APP_NAME}\${APP_NAME}.lnk"
  Delete "$SMPROGRAMS\${APP_NAME}\Uninstall ${APP_NAME}.lnk"
  RMDir "$SMPROGRAMS\${APP_NAME}"
  Delete "$DESKTOP\${APP_NAME}.lnk"

  ; the extension still pointing at us: remove it; else another program took it over, leave it
  ReadRegStr $0 HKCR ".f3r" ""
  ${If} $0 == "${PROGID}"
    DeleteRegKey HKCR ".f3r"
  ${Else}
    DeleteRegValue HKCR ".f3r\OpenWithProgids" "${PROGID}"
  ${EndIf}
  DeleteRegKey HKCR "${PROGID}"
  DeleteRegKey HKCR "Applications\${APP_EXE}"
  DeleteRegKey HKCR "${DIR_VERB}"
  DeleteRegKey HKLM "${UNINST_KEY}"

  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
SectionEnd
