"""Site spiders: one module per review-site family (DESIGN convention 3: module name = spider name)."""
