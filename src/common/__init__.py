"""Base helpers every layer may use: text made safe for CSV, Markdown and charts, and colours.

May import: ``src.config`` only."""
