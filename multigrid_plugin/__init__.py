"""Placeholder: this plugin's components arrive with their own issue."""
