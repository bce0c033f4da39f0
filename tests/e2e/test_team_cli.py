"""The team's work through the real CLI: people, taking a complaint, moving it along, notes, drafts, the trail."""
from __future__ import annotations

import json

from tests.e2e.conftest import site_review


def records(result) -> list[dict]:
    assert result.code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def add_user(e2e, name: str, role: str, password: str = "correct horse battery") -> None:
    secret = e2e.tmp / f"{name}.pw"
    secret.write_text(password + "\n")
    added = e2e.repwatch("users", "add", name, "--role", role, "--password-file", str(secret))
    assert (added.code, added.stdout.strip()) == (0, f"user {name} added ({role})"), added.stderr


def test_people_are_added_listed_linked_and_removed_but_never_the_last_owner(e2e):
    add_user(e2e, "ana", "owner")
    add_user(e2e, "bo", "member")
    short = e2e.tmp / "short.pw"
    short.write_text("hunter2\n")
    refused = e2e.repwatch("users", "add", "cy", "--password-file", str(short))
    assert (refused.code, refused.stderr.strip()) == (1, "repwatch: the password must be at least 10 characters long")
    again = e2e.repwatch("users", "add", "ANA", "--password-file", str(e2e.tmp / "ana.pw"))
    assert again.code == 1 and "exists already" in again.stderr
    hostile = e2e.repwatch("users", "add", "x\x1b[2Jy", "--no-password")
    assert hostile.code == 1 and "\x1b" not in hostile.stderr
    assert e2e.repwatch("users", "link", "bo", "U0123ABCD").stdout.strip() == "bo linked to Slack member U0123ABCD"
    taken = e2e.repwatch("users", "link", "ana", "U0123ABCD")
    assert taken.code == 1 and "linked to bo already" in taken.stderr
    listed = records(e2e.repwatch("users", "list", "--format", "json"))
    assert [(p["name"], p["role"], p["slack_user_id"], p["web_login"]) for p in listed] == [
        ("ana", "owner", None, True), ("bo", "member", "U0123ABCD", True)]
    last_owner = e2e.repwatch("users", "remove", "ana")
    assert (last_owner.code, last_owner.stderr.strip()) == (1, "repwatch: ana is the last owner: add another owner first")
    assert e2e.repwatch("users", "remove", "bo").stdout.strip() == "user bo removed"
    assert e2e.repwatch("users", "remove", "bo").stderr.strip() == "repwatch: no user 'bo' (see `repwatch users list`)"
    # the password never shows anywhere
    assert "correct horse" not in e2e.repwatch("users", "list").stdout


