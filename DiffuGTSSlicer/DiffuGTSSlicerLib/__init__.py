"""The DiffuGTS Slicer module's parts: plain Python classes the thin Widget wires to Qt, tested outside Slicer."""
