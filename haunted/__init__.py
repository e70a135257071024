"""The composition root: settings, command line and the wiring of every part."""
