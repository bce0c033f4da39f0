"""The demo's invented business, Harbour Lane Coffee, and its reviews on three sources, dated relative to `now`."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from demo.sitegen import SiteReview, atom_feed, schema_org_page, trustpilot_pages

__all__ = [
    "BUSINESS_NAME",
    "TRUSTPILOT_DOMAIN",
    "SCHEMA_ORG_PATH",
    "MENTIONS_PATH",
    "DemoReviews",
    "demo_reviews",
    "demo_pages",
    "mentions_feed",
    "HOSTILE_TEXT",
]

BUSINESS_NAME = "Harbour Lane Coffee"
TRUSTPILOT_DOMAIN = "harbourlanecoffee.example"
SCHEMA_ORG_PATH = "/harbour-lane-coffee/reviews"
# Where a Google Alert for the café's name would be read (the real ones are /alerts/feeds/<user>/<alert id>).
MENTIONS_PATH = "/alerts/feeds/harbour-lane-coffee.atom"

# Slack mrkdwn control sequences and markup a hostile reviewer might post: an alert must show them as inert text.
HOSTILE_TEXT = (
    "<!channel> READ THIS before you buy anything here. Got charged twice and nobody cares. "
    "Full story: <http://evil.example|click me> *bold* claims of 'artisan' coffee, "
    "<script>alert(1)</script> — avoid."
)

H = 1  # an hour, for readability of the tables below
D = 24 * H


@dataclass(frozen=True, slots=True)
class DemoReviews:
    """The demo sources' reviews; `trustpilot` is newest first as the site pages it, 20 a page."""

    trustpilot: list[SiteReview]
    schema_org: list[SiteReview]
    mentions: list[SiteReview] = field(default_factory=list)  # the mentions feed: no stars, no language given


