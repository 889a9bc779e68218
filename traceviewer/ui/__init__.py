"""Qt adapters over traceviewer.core."""
