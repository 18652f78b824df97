# PyInstaller runtime hook of the desktop bundle (pixel-desktop.spec): the bundle leaves out PySide6's
# QtOpenGL bindings (8.5 MB). pyqtgraph imports that module when its plot items load (Qt/OpenGLHelpers.py)
# but calls into it only for a plot switched to OpenGL rendering, which the app never does; on PySide6 it
# takes what it needs from QtGui (QOpenGLContext.extraFunctions) and QtOpenGLWidgets (kept). An empty
# stand-in keeps the import working; any use of it fails loudly with an AttributeError.
import sys
import types

sys.modules.setdefault("PySide6.QtOpenGL", types.ModuleType("PySide6.QtOpenGL", "left out of the bundle"))
