"""Generic spiders that work on any site: schema.org markup, feeds, configured selectors."""
