"""Import every spider module so the `SPIDERS` registry in spiders.base is complete."""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from spiders.base import SPIDERS, ReviewSpider

SPIDER_PACKAGES = ("spiders.sites", "spiders.generic")


def load_spiders(packages: Iterable[str] = SPIDER_PACKAGES) -> dict[str, type[ReviewSpider]]:
    """name → spider class for every spider in `packages` (site spiders first).

    A module that fails to import raises: a plugin silently missing from the registry is a source that silently
    stops being crawled. Modules whose name starts with `_` are helpers and are not imported here.
    """
    packages = tuple(packages)
    for package_name in packages:
        package = importlib.import_module(package_name)
        # walk_packages swallows ImportErrors of subpackages unless told otherwise: re-import to raise the real one.
        found = pkgutil.walk_packages(package.__path__, package.__name__ + ".", onerror=importlib.import_module)
        for module in sorted(found, key=lambda m: m.name):
            if not module.name.rsplit(".", 1)[-1].startswith("_"):
                importlib.import_module(module.name)

    def package_rank(spider: type[ReviewSpider]) -> int:
        for rank, package_name in enumerate(packages):
            if spider.__module__.startswith(package_name + "."):
                return rank
        return len(packages)

    return {spider.name: spider for spider in sorted(SPIDERS.values(), key=lambda s: (package_rank(s), s.name))}
