"""The 3D scene of hands (pyvista only, no Qt): drawn by the app's viewport widget and by the soak's
off-screen plotter through the same code, so what the soak measures is what users see."""