# (hours before now, author, country, language, stars, title, body, business reply or None, reply delay hours)
_TRUSTPILOT = [
    (3, "Megan Treloar", "GB", "en", 5, "Best flat white on the coast",
     "Popped in before the ferry and the flat white was spot on, silky and not scalding. The lad on the till "
     "remembered my order from last week which made my morning.", None, 0),
    (7, "Daniel Okafor", "GB", "en", 1, "Waited 25 minutes for two drinks",
     "Place was half empty and we still waited 25 minutes for two lattes. When I asked, the barista rolled her "
     "eyes and said they were short staffed. Drinks arrived lukewarm. Won't be back.", None, 0),
    (20, "Throwaway Account", "GB", "en", 1, "Do NOT go here", HOSTILE_TEXT, None, 0),
    (30, "Jonas Becker", "DE", "de", 4, "Sehr guter Kaffee, etwas teuer",
     "Der Espresso war hervorragend und die Zimtschnecke frisch aus dem Ofen. Für zwei Getränke und ein Gebäck "
     "fast 12 Pfund zu zahlen, finde ich allerdings happig.", None, 0),
    (41, "Katarzyna Nowak", "PL", "pl", 2, "Zimna kawa i długie czekanie",
     "Czekałam prawie pół godziny, a kawa była letnia. Obsługa niemiła, nikt nie przeprosił. Szkoda, bo miejsce "
     "ma ładny widok na port.", None, 0),
    (4 * D, "Ruth Pengelly", "GB", "en", 5, "Our Saturday ritual",
     "We've been coming every Saturday since they opened. Dog friendly, proper cake, and they always have a "
     "bowl of water out. Long may it continue.", "Thank you Ruth, see you and Biscuit on Saturday!", 20),
    (5 * D, "Tom Haskins", "GB", "en", 3, "Fine, nothing special",
     "Coffee was decent, sandwich was a bit dry. Nice enough spot to sit and watch the boats but I wouldn't go "
     "out of my way.", None, 0),
    (6 * D, "Alexandru Popescu", "RO", "ro", 5, "Cea mai bună cafea din zonă",
     "Cafeaua este excelentă, personalul foarte prietenos, iar prăjiturile sunt de casă. Recomand cu căldură!",
     None, 0),
    (8 * D, "Priya Raman", "GB", "en", 4, "Lovely oat latte",
     "Really good oat latte and they didn't charge extra for the plant milk, which these days is rare. "
     "Only four stars because the music was far too loud.", None, 0),
    (9 * D, "Gareth Williams", "GB", "en", 2, "Card machine down again",
     "Third time this month the card machine has been 'down'. Cash only is fine if you say so on the door, "
     "not after you've made the drink.", "Sorry Gareth, a new terminal arrived on Monday and has been solid since.",
     30),
    (11 * D, "Eleni Papadopoulou", "GR", "el", 5, "Υπέροχο μέρος",
     "Πολύ ωραίος καφές και φιλικό προσωπικό. Το κέικ λεμονιού ήταν υπέροχο. Θα ξανάρθουμε σίγουρα!", None, 0),
    (12 * D, "Sam Whitlock", "GB", "en", 5, "Saved my day",
     "Laptop died, they let me charge it at the counter and topped up my americano for free. Proper kindness.",
     None, 0),
    (14 * D, "Hannah Cole", "GB", "en", 1, "Found a hair in my cake",
     "There was a long hair baked into my carrot cake. Staff took it back but didn't offer a refund or a "
     "replacement, just a shrug.", "Hannah, that should not have happened and we have refunded your card. "
     "We have changed how we handle the bakes.", 26),
    (15 * D, "Marek Zieliński", "PL", "pl", 5, "Świetna kawa",
     "Najlepsze cappuccino, jakie piłem w Anglii. Miła obsługa i szybko. Polecam!", None, 0),
    (17 * D, "Chloe Martin", "GB", "en", 4, "Cosy on a rainy day",
     "Sat by the window for two hours with a hot chocolate and a book and nobody hurried me out. The scones "
     "could be bigger for the price.", None, 0),
    (19 * D, "Ian McBride", "GB", "en", 3, "Good coffee, slow service",
     "The coffee itself is very good. The queue at 8am is not. Open another till or get a second grinder.",
     "Thanks Ian, a second grinder is on order.", 48),
    (22 * D, "Lena Hoffmann", "DE", "de", 2, "Leider enttäuschend",
     "Der Cappuccino war wässrig und das Croissant vom Vortag. Für den Preis erwarte ich mehr.", None, 0),
    (24 * D, "Oliver Grant", "GB", "en", 5, "Friendly team",
     "Asked for a decaf at 4pm and they happily made a fresh batch rather than use what was sitting there. "
     "Great little place.", None, 0),
    (27 * D, "Fiona Baxter", "GB", "en", 5, "Great for families",
     "Babyccino for the little one, high chairs, changing table that was actually clean. Rare to find all three.",
     "Thank you Fiona! The babyccinos are on the house for under fives.", 12),
    (29 * D, "Rob Nancarrow", "GB", "en", 4, "Reliable",
     "My go-to before work. Consistent every time, which is all I want from a coffee shop.", None, 0),
    (33 * D, "Agnieszka Kowalczyk", "PL", "pl", 4, "Dobre ciasta",
     "Ciasto marchewkowe pyszne, kawa dobra, ale w weekend trudno znaleźć wolny stolik.", None, 0),
    (36 * D, "Will Trevithick", "GB", "en", 1, "Rude owner",
     "Asked politely whether they could turn the music down and the owner told me to sit outside if I didn't "
     "like it. In January.", "Will, we're sorry about this. That is not how we want anyone spoken to.", 40),
    (40 * D, "Sophie Adams", "GB", "en", 5, "The cinnamon buns!",
     "Honestly worth the drive just for the cinnamon buns. Get there before eleven or they're gone.", None, 0),
    (44 * D, "Mihai Ionescu", "RO", "ro", 3, "Bună, dar scumpă",
     "Cafeaua e bună, dar prețurile sunt destul de mari pentru o cafenea mică. Personalul a fost politicos.",
     None, 0),
    (47 * D, "Jack Polglase", "GB", "en", 5, "Top notch",
     "Beans roasted locally and you can taste it. Bought a bag to take home too.", None, 0),
    (52 * D, "Nadia Rahman", "GB", "en", 2, "Got my order wrong twice",
     "Asked for skimmed milk twice and both times got full fat. Not great when you have an intolerance.",
     "Nadia, we're sorry. We now mark milk on every cup.", 22),
    (55 * D, "Peter Schulz", "DE", "de", 5, "Toller Hafenblick",
     "Wunderbarer Blick auf den Hafen, freundliches Personal und sehr guter Flat White. Gerne wieder.", None, 0),
    (60 * D, "Emma Rowe", "GB", "en", 4, "Nice vegan options",
     "Good range of vegan bakes, the banana bread especially. Coffee is strong, ask for an extra shot of milk "
     "if you like it mild.", None, 0),
    (64 * D, "Charlie Dunn", "GB", "en", 1, "Overpriced and cold",
     "£4.20 for a lukewarm cappuccino in a paper cup while sitting in. Asked for it to be reheated and it came "
     "back burnt.", None, 0),
    (69 * D, "Maria Georgiou", "GR", "el", 4, "Καλός καφές",
     "Ο καφές ήταν πολύ καλός, αλλά η εξυπηρέτηση λίγο αργή το Σάββατο πρωί.", None, 0),
    (73 * D, "Luke Jenkin", "GB", "en", 5, "Hidden gem",
     "Tucked down the lane so easy to miss, but the best coffee in town by a mile.", None, 0),
    (78 * D, "Beth Harvey", "GB", "en", 5, "Birthday cake to order",
     "They made a lemon drizzle for my mum's 70th at two days' notice. Delicious and beautifully done.",
     "Happy birthday to your mum, Beth!", 8),
    (83 * D, "Stuart Moyle", "GB", "en", 3, "Depends who's on",
     "Some days brilliant, some days average. Seems to depend entirely on who is making the coffee.", None, 0),
    (89 * D, "Zofia Wójcik", "PL", "pl", 5, "Cudowne miejsce",
     "Przytulna kawiarnia, pyszna kawa i bardzo miła obsługa. Wrócimy na pewno.", None, 0),
    (95 * D, "Harriet Lowe", "GB", "en", 4, "Great coffee, tiny tables",
     "Coffee is excellent but the tables are so small you can't fit two plates and two cups.", None, 0),
    (101 * D, "Kevin Bray", "GB", "en", 2, "Not what it was",
     "Used to be my favourite but since the new menu the portions are smaller and prices higher.", None, 0),
    (108 * D, "Ana Dumitrescu", "RO", "ro", 4, "Foarte plăcut",
     "Loc liniștit, cafea bună și prăjitură cu morcovi delicioasă. Puțin aglomerat la prânz.", None, 0),
    (115 * D, "Paul Rosewarne", "GB", "en", 5, "Proper coffee",
     "Finally somewhere in the village that knows how to pull a shot. Keep it up.", None, 0),
    (122 * D, "Grace Tonkin", "GB", "en", 5, "Lovely staff",
     "My dad has dementia and the staff were so patient with him. Thank you, it meant a lot.",
     "Grace, thank you for telling us. Your dad is always welcome.", 18),
    (130 * D, "Felix Braun", "DE", "de", 3, "Ganz okay",
     "Kaffee in Ordnung, Kuchen gut, aber die Toiletten waren nicht sauber.", None, 0),
    (138 * D, "Alice Penrose", "GB", "en", 5, "Opening week",
     "Went in the first week they opened and it's been a favourite ever since. Good luck to them.", None, 0),
    (147 * D, "Martin Hicks", "GB", "en", 4, "Solid",
     "Good coffee, friendly, clean. Parking nearby is a nightmare but that's hardly their fault.", None, 0),
    (155 * D, "Joanna Lewandowska", "PL", "pl", 3, "Przeciętnie",
     "Kawa w porządku, ale nic wyjątkowego. Ceny wysokie jak na taką małą kawiarnię.", None, 0),
    (164 * D, "Nick Carne", "GB", "en", 5, "Worth the queue",
     "There's always a queue and now I know why. The mocha is ridiculous, in a good way.", None, 0),
    (172 * D, "Yiannis Karras", "GR", "el", 5, "Εξαιρετικό",
     "Από τα καλύτερα καφέ που έχω πάει στην Αγγλία. Πολύ φιλικοί άνθρωποι.", None, 0),
]

