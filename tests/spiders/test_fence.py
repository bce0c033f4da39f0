"""The fence of a source's crawl: which URLs, hosts and addresses it may request (the crawl itself: tests/e2e)."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from spiders.fence import Fence, is_public
from spiders.settings import crawl_settings
from spiders.sites.trustpilot import TrustpilotSpider


def refusal(fence: Fence, url: str, address: str = "93.184.215.14") -> str | None:
    """What the fence says of `url` if its host is at `address` (checked in the order the middleware checks)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return (fence.scheme_refusal(url, parts.scheme) or fence.host_refusal(url, host)
            or fence.address_refusal(url, host, parts.port or {"http": 80, "https": 443}[parts.scheme],
                                     ipaddress.ip_address(address)))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://cafe.example/x", "data:text/html,<p>x</p>",
                                 "s3://bucket/key", "gopher://cafe.example/"])
def test_only_http_and_https_are_fetched(url):
    assert refusal(Fence("https://cafe.example/reviews"), url).startswith("not an http(s) URL")


def test_a_source_stays_on_its_site_with_or_without_www():
    fence = Fence("https://www.cafe.example/reviews")
    assert refusal(fence, "https://www.cafe.example/reviews?page=2") is None
    assert refusal(fence, "http://cafe.example/reviews") is None  # http → https and www are the same site
    assert "evil.example is not the source's site (www.cafe.example)" in refusal(fence, "https://evil.example/x")
    assert refusal(fence, "https://shop.cafe.example/x") is not None  # a subdomain is another site unless allowed


def test_allowed_hosts_and_the_spiders_own_site_widen_the_fence():
    fence = Fence("https://cafe.example/reviews", allowed_hosts=("reviews-cdn.example",))
    assert refusal(fence, "https://reviews-cdn.example/p2") is None
    assert refusal(fence, "https://eu.reviews-cdn.example/p2") is None
    trustpilot = Fence("https://www.trustpilot.com/review/cafe.example", spider_hosts=TrustpilotSpider.hosts)
    assert refusal(trustpilot, "https://uk.trustpilot.com/review/cafe.example") is None
    # A trustpilot source at a mirror does not inherit Trustpilot's hosts.
    mirror = Fence("https://mirror.example/tp", spider_hosts=TrustpilotSpider.hosts)
    assert refusal(mirror, "https://www.trustpilot.com/review/cafe.example") is not None


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "100.100.100.200", "0.0.0.0", "::1", "fd00:ec2::254", "::ffff:127.0.0.1",
                                     "224.0.0.1", "fe80::1"])
def test_private_loopback_link_local_and_metadata_addresses_are_refused(address):
    assert not is_public(ipaddress.ip_address(address))
    fence = Fence("https://cafe.example/reviews", allowed_hosts=("internal.cafe.example",))
    assert "a private address" in refusal(fence, "https://internal.cafe.example/", address)


def test_a_source_on_a_private_address_reaches_that_host_and_port_only():
    assert refusal(Fence("https://cafe.example/reviews"), "https://cafe.example/p2", "10.0.0.5") is None  # its own URL
    fence = Fence("http://127.0.0.1:8080/reviews")
    assert refusal(fence, "http://127.0.0.1:8080/reviews?page=2", "127.0.0.1") is None
    assert "a private address" in refusal(fence, "http://127.0.0.1:8081/internal", "127.0.0.1")
    assert "a private address" in refusal(fence, "https://127.0.0.1/internal", "127.0.0.1")  # port 443


def test_scrapy_handlers_other_than_http_are_off():
    crawl = {"user_agent": "repwatch/0.1", "obey_robots": True, "polite": True, "download_delay": 1.0,
             "concurrency": 1, "browser_path": "/usr/bin/chromium"}
    settings = crawl_settings(crawl, data_dir=Path("/tmp"), database_url="sqlite://")
    assert {settings["DOWNLOAD_HANDLERS"][scheme] for scheme in ("file", "data", "ftp", "s3")} == {None}


def test_allowed_hosts_are_bare_host_names():
    from pydantic import ValidationError

    from spiders.generic.schema_org import SchemaOrgSpider
    from spiders.generic.selectors import SelectorsSpider

    assert SchemaOrgSpider.Options.model_validate({"allowed_hosts": ["Reviews.Example"]}).allowed_hosts == ("reviews.example",)
    assert SelectorsSpider.Options.model_validate({"review": "li", "body": "p", "allowed_hosts": ["a.example"]})
    for bad in ("https://reviews.example/", "reviews.example:8080", "reviews example", ""):
        with pytest.raises(ValidationError, match="is not a host name"):
            SchemaOrgSpider.Options.model_validate({"allowed_hosts": [bad]})
