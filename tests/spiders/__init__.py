"""Tests of the page → Review item layer (spiders/)."""