# Text-only reviews are the point of this source: several have no stars and must be scored from their words.
# (hours before now, author, stars or None, title, body, owner reply or None, reply delay hours)
_SCHEMA_ORG = [
    (10, "Deborah Quick", None, "Still waiting for my refund",
     "I ordered a birthday cake online, paid £38 up front, and the shop cancelled the order the day before. "
     "That was three weeks ago. I have emailed four times and rung twice and I am still waiting for my refund. "
     "Nobody calls back. Absolutely shocking way to treat a customer.", None, 0),
    (50, "Martin Pascoe", None, "Stale pastries, dirty tables",
     "The croissants were clearly yesterday's, hard and dry, and every table had crumbs and sticky rings on it. "
     "Really disappointing for somewhere that charges these prices.", None, 0),
    (5 * D, "Lucy Bennett", 5, "Wonderful little cafe",
     "Gorgeous coffee, lovely staff and the best lemon cake I have had in years.", None, 0),
    (9 * D, "Colin Rowse", None, "Nice spot by the harbour",
     "Sat outside in the sun with a cappuccino and watched the boats come in. Friendly service, decent coffee, "
     "would happily come again.", None, 0),
    (16 * D, "Sarah Eddy", 2, "Overcharged",
     "Was charged for three drinks when we had two. They fixed it when I pointed it out but didn't apologise.",
     "Sarah, apologies for the mistake and for not saying so at the time.", 30),
    (25 * D, "Ben Thomas", None, "Quiet and relaxing",
     "A calm place to work for an hour. Wifi was fast and nobody minded me staying.", None, 0),
    (38 * D, "Karen Mitchell", None, "Terrible experience",
     "Rude staff, cold coffee and a twenty minute wait. I complained and was told that is just how it is on a "
     "Sunday. Never again.", None, 0),
    (57 * D, "Andrew Hocking", 4, "Good but busy",
     "Very good flat white. Busy at weekends so come early if you want a seat.", None, 0),
    (81 * D, "Jenny Trounson", 5, "Our favourite",
     "We come here every time we visit Cornwall. Never had a bad cup.", None, 0),
    (120 * D, "Philip Berryman", None, "Average",
     "Coffee was okay and the cake was fine. Nothing to complain about, nothing to rave about either.", None, 0),
]

