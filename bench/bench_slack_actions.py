"""Slack buttons: time from a Socket Mode click to the alert's chat.update, and reconnect time after `disconnect`.

PYTHONPATH=. python bench/bench_slack_actions.py  (a local Slack stand-in and Socket Mode server; SQLite in a tmp dir)
"""
from __future__ import annotations

import statistics
import tempfile
import textwrap
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
        listener = Listener(config, log=lambda line: None)
        listener.start()
        slack.socket.wait_connected(1)
        times = []
        for n, message in enumerate(list(slack.messages)):
            count = len(slack.messages)
            started = time.perf_counter()
            slack.socket.send_interactive({
                "type": "block_actions", "user": {"id": "U0BENCH", "username": "bench"},
                "container": {"channel_id": channel, "message_ts": message["ts"]},
                "actions": [{"action_id": "repwatch:take", "value": f"{n + 1}:0", "action_ts": f"{time.time():.6f}"}]})
            slack.wait_for(count + 1)
            times.append(time.perf_counter() - started)
        gaps = []
        for n in range(reconnects):
            started = time.perf_counter()
            slack.socket.disconnect()
            slack.socket.wait_connected(n + 2)
            gaps.append(time.perf_counter() - started)
        listener.close()
        ms = lambda xs: f"median {statistics.median(xs) * 1000:.0f} ms, max {max(xs) * 1000:.0f} ms"  # noqa: E731
        print(f"click → chat.update ({clicks} clicks): {ms(times)}")
        print(f"disconnect → new connection ({reconnects} times): {ms(gaps)}")


if __name__ == "__main__":
    main()
