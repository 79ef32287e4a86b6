"""Rendering what the judge decided: terminal tables, progress lines, JUnit properties,
Markdown, plots. Never decides anything."""
