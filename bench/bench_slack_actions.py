"""Slack buttons: time from a Socket Mode click to the alert's chat.update, and reconnect time after `disconnect`
(until the client reads the new connection, and for a click sent meanwhile, until its chat.update).

PYTHONPATH=. python bench/bench_slack_actions.py  (a local Slack stand-in and Socket Mode server; SQLite in a tmp dir)
"""
from __future__ import annotations

import statistics
import tempfile
import textwrap
import threading
import time

from demo.slack_receiver import SlackReceiver
from models.db import connect, migrate, session_factory
from models.tables import Business, Delivery, Review, Source
from monitor.config import parse_config
from monitor.listener import Listener

APP = "xapp-1-bench"


def main(clicks: int = 30, reconnects: int = 10) -> None:
    with tempfile.TemporaryDirectory() as tmp, SlackReceiver(token="xoxb-bench", app_token=APP) as slack:
        config = parse_config(textwrap.dedent(f"""
            data_dir: {tmp}
            notifiers:
              slack: {{kind: slack, token: xoxb-bench, channel: "#r", api_url: "{slack.api_url}", min_interval: 0}}
            slack_actions: {{app_token: {APP}, allow: channel_members}}
        """), env={})
        engine = connect(config.database_url())
        migrate(engine)
        sessions = session_factory(engine)
        from alerts.slack import SlackNotifier
        from monitor.service.alerting import AlertBuilder
        notifier = SlackNotifier("slack", config.notifiers["slack"])
        with sessions.begin() as s:
            business = Business(name="B")
            s.add(business)
            s.flush()
            source = Source(business_id=business.id, name="src", kind="trustpilot", url="https://x.example/r")
            s.add(source)
            s.flush()
            for n in range(clicks):
                s.add(Review(source_id=source.id, external_id=str(n), url="https://x.example/r", body="bad",
                             content_hash="h", rating=1, sentiment_label="neg", severity="high"))
        with sessions.begin() as s:
            alerts = AlertBuilder(config).alerts(s, list(range(1, clicks + 1)))
            for review_id, alert in alerts.items():
                remote = notifier.send(alert).remote_id
                s.add(Delivery(kind="alert", dedupe_key=f"alert:{review_id}", review_id=review_id,
                               destination="slack", status="sent", remote_id=remote))
        channel = slack.messages[0]["channel"]
        slack.members[channel] = ["U0BENCH"]
        hellos = threading.Condition()
        lines: list[str] = []

        def log(line: str) -> None:
            with hellos:
                lines.append(line)
                hellos.notify_all()

        def wait_hello(number: int) -> None:
            with hellos:
                if not hellos.wait_for(lambda: any(f"(connection {number})" in line for line in lines), 15):
                    raise TimeoutError(f"no hello on connection {number}")

        listener = Listener(config, log=log)
        listener.start()
        slack.socket.wait_connected(1)

        def click(n: int) -> str:
            slack.socket.send_interactive({
                "type": "block_actions", "user": {"id": "U0BENCH", "username": "bench"},
                "container": {"channel_id": channel, "message_ts": slack.messages[n]["ts"]},
                "actions": [{"action_id": "repwatch:take", "value": f"{n + 1}:0", "action_ts": f"{time.time():.6f}"}]})
            return str(slack.messages[n]["ts"])

        times = []
        for n in range(clicks - reconnects):
            count = len(slack.messages)
            started = time.perf_counter()
            slack.wait_for_update(click(n), since=count)
            times.append(time.perf_counter() - started)
        ready, during = [], []
        for n in range(reconnects):
            # Slack asks for a new connection; a click comes as soon as Slack has it (it goes to the new one)
            count = len(slack.messages)
            started = time.perf_counter()
            slack.socket.disconnect()
            slack.socket.wait_connected(n + 2)
            clicked = click(clicks - reconnects + n)
            wait_hello(n + 2)
            ready.append(time.perf_counter() - started)
            slack.wait_for_update(clicked, since=count)
            during.append(time.perf_counter() - started)
        closing = time.perf_counter()
        listener.close()
        closed = time.perf_counter() - closing
        for line in lines:
            if "could not" in line or "error" in line:
                print(f"listener: {line}")
        ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"  # noqa: E731
        print(f"click → chat.update ({len(times)} clicks): {ms(times)}")
        print(f"disconnect → the client reads the new connection ({reconnects} times): {ms(ready)}")
        print(f"disconnect, then a click on the new connection → its chat.update ({reconnects} times): {ms(during)}")
        print(f"listener.close(): {closed * 1000:.0f} ms")


if __name__ == "__main__":
    main()