# Posts around the web that name the café, as its Google Alert finds them: no stars, no language tag, so the text
# alone says what the post is, in the visitor's own language. All within the first crawl's 72 h window: the
# complaints alert at once. Each complaint is about something else (hygiene, price, staff, a double charge,
# waiting, the food), so each alert shows another topic; two posts are happy ones that must stay quiet.
# (hours before now, author, language, title, body, the post's address)
_MENTIONS = [
    (4, "magda_z_gdyni", "pl", "Harbour Lane Coffee w Porthallow – nie polecam",
     "Byłam tam wczoraj z mężem. Stoliki brudne i lepiące się od kawy, w toalecie śmierdziało i nie było mydła. "
     "Pani przy kasie wycierała blat tą samą szmatką, którą potem przetarła filiżanki. Zero higieny, więcej tam "
     "nie wejdziemy.",
     "https://forum.polonia-kornwalia.example/t/harbour-lane-coffee-porthallow/4812"),
    (7, "Lizard Coast Walks", "en", "The coast path from Porthallow to Porthoustock",
     "An easy two hours along the cliffs with seals below the Manacles. We started and finished at Harbour Lane "
     "Coffee on the quay: proper flat whites, a generous slice of lemon cake and a friendly welcome for two muddy "
     "walkers and a dog.",
     "https://lizardcoastwalks.example/walks/porthallow-porthoustock"),
    (11, "Ioana Marinescu", "ro", "Harbour Lane Coffee: prețuri de Londra într-un sat din Cornwall",
     "Am oprit la Harbour Lane Coffee în drum spre Falmouth. Două cafele și o brioșă ne-au costat aproape 14 lire, "
     "iar brioșa era cât un pumn de copil. Prețurile sunt complet exagerate pentru o cafenea mică de sat. Mult "
     "prea scump, nu merită banii.",
     "https://jurnaldecalatorie.example/cornwall-pe-buget-porthallow"),
    (16, "nikos_k", "el", "Απαράδεκτη συμπεριφορά στο Harbour Lane Coffee",
     "Ζήτησα ευγενικά να μου ζεστάνουν τον καφέ γιατί ήταν χλιαρός, και ο υπάλληλος μου απάντησε με ειρωνικό ύφος "
     "ότι έτσι τον σερβίρουν εκεί. Πολύ αγενής, ούτε μια συγγνώμη. Δεν θα ξαναπάω.",
     "https://www.taxidiotes.example/forum/thread/1187-porthallow-cornwall"),
    (23, "Stefan W.", "de", "Doppelt abgebucht, keine Erstattung: Harbour Lane Coffee",
     "Im Harbour Lane Coffee in Porthallow wurde mir ein Frühstück für 16 Pfund zweimal von der Kreditkarte "
     "abgebucht. Vor Ort hieß es, die Rückerstattung komme in drei Tagen. Jetzt ist eine Woche vergangen, auf "
     "meine E-Mails bekomme ich keine Antwort und das Geld ist immer noch weg. Wenn bis Freitag nichts passiert, "
     "schalte ich die Verbraucherzentrale ein.",
     "https://www.reiseforum.example/cornwall/harbour-lane-coffee-doppelt-abgebucht"),
    (30, "Ola Wiśniewska", "pl", "Najlepsza kawa w Kornwalii",
     "Przemiła obsługa, pyszne bułeczki cynamonowe i piękny widok na port. Barista zapamiętał moje imię już po "
     "jednej wizycie. Jeśli będziecie w Porthallow, koniecznie zajrzyjcie do Harbour Lane Coffee!",
     "https://kawaipodroze.example/kornwalia-porthallow"),
    (38, "Rūta Petrauskienė", "lt", "Nerekomenduoju Harbour Lane Coffee",
     "Užsukome su draugais į Harbour Lane Coffee prie uosto. Eilėje stovėjome dvidešimt minučių, o paskui dar "
     "pusvalandį laukėme dviejų kavų ir sumuštinio. Kava atnešta šalta, niekas net neatsiprašė. Labai "
     "nusivylėme, daugiau negrįšime.",
     "https://www.keliautojai.example/irasai/porthallow-kavine"),
    (52, "Kernow_Kayaker", "en", "Harbour Lane Coffee has gone downhill",
     "Stopped at Harbour Lane Coffee in Porthallow on Sunday. The scone was stale and rock hard, the cream tasted "
     "sour and my latte was lukewarm and watery. It used to be our favourite place on this coast. Not any more.",
     "https://www.lizardforum.example/threads/harbour-lane-coffee-has-gone-downhill.2231/"),
]


