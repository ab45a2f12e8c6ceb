"""The Metrics Diagnostics tab: static ES modules served by the plugin (no build step)."""
