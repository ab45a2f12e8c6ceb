"""The package version, in one place for setup.py and the run information."""

VERSION = "0.1.0"