def test_a_complaint_is_taken_moved_along_noted_and_every_step_is_in_its_trail(e2e):
    add_user(e2e, "ana", "owner")
    e2e.publish([site_review(1, 1, hours_ago=3), site_review(2, 2, hours_ago=2), site_review(3, 5, hours_ago=1)])
    assert e2e.crawl().code == 0
    first, second = (r["id"] for r in records(e2e.repwatch("reviews", "--unanswered", "--format", "json")))

    unknown = e2e.repwatch("assign", str(first), "--to", "zed", "--as", "ana")
    assert unknown.code == 1 and unknown.stderr.strip() == "repwatch: no user 'zed' (users: ana)"
    taken = e2e.repwatch("assign", str(first), "--as", "ana")
    assert (taken.code, taken.stdout.strip()) == (0, f"review #{first} assigned to ana")
    twice = e2e.repwatch("assign", str(first), "--as", "ana")
    assert twice.stdout.strip() == f"review #{first} was already assigned to ana: nothing changed"
    shown = {r["id"]: r for r in records(e2e.repwatch("reviews", "--format", "json"))}
    assert (shown[first]["assignee"], shown[first]["status"]) == ("ana", "assigned")

    noted = e2e.repwatch("note", str(first), "called them; a refund is on its way", "--as", "ana")
    assert noted.stdout.strip() == f"note added to review #{first}"
    assert e2e.repwatch("note", str(first), "   ").stderr.strip() == "repwatch: the note is empty"

    generated = e2e.repwatch("draft", str(first))
    assert generated.code == 0 and generated.stdout.strip()
    edited = e2e.tmp / "reply.txt"
    edited.write_text("Dear Reviewer 1, we are sorry. A refund is on its way.\n")
    assert e2e.repwatch("draft", str(first), "--text-file", str(edited), "--as", "ana").stdout.strip() == \
        f"draft of review #{first} saved"
    assert e2e.repwatch("draft", str(first)).stdout.strip() == "Dear Reviewer 1, we are sorry. A refund is on its way."

    alerts_before = len(e2e.slack.messages)
    replied = e2e.repwatch("mark", str(first), "replied", "--as", "ana")
    assert (replied.code, replied.stdout.strip()) == (0, f"review #{first} marked replied"), replied.stderr
    thread = e2e.slack.messages[alerts_before:]
    assert any("marked replied by ana" in json.dumps(m, ensure_ascii=False) for m in thread)  # the alert says so
    bad = e2e.repwatch("mark", str(first), "done")
    assert bad.code == 1 and "status must be one of new, assigned, replied, resolved, not_complaint" in bad.stderr

    # a stale view: decided on version 0, somebody has acted since: applied, and said so
    stale = e2e.repwatch("mark", str(second), "not-complaint", "--as", "ana", "--seen-version", "0")
    assert stale.code == 0 and "had changed" not in stale.stderr  # nobody had touched it: not stale
    assert e2e.repwatch("resolve", str(first), "--as", "ana", "--note", "refunded").code == 0
    late = e2e.repwatch("mark", str(first), "assigned", "--as", "ana", "--seen-version", "1")
    assert late.code == 0 and f"review #{first} had changed since the version you saw" in late.stderr

    waiting = records(e2e.repwatch("reviews", "--unanswered", "--format", "json"))
    assert [r["id"] for r in waiting] == [first]  # back to assigned: it waits again; not_complaint does not
    trail = records(e2e.repwatch("trail", str(first), "--format", "json"))
    assert [(e["action"], e["after"]) for e in trail] == [
        ("assign", "ana"), ("status", "assigned"), ("note", "called them; a refund is on its way"),
        ("draft", "Dear Reviewer 1, we are sorry. A refund is on its way."), ("status", "replied"),
        ("status", "resolved"), ("note", "refunded"), ("status", "assigned")]
    assert {(e["actor"], e["via"]) for e in trail} == {("ana", "cli")}
    assert [e["stale"] for e in trail][-1] is True
    labelled = records(e2e.repwatch("reviews", "--format", "json"))
    assert {r["id"]: r["label"] for r in labelled}[second] == "neu"  # the owner's label, for `repwatch train`
    table = e2e.repwatch("trail", str(first)).stdout
    assert "assign: ana" in table and "replied → resolved" in table
    assert e2e.repwatch("trail", "999").stderr.strip() == "repwatch: no review #999 (see `repwatch reviews`)"


def test_a_snoozed_reminder_waits(e2e):
    e2e.publish([site_review(1, 1, hours_ago=3)])
    assert e2e.crawl().code == 0
    (review,) = records(e2e.repwatch("reviews", "--unanswered", "--format", "json"))
    snoozed = e2e.repwatch("snooze", str(review["id"]), "1d", "--as", "ana")
    assert snoozed.stdout.strip() == f"review #{review['id']}: the reminder waits 1d"
    assert e2e.repwatch("snooze", str(review["id"]), "90d").stderr.strip() == \
        "repwatch: a snooze lasts more than nothing and at most 30d"
    (event,) = records(e2e.repwatch("trail", str(review["id"]), "--format", "json"))
    assert event["action"] == "snooze" and event["before"] is None
