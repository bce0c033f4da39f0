"""Scrapy project: how review pages become Review items."""