def _stable_id(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:24]


def demo_reviews(now: datetime) -> DemoReviews:
    """The demo's reviews, dated relative to `now` (tz-aware; naive is taken as UTC).

    Some negatives are newer than 72 h (they alert on the first run); most reviews are older (silent history).
    The mentions are all recent: six complaints in six languages, two happy posts.
    Ids are stable across calls, so a re-crawl of regenerated pages finds the same reviews.
    """
    now = now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)
    now = now.replace(microsecond=0)

    def review(prefix: str, age: float, author: str, title: str, body: str, *, reply: str | None = None,
               delay: float = 0, **fields: object) -> SiteReview:
        published = now - timedelta(hours=age)
        return SiteReview(id=_stable_id(prefix, author, title), author=author, title=title, body=body,
                          published_at=published, reply_body=reply,
                          reply_at=published + timedelta(hours=delay) if reply else None, **fields)

    trustpilot = [review("tp", age, author, title, body, reply=reply, delay=delay, rating=stars, language=lang,
                         country=country)
                  for age, author, country, lang, stars, title, body, reply, delay in _TRUSTPILOT]
    schema_org = [review("so", age, author, title, body, reply=reply, delay=delay, rating=stars, language="en")
                  for age, author, stars, title, body, reply, delay in _SCHEMA_ORG]
    mentions = [review("feed", age, author, title, body, rating=None, language=lang, url=url)
                for age, author, lang, title, body, url in _MENTIONS]
    return DemoReviews(trustpilot=trustpilot, schema_org=schema_org, mentions=mentions)


def newest_negative(now: datetime) -> SiteReview:
    """The Trustpilot review the demo's owner answers on the site (step 5 of `make demo`)."""
    negatives = [r for r in demo_reviews(now).trustpilot if r.rating is not None and r.rating <= 2]
    return max(negatives, key=lambda r: r.published_at)


def demo_pages(now: datetime, base_url: str = "", replies: dict[str, str] | None = None) -> dict[str, bytes]:
    """The review sites' pages by path: the Trustpilot-style business page (3 pages) and the schema.org review page.

    The third source, the mentions feed, is `mentions_feed` (served at MENTIONS_PATH).

    `base_url` (the server's, e.g. `SiteServer.url`) makes the schema.org `@id`s absolute; `replies` adds the
    business's reply (review id → text) as the site would show it.
    """
    reviews = demo_reviews(now)
    if replies:
        reviews = replace(
            reviews,
            trustpilot=[replace(r, reply_body=replies[r.id], reply_at=now) if r.id in replies else r
                        for r in reviews.trustpilot],
        )
    # Real 2025 pages show a "relevant reviews" block reusing the card marker; two older positives here.
    relevant = [r for r in reviews.trustpilot if r.rating == 5 and r.reply_body][:2]
    pages = trustpilot_pages(TRUSTPILOT_DOMAIN, reviews.trustpilot, per_page=20, relevant=relevant,
                             display_name=BUSINESS_NAME)
    pages[SCHEMA_ORG_PATH] = schema_org_page(BUSINESS_NAME, reviews.schema_org, kind="LocalBusiness",
                                             page_url=base_url + SCHEMA_ORG_PATH)
    return pages


def mentions_feed(now: datetime, base_url: str = "") -> bytes:
    """The café's Google Alert as an Atom feed (served at MENTIONS_PATH): the mentions, newest first."""
    return atom_feed(BUSINESS_NAME, demo_reviews(now).mentions, feed_url=base_url + MENTIONS_PATH)
