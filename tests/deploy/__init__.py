"""Tests for the files under deploy/."""
