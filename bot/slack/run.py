"""``kafka-chatops run``: the bot with its Slack front end, the engine worker and the event bus.

Socket Mode when ``SLACK_APP_TOKEN`` is set (no public URL needed), or HTTP on ``--port`` at
``/slack/events`` with ``--http`` and ``SLACK_SIGNING_SECRET``, from this one process (for more
capacity or availability: more replicas). Every missing or malformed setting is named at start,
all at once, before anything connects. Token and secret values are never printed or logged: messages
name the setting, not its value.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import build_runtime
from bot.config.settings import ConfigError, Settings
from bot.kube.errors import KubeError
from bot.observability.logs import configure_logging
from bot.observability.readiness import SlackReadiness
from bot.slack.alert_posts import attach_slack_alerts
from bot.slack.app import build_front_end, build_web_client
from bot.slack.cards import slack_error
from bot.slack.rebalance_cards import attach_rebalance_cards
from bot.slack.run_command import DEFAULT_PORT
from bot.slack.signing import is_ssl_check, signed_by_slack
from bot.startup import load_settings, refuse, secret_setting, settings_problems
from bot.store import StoreError

log = logging.getLogger("bot.slack.run")

EVENTS_PATH = "/slack/events"
SHUTDOWN_TIMEOUT_S = 20.0
# Said to anyone still starting the bot with the retired --processes (docs/design.md says why it went).
PROCESSES_RETIRED = (
    "--processes is no longer an option: the bot answers Slack from one process. Start it without "
    "--processes: `kafka-chatops run [--http] [--port P] [--host H]`; for more capacity or availability, run "
    "more replicas against the same Redis")
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"})


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    app_token: str | None
    signing_secret: str | None
    api_url: str | None
    http: bool


def check_settings(settings: Settings, *, http: bool, port: int = DEFAULT_PORT) -> SlackSettings:
    """The Slack settings for the chosen transport; ConfigError naming every problem otherwise."""
    problems: list[str] = []
    given: dict[str, str | None] = {}
    unreadable: set[str] = set()  # said once: not also "not set" or "malformed"
    for setting, value, path, what in (
            ("SLACK_BOT_TOKEN", settings.slack_bot_token, settings.slack_bot_token_file, "the bot token"),
            ("SLACK_APP_TOKEN", settings.slack_app_token, settings.slack_app_token_file, "the app-level token"),
            ("SLACK_SIGNING_SECRET", settings.slack_signing_secret, settings.slack_signing_secret_file,
             "the signing secret")):
        try:
            given[setting] = secret_setting(setting, value, path, what)
        except ConfigError as exc:
            problems.append(str(exc))
            unreadable.add(setting)
            given[setting] = None
    bot_token = (given["SLACK_BOT_TOKEN"] or "").strip()
    if "SLACK_BOT_TOKEN" in unreadable:
        pass
    elif not bot_token:
        problems.append("SLACK_BOT_TOKEN is not set: give the app's Bot User OAuth Token (xoxb-…)")
    elif not bot_token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN does not start with xoxb-: give the Bot User OAuth Token, "
                        "not a user (xoxp-) or app-level (xapp-) token")
    elif not _token_text(bot_token):
        problems.append(f"SLACK_BOT_TOKEN has characters no Slack token has: {TOKEN_CHARACTERS}")
    app_token = (given["SLACK_APP_TOKEN"] or "").strip() or None
    secret = (given["SLACK_SIGNING_SECRET"] or "").strip() or None
    if http:
        if "SLACK_SIGNING_SECRET" in unreadable:
            pass
        elif secret is None:
            problems.append("SLACK_SIGNING_SECRET is not set: --http needs it to verify that requests come "
                            "from Slack (Basic Information > App Credentials)")
        elif len(secret) < 16 or not secret.isascii() or not secret.isalnum():
            problems.append("SLACK_SIGNING_SECRET is malformed: Slack's signing secrets are 32 letters and digits")
        if not 0 < port < 65536:
            problems.append(f"--port {port} is not a TCP port (1-65535)")
    elif "SLACK_APP_TOKEN" in unreadable:
        pass
    elif app_token is None:
        problems.append("SLACK_APP_TOKEN is not set: Socket Mode needs the app-level token (xapp-…) with "
                        "connections:write; or serve HTTP with --http and SLACK_SIGNING_SECRET")
    elif not app_token.startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN does not start with xapp-: give the app-level token (Basic "
                        "Information > App-Level Tokens), not the bot token")
    elif not _token_text(app_token):
        problems.append(f"SLACK_APP_TOKEN has characters no Slack token has: {TOKEN_CHARACTERS}")
    api_url = (settings.slack_api_url or "").strip() or None
    if api_url is not None and not _is_http_url(api_url):
        problems.append("SLACK_API_URL is not an http(s) URL with a host and a valid port (e.g. https://slack.com/api/)")
    problems += settings_problems(settings)
    if problems:
        raise ConfigError.of(problems)
    return SlackSettings(bot_token=bot_token, app_token=app_token, signing_secret=secret, api_url=api_url, http=http)


TOKEN_CHARACTERS = "Slack tokens are ASCII letters, digits and '-'; paste the token again, without spaces or quotes"


def _token_text(token: str) -> bool:
    """Only what Slack's tokens are made of: anything else would fail inside the HTTP client's headers."""
    return token.isascii() and all(c.isalnum() or c == "-" for c in token)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


async def check_token(client: AsyncWebClient) -> None:
    """``auth.test`` once: a revoked or mistyped token stops the start with a clear message, while an
    unreachable Slack only warns (the worker and the cards catch up once it answers)."""
    try:
        await client.auth_test()
    except SlackApiError as exc:
        error = slack_error(exc)
        if error in AUTH_ERRORS:
            raise ConfigError(f"Slack refused SLACK_BOT_TOKEN ({error}): give the app's current Bot User OAuth "
                              "Token (xoxb-…)") from None
        log.warning("auth.test answered %s; starting anyway", error)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("Slack Web API unreachable at start (%s); starting anyway", type(exc).__name__)


def http_app(app: AsyncApp, signing_secret: str) -> web.Application:
    """``/slack/events`` for ``app``: the signature is checked on the raw bytes first
    (``bot.slack.signing``), and only a signed request's body is read, by Bolt."""

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        headers = request.headers
        if not signed_by_slack(signing_secret, body, headers.get("X-Slack-Request-Timestamp"),
                               headers.get("X-Slack-Signature")):
            if is_ssl_check(body):
                return web.Response(status=200)
            # One line, nothing of the request but its source: anyone may send these.
            log.warning("refused a request to %s from %s: no valid Slack signature (401)", EVENTS_PATH,
                        request.remote)
            return web.Response(status=401, text="invalid signature\n")
        try:
            bolt_request = AsyncBoltRequest(body=body.decode("utf-8"), query=request.query_string,
                                            headers=dict(headers))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # only a holder of the secret gets here
            log.warning("refused a signed request to %s: Bolt cannot read its body (%s) (400)", EVENTS_PATH,
                        type(exc).__name__)
            return web.Response(status=400, text="unreadable body\n")
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    web_app = web.Application()
    web_app.router.add_post(EVENTS_PATH, events)
    web_app.router.add_get("/healthz", healthz)
    return web_app


