"""The desktop app: Qt widgets only (PySide6, pyvistaqt, pyqtgraph). Never imports torch:
the cascade arrives as a backend factory from handviz.commands.app."""
