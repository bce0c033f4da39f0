"""Where a crawl may go: http(s) only, the source's own site, and no private address unless the source is there."""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached

from spiders.hostile import RefusedPage

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


def site_host(host: str) -> str:
    """The host a site is known by: lower case, no trailing dot, no leading `www.` (example.com = www.example.com)."""
    host = host.lower().rstrip(".")
    return host.removeprefix("www.")


def is_public(address: IPAddress) -> bool:
    """False for loopback, private, link-local (169.254/16, the cloud metadata address among them), shared
    (100.64/10, another metadata address), unique-local, multicast, reserved and unspecified addresses."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address.is_global and not address.is_multicast


class Fence:
    """What one source's crawl may request. Requests stay on the source's site (its host with or without `www.`,
    the other hosts of the site its spider is made for, the source's `allowed_hosts` and their subdomains); a host
    whose address is not public is reached only on the source URL's own host and port."""

    def __init__(self, source_url: str, *, spider_hosts: tuple[str, ...] = (), allowed_hosts: tuple[str, ...] = ()):
        source = urlsplit(source_url)
        self.source_host = (source.hostname or "").lower().rstrip(".")
        self.source_port = source.port or DEFAULT_PORTS.get(source.scheme)
        family = {site_host(host) for host in spider_hosts}
        self.site_hosts = {site_host(self.source_host)} | (family if site_host(self.source_host) in family else set())
        self.allowed_hosts = tuple(site_host(host) for host in allowed_hosts)

    def scheme_refusal(self, url: str, scheme: str) -> str | None:
        if scheme in DEFAULT_PORTS:
            return None
        return f"not an http(s) URL, not fetched: {url[:200]}"

    def host_refusal(self, url: str, host: str) -> str | None:
        site = site_host(host)
        if site in self.site_hosts or any(site == h or site.endswith("." + h) for h in self.allowed_hosts):
            return None
        return (
            f"{host} is not the source's site ({self.source_host}), not fetched: {url[:200]}"
            " (list it in the source's options.allowed_hosts if it belongs)"
        )

    def address_refusal(self, url: str, host: str, port: int | None, address: IPAddress) -> str | None:
        if is_public(address) or (host.lower().rstrip(".") == self.source_host and port == self.source_port):
            return None
        return f"{host} is at {address}, a private address, not fetched: {url[:200]}"


class FenceMiddleware:
    """First downloader middleware: a request the source's fence refuses is never sent (not even a robots.txt
    request for its host). Counted as `repwatch/refused_scheme`, `repwatch/refused_offsite` and
    `repwatch/refused_private`; the request's errback names the reason, so a refused first page fails the source
    with it.

    Every request passes here, so this covers the start URL, "next" links, redirects and meta refreshes (each is a
    new request). The address checked is the one Scrapy connects to: the name is resolved through the reactor's
    resolver, whose cache (Scrapy's CachingThreadedResolver, kept for the crawl process's life) answers the
    connection, so a name cannot resolve to one address here and to another when connecting.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._fence: Fence | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FenceMiddleware:
        return cls(crawler)

    @property
    def fence(self) -> Fence:
        if self._fence is None:
            spider = self.crawler.spider
            options = getattr(spider, "options", None)
            self._fence = Fence(
                getattr(spider, "url", ""),
                spider_hosts=tuple(getattr(spider, "hosts", ())),
                allowed_hosts=tuple(getattr(options, "allowed_hosts", ())),
            )
        return self._fence

    async def process_request(self, request: Request) -> None:
        url = urlparse_cached(request)
        fence = self.fence
        host = url.hostname or ""
        refusal = fence.scheme_refusal(request.url, url.scheme)
        if refusal:
            self._refuse("refused_scheme", refusal)
        refusal = fence.host_refusal(request.url, host)
        if refusal:
            self._refuse("refused_offsite", refusal)
        address = await self._address(host)
        refusal = fence.address_refusal(request.url, host, url.port or DEFAULT_PORTS[url.scheme], address)
        if refusal:
            self._refuse("refused_private", refusal)

    def _refuse(self, stat: str, reason: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"repwatch/{stat}")
        raise RefusedPage(reason)

    async def _address(self, host: str) -> IPAddress:
        """The address a connection to `host` goes to: Scrapy's HTTP handler connects over IPv4 to the one address
        the reactor's resolver gives (a DNS failure raises here as it would when connecting)."""
        try:
            return ipaddress.ip_address(host)
        except ValueError:
            pass
        from twisted.internet import reactor

        # cast: Twisted's zope interfaces declare methods without `self`, which mypy reads one argument off.
        resolved: str = await maybe_deferred_to_future(cast(Any, reactor).resolve(host))
        return ipaddress.ip_address(resolved)