async def serve(settings: Settings, slack: SlackSettings, *, host: str, port: int) -> None:
    client = build_web_client(slack.bot_token, slack.api_url)
    await check_token(client)
    runtime = await build_runtime(settings)
    front = build_front_end(runtime, client, signing_secret=slack.signing_secret, socket_mode=not slack.http)
    attach_slack_alerts(runtime, front)  # alerts post to the clusters' channels, with their buttons
    attach_rebalance_cards(runtime, front)  # so do KafkaRebalance proposals, with Approve / Refresh / Stop
    readiness = SlackReadiness()
    if runtime.alerting is not None and runtime.alerting.http is not None:
        runtime.alerting.http.add_check(readiness)  # before it serves: never ready before Slack is
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:  # whatever fails from here on (a port taken, ...), what started is stopped in the finally
        await runtime.start()
        await front.start()
        # Everything loaded so far (the Kubernetes, Kafka and Slack libraries, the app) lives as long as
        # the process: keep it out of the collector's reach, so a full collection scans only what requests
        # allocate. Without it a gen-2 collection pauses the event loop ~70 ms, inside some request's ack.
        gc.freeze()
        async with slack_transport(front.app, client, slack, host=host, port=port, readiness=readiness):
            log.info("%s", serving_what(slack, host, port))
            await stop.wait()
    finally:
        await front.close()
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                await runtime.close()
        except TimeoutError:
            # Nothing is lost by leaving: run leases expire and another replica (or the next start)
            # takes the runs over from Redis.
            log.warning("the engine did not stop within %.0f s; exiting anyway", SHUTDOWN_TIMEOUT_S)


@contextlib.asynccontextmanager
async def slack_transport(app: AsyncApp, client: AsyncWebClient, slack: SlackSettings, *, host: str,
                          port: int, readiness: SlackReadiness | None = None) -> AsyncIterator[None]:
    """Slack's requests reaching ``app`` while inside: HTTP on ``host:port``, or one Socket Mode connection.
    ``readiness`` (for ``/readyz``) is told when the transport serves and when it stops."""
    readiness = readiness or SlackReadiness()
    if slack.http:
        assert slack.signing_secret is not None  # check_settings: --http needs it
        runner = web.AppRunner(http_app(app, slack.signing_secret), access_log=None)
        await runner.setup()
        try:
            # No SO_REUSEPORT: a second bot started on the same port by mistake fails to bind instead
            # of splitting the traffic.
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise ConfigError(f"--host/--port {host}:{port}: cannot serve Slack's requests there "
                                  f"({exc.strerror or exc}): give an address of this machine and a free port") from None
            readiness.http_serving()
            yield
        finally:
            readiness.stopped()
            await runner.cleanup()
    else:
        assert slack.app_token is not None
        handler = AsyncSocketModeHandler(app, slack.app_token, web_client=client)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        # The SDK reconnects on its own when Slack drops the websocket; readiness follows its view.
        readiness.socket_mode(handler.client.is_connected)
        try:
            yield
        finally:
            readiness.stopped()
            await handler.close_async()  # type: ignore[no-untyped-call]


def serving_what(slack: SlackSettings, host: str, port: int) -> str:
    if slack.http:
        return f"serving Slack over HTTP on http://{host}:{port}{EVENTS_PATH}"
    return "connected to Slack in Socket Mode"


def cmd_run(args: argparse.Namespace) -> int:
    if args.processes is not None:  # the command line first, as argparse's own errors come first
        return refuse("run", PROCESSES_RETIRED)
    try:
        settings = load_settings()
        slack = check_settings(settings, http=args.http, port=args.port)
    except ConfigError as exc:
        return refuse("run", exc)
    configure_logging(settings.kafka_chatops_log_format, settings.log_level)
    try:
        asyncio.run(serve(settings, slack, host=args.host, port=args.port))
    except ConfigError as exc:
        return refuse("run", exc)
    except StoreError as exc:
        return refuse("run", f"the run store (Redis) is unavailable: {exc}")
    except (KubeError, OSError) as exc:
        return refuse("run", exc)
    except KeyboardInterrupt:
        return 130
    with contextlib.suppress(Exception):
        logging.shutdown()
    return 0
