"""Learning from the owner through the real CLI: `repwatch label` (one, or a CSV) and `repwatch train`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from models.db import connect, migrate, session_factory
from models.tables import Business, Review, Source
from tests.cli import Result, run_cli

REPO = Path(__file__).resolve().parents[2]

# Written for this test: what an owner of a small shop might correct, in the languages the shop hears.
REVIEWS = [
    ("neg", "The parcel came a week late and half the glasses were broken."),
    ("neg", "Nobody answers the phone, I have been waiting for my refund since May."),
    ("neg", "Zamówiłam sukienkę, przyszła brudna i z dziurą. Zwrot trwa już miesiąc."),
    ("neg", "Die Bestellung kam nie an und der Support antwortet nicht."),
    ("neg", "Am primit produsul zgariat si nimeni nu raspunde la emailuri."),
    ("neg", "Η παραγγελία άργησε δύο εβδομάδες και ήρθε λάθος χρώμα."),
    ("neu", "Ordered on Monday, it arrived on Thursday."),
    ("neu", "The shop is on the corner of the market square."),
    ("neu", "Zamówienie przyszło w czwartek, kurier DPD."),
    ("neu", "It is a mug. It holds coffee."),
    ("pos", "Lovely shop, the owner helped me choose a present and wrapped it beautifully."),
    ("pos", "Fast delivery and the quality is even better than in the photos. Thank you!"),
    ("pos", "Świetny kontakt ze sprzedawcą, paczka dotarła następnego dnia. Polecam!"),
    ("pos", "Super Qualität, schneller Versand, jederzeit wieder."),
    ("pos", "Produs excelent, livrare rapida, multumesc!"),
    ("pos", "Άψογη εξυπηρέτηση και πολύ όμορφα προϊόντα, ευχαριστώ!"),
]


def repwatch(*args: str, cwd: Path) -> Result:
    return run_cli(*args, cwd=cwd)

@pytest.fixture
def shop(tmp_path) -> Path:
    """A config and a database with REVIEWS stored (unscored, no stars) as the crawl would leave them."""
    (tmp_path / "config.yaml").write_text(
        "data_dir: data\n"
        "businesses:\n"
        "  - name: Corner Shop\n"
        "    sources:\n"
        "      - {name: corner-site, kind: schema_org, url: 'https://corner.example/reviews'}\n",
        encoding="utf-8",
    )
    engine = connect(f"sqlite:///{tmp_path / 'data' / 'repwatch.db'}")
    migrate(engine)
    with session_factory(engine).begin() as session:
        source = Source(business=Business(name="Corner Shop"), name="corner-site", kind="schema_org",
                        url="https://corner.example/reviews")  # fmt: skip
        for number, (_, body) in enumerate(REVIEWS, start=1):
            session.add(Review(source=source, external_id=f"r{number}", url=f"https://corner.example/r{number}",
                               body=body, content_hash=f"h{number}"))  # fmt: skip
    engine.dispose()
    return tmp_path


def stored(shop: Path) -> dict[int, Review]:
    engine = connect(f"sqlite:///{shop / 'data' / 'repwatch.db'}")
    with session_factory(engine)() as session:
        reviews = {r.id: r for r in session.scalars(select(Review))}
    engine.dispose()
    return reviews


def test_labels_from_the_command_line_and_a_csv_replace_the_verdict_and_train_a_head(shop: Path) -> None:
    one = repwatch("label", "1", "neg", cwd=shop)
    assert one.code == 0, one.stderr
    assert "labelled 1 review" in one.stdout
    first = stored(shop)[1]
    assert (first.owner_label, first.sentiment_label, first.sentiment_why) == ("neg", "neg", "labelled by the owner")
    assert first.scored_at is not None  # the score stage leaves it alone: the owner's word stands

    rows = "\n".join(f"{number},{label}" for number, (label, _) in enumerate(REVIEWS, start=1) if number > 1)
    (shop / "labels.csv").write_text("id,label\n" + rows + "\n", encoding="utf-8")
    many = repwatch("label", "--csv", "labels.csv", cwd=shop)
    assert many.code == 0, many.stderr
    assert f"labelled {len(REVIEWS) - 1} reviews" in many.stdout
    assert [r.owner_label for r in stored(shop).values()] == [label for label, _ in REVIEWS]

    trained = repwatch("train", "--force", cwd=shop)
    assert trained.code == 0, trained.stderr
    assert f"{len(REVIEWS)} labelled reviews (6 neg, 4 neu, 6 pos)" in trained.stdout
    assert "before F1(neg)" in trained.stdout and "after  F1(neg)" in trained.stdout
    head = shop / "data" / "sentiment" / "head.npz"
    assert head.is_file() and f"saved {head}" in trained.stdout.replace("\n", "")

    # From now on the configured scorer uses the owner's head.
    lines = json.dumps({"text": "Still no parcel after three weeks and no answer to my emails."}) + "\n"
    scored = run_cli("score", "--config", "config.yaml", input=lines, cwd=shop)
    assert scored.code == 0, scored.stderr
    assert json.loads(scored.stdout)["sentiment"]["label"] == "neg"
    from monitor.config import load_config
    from monitor.sentiment import Scorer

    text_scorer = Scorer.from_config(load_config(shop / "config.yaml")).text_scorer()
    assert text_scorer is not None and text_scorer.owner


def test_bad_labels_are_refused_with_the_reason_and_nothing_is_recorded(shop: Path) -> None:
    wrong = repwatch("label", "1", "negative", cwd=shop)
    assert wrong.code == 1 and "label must be one of neg, neu, pos" in wrong.stderr
    missing = repwatch("label", "999", "neg", cwd=shop)
    assert missing.code == 1 and "no review with id 999" in missing.stderr
    (shop / "bad.csv").write_text("id,label\n1,neg\nx,pos\n3,great\n", encoding="utf-8")
    csv_bad = repwatch("label", "--csv", "bad.csv", cwd=shop)
    assert csv_bad.code == 1
    assert "bad.csv:3:" in csv_bad.stderr and "bad.csv:4: label must be one of" in csv_bad.stderr
    (shop / "headless.csv").write_text("1,neg\n", encoding="utf-8")
    assert "columns id,label" in repwatch("label", "--csv", "headless.csv", cwd=shop).stderr
    assert all(r.owner_label is None for r in stored(shop).values())


def test_training_needs_enough_labels(shop: Path) -> None:
    assert repwatch("label", "1", "neg", cwd=shop).code == 0
    result = repwatch("train", cwd=shop)
    assert result.code == 1
    assert "need at least 12 labelled reviews" in result.stderr and "repwatch label" in result.stderr
    assert not (shop / "data" / "sentiment" / "head.npz").exists()
