"""Complaint topics: what an owner would call each complaint, in every language, and no topic where there is none."""
from __future__ import annotations

import pytest

from monitor.config import parse_config
from monitor.keywords import fold
from monitor.languages import TOPIC_TITLES, packs
from monitor.topics import TopicMatcher, builtin_topics, topic_title

LANGUAGES = tuple(code for code, pack in packs().items() if pack.topics)  # the language packs with topic words
BUILTIN_TOPICS = builtin_topics()

# (review text in that language, the topics an owner would file it under, most specific first)
COMPLAINTS: dict[str, list[tuple[str, list[str]]]] = {
    "en": [
        ("Ordered on Monday, the parcel never arrived and the tracking page shows nothing.", ["delivery"]),
        ("They promised a refund three weeks ago and I still haven't got my money back.", ["refunds"]),
        ("The waitress was extremely rude and the manager just shrugged.", ["service"]),
        ("We waited 50 minutes for lukewarm, bland soup.", ["food", "waiting"]),
        ("Way overpriced for what you get: $18 for a tiny sandwich.", ["price"]),
        ("They charged me for two coffees and the invoice was wrong.", ["billing"]),
        ("The app keeps crashing at checkout and I can't log in.", ["website"]),
        ("Tables were sticky and the restroom was filthy.", ["cleanliness"]),
        ("The blender stopped working after a week, cheaply made.", ["quality"]),
    ],
    "pl": [
        ("Paczka nie dotarła, a kurier twierdzi, że nikogo nie było w domu.", ["delivery"]),
        ("Od miesiąca czekam na zwrot pieniędzy, reklamacja wciąż nierozpatrzona.", ["refunds", "waiting"]),
        ("Kelnerka była niemiła i opryskliwa, obsługa fatalna.", ["service"]),
        ("Zupa bez smaku, a pierogi rozgotowane.", ["food"]),
        ("Ceny kosmiczne, za drogo jak na taki lokal.", ["price"]),
        ("Pobrali opłatę dwa razy, a faktury do dziś nie dostałem.", ["billing"]),
        ("Aplikacja ciągle się zawiesza i nie da się zalogować.", ["website"]),
        ("W łazience brud i pleśń, wszystko śmierdzi.", ["cleanliness"]),
        ("Telefon przyszedł uszkodzony, ekran pękł po tygodniu.", ["quality"]),
    ],
    "ro": [
        ("Coletul nu a ajuns nici după două săptămâni, curierul nu mai dă niciun semn.", ["delivery"]),
        ("Am cerut returnarea banilor de o lună și nimic.", ["refunds"]),
        ("Ospătarul a fost nepoliticos și arogant.", ["service"]),
        ("Mancarea rece si fara gust, nu recomand.", ["food"]),  # typed without diacritics, as many do
        ("Prețul este mult prea mare, foarte scump pentru ce oferă.", ["price"]),
        ("Am fost taxat de două ori și factura era greșită.", ["billing"]),
        ("Aplicația se blochează și logare imposibilă.", ["website"]),
        ("Camera era murdară și mirosea urât.", ["cleanliness"]),
        ("Produsul a venit defect si s-a stricat dupa o zi.", ["quality"]),
        ("Am așteptat o oră la coadă.", ["waiting"]),
    ],
    "el": [
        ("Το δέμα δεν έφτασε ποτέ, η ACS λέει ότι χάθηκε.", ["delivery"]),
        ("Ζήτησα επιστροφή χρημάτων πριν από ένα μήνα.", ["refunds"]),
        ("Ο σερβιτόρος ήταν αγενής και ειρωνικός.", ["service"]),
        ("Το φαγητό ήρθε κρύο και άνοστο.", ["food"]),
        ("Πανάκριβο για αυτό που προσφέρει.", ["price"]),
        ("Με χρέωσαν δύο φορές στην κάρτα.", ["billing"]),
        ("Περιμέναμε μισή ώρα στην ουρά.", ["waiting"]),
        ("ΤΟ ΜΠΑΝΙΟ ΗΤΑΝ ΒΡΩΜΙΚΟ ΚΑΙ ΕΙΧΕ ΚΑΤΣΑΡΙΔΕΣ.", ["cleanliness"]),  # capitals, no accents
        ("Η συσκευή ήταν ελαττωματική και έσπασε την πρώτη μέρα.", ["quality"]),
        ("Η ιστοσελίδα δεν φορτώνει ποτέ.", ["website"]),
    ],
    "lt": [
        ("Siunta vėluoja dvi savaites, kurjeris neatsiliepia.", ["delivery", "service", "waiting"]),
        ("Prašiau grąžinti pinigus, bet jų vis dar nėra.", ["refunds"]),
        ("Padavėja buvo labai nemandagi.", ["service"]),
        ("Maistas buvo šaltas ir beskonis.", ["food"]),
        ("Per brangu už tokią kokybę, kainos išaugo.", ["price"]),
        ("Nuskaičiavo pinigus iš kortelės du kartus.", ["billing"]),
        ("Eilėje laukėme beveik valandą.", ["waiting"]),
        ("Kambarys nešvarus, visur tarakonai.", ["cleanliness"]),
        ("Prekė sugedo po savaitės, prasta kokybė.", ["quality"]),
        ("Svetainėje nepavyksta prisijungti, programėlė irgi stringa.", ["website"]),
    ],
    "de": [
        ("Das Paket wurde nie zugestellt, die Sendungsverfolgung zeigt nichts.", ["delivery"]),
        ("Auf die Rückerstattung warte ich seit sechs Wochen.", ["refunds"]),
        ("Die Bedienung war unfreundlich und herablassend.", ["service"]),
        ("Das Essen war kalt und völlig versalzen.", ["food"]),
        ("Viel zu teuer, die Preise sind eine Frechheit.", ["price"]),
        ("Die Rechnung war falsch, uns wurde doppelt berechnet.", ["billing"]),
        ("45 Minuten Verspätung und niemand sagt etwas.", ["waiting"]),
        ("Die Toiletten waren dreckig und es stank.", ["cleanliness"]),
        ("Der Föhn war nach zwei Tagen kaputt.", ["quality"]),
        ("Die App stürzt ständig ab und das Passwort wird nicht akzeptiert.", ["website"]),
    ],
    "fr": [
        ("Colis jamais arrivé, le transporteur ne répond pas.", ["delivery"]),
        ("J'attends toujours mon remboursement.", ["refunds"]),
        ("Serveur désagréable et impoli.", ["service"]),
        ("Plat tiède et sans goût.", ["food"]),
        ("Beaucoup trop cher, des prix exorbitants.", ["price"]),
        ("Prélevé deux fois sur ma carte bancaire, et toujours pas de facture.", ["billing"]),
        ("Une heure d'attente pour être servis.", ["waiting"]),
        ("Chambre pleine de cafards, une vraie saleté.", ["cleanliness"]),
        ("L'aspirateur est tombé en panne au bout d'un mois.", ["quality"]),
        ("Impossible de payer sur le site, l'application plante.", ["website"]),
    ],
    "es": [
        ("El paquete sigue perdido y el repartidor no contesta al teléfono.", ["delivery"]),
        ("Todavía espero el reembolso de mi devolución.", ["refunds"]),
        ("El camarero fue maleducado y antipático.", ["service"]),
        ("Comida fría e insípida.", ["food"]),
        ("Demasiado caro para lo que ofrecen, precios abusivos.", ["price"]),
        ("Me cobraron dos veces en la tarjeta.", ["billing"]),
        ("Tardaron una hora en servirnos, la espera fue eterna.", ["waiting"]),
        ("Baño sucio y con cucarachas.", ["cleanliness"]),
        ("La lavadora vino rota y dejó de funcionar.", ["quality"]),
        ("La aplicación no carga y la página web da error.", ["website"]),
    ],
    "it": [
        ("Il pacco non è mai arrivato e il corriere è sparito.", ["delivery"]),
        ("Aspetto ancora il rimborso.", ["refunds"]),
        ("Cameriere scortese e maleducato.", ["service"]),
        ("Pasta scotta e insipida.", ["food"]),
        ("Prezzi troppo alti, conto salato.", ["price"]),
        ("Addebito doppio sulla carta di credito.", ["billing"]),
        ("Un'ora di attesa per una pizza.", ["waiting"]),
        ("Bagni sporchi e puzza ovunque.", ["cleanliness"]),
        ("Il prodotto è arrivato rotto, qualità scadente.", ["quality"]),
        ("Il sito va in errore e l'app si blocca sempre.", ["website"]),
    ],
    "nl": [
        ("Mijn pakket is nooit bezorgd, PostNL geeft geen antwoord.", ["delivery", "service"]),
        ("Ik wacht nog steeds op mijn terugbetaling.", ["refunds"]),
        ("De ober was onvriendelijk en onbeleefd.", ["service"]),
        ("Het eten was koud en smakeloos.", ["food"]),
        ("Veel te duur voor wat je krijgt.", ["price"]),
        ("Het bedrag is dubbel afgeschreven en de factuur klopt niet.", ["billing"]),
        ("Een uur wachten op ons eten.", ["waiting"]),
        ("De kamer was vies en er zat schimmel in de badkamer.", ["cleanliness"]),
        ("Na een week was de stofzuiger kapot.", ["quality"]),
        ("Inloggen op de website lukt niet.", ["website"]),
    ],
}

# Sentences with the look-alike words that a careless lexicon would file under a topic: no topic at all.
NO_COMPLAINT: dict[str, list[str]] = {
    "en": [
        "Priceless views from the terrace and a lovely, friendly team.",
        "Can't wait to come back for the tasting menu.",
        "The waiter recommended a delicious local wine.",
        "Freshly baked bread made from scratch, great coffee.",
        "We will definitely return next summer.",
        "The staff were attentive and the food was wonderful.",
    ],
    "pl": [
        "Stale tu wracamy, bo obsługa jest bardzo miła.",  # "stale" = constantly, not the English "stale"
        "Pączki były pyszne, polecam każdemu.",
        "Informacja zwrotna od lekarza była bardzo pomocna.",
        "Cenię sobie tę restaurację za klimat.",
        "Byłem niemile zaskoczony tylko pogodą, reszta super.",
        "Drogi Panie Janie, dziękujemy za wspaniały wieczór.",
        "Czekolada na gorąco była pyszna.",
    ],
    "ro": [
        "Produsul este peste așteptări, îl recomand tuturor.",
        "Un săpun blând, potrivit pentru pielea sensibilă.",  # "blând" = gentle, not "bland"
        "Am cumpărat cadouri pentru rude și prieteni.",
        "M-am așteptat la mai puțin, dar e excelent.",
        "Lentilele sunt clare și ușoare.",
    ],
    "el": [
        "Ακριβώς όπως την περιγραφή, πολύ ευχαριστημένος.",
        "Παραδοσιακή ταβέρνα με υπέροχο φαγητό.",
        "Ο Απόστολος μας εξυπηρέτησε άψογα.",
        "Βάλαμε βρώμη στο πρωινό και ήταν τέλεια.",
        "Ήταν ακριβής στην ώρα του.",
    ],
    "lt": [
        "Nesvarbu, ką užsisakysite – viskas skanu.",
        "Administratorė Gražina buvo labai maloni.",
        "Lauke buvo gražu, sėdėjome terasoje.",
        "Dovanojau gražią eilėraščių knygą.",
    ],
    "de": [
        "Preiswert und lecker, wir kommen wieder.",
        "Der Arzt hat mich schnell kuriert.",
        "Sehr nette Bedienung, gemütliches Ambiente.",
        "Gebührend haben wir den Geburtstag hier gefeiert.",
    ],
    "fr": [
        "Le livre de recettes offert est magnifique.",
        "Crème brûlée parfaite et accueil chaleureux.",
        "Un plat salé délicieux, on reviendra.",
        "Dans le périmètre de l'hôtel, tout est calme.",
        "Au-delà de mes attentes, merci !",
    ],
    "es": [
        "Un lugar precioso con vistas increíbles.",
        "Me di cuenta de que el personal es encantador.",
        "Esperamos volver pronto, todo riquísimo.",
    ],
    "it": [
        "Un puzzle per bambini bellissimo.",
        "Mi sono reso conto che il personale è gentilissimo.",
        "Il prosciutto crudo era eccellente.",
        "Ben oltre le attese, bravissimi.",
    ],
    "nl": [
        "Ik was eerst bezorgd, maar alles ging prima.",
        "De duur van de rondleiding was perfect.",
        "Heerlijke lever met uien.",
    ],
}


@pytest.fixture(scope="module")
def matcher() -> TopicMatcher:
    return TopicMatcher.from_config(None)


@pytest.mark.parametrize(
    ("lang", "text", "expected"),
    [(lang, text, expected) for lang, cases in COMPLAINTS.items() for text, expected in cases],
    ids=[f"{lang}-{i}" for lang, cases in COMPLAINTS.items() for i in range(len(cases))],
)
def test_a_complaint_gets_the_topic_an_owner_would_give_it(matcher, lang, text, expected):
    assert matcher.topics(text, lang) == expected, matcher.keywords_found(text, lang)


@pytest.mark.parametrize(
    ("lang", "text"),
    [(lang, text) for lang, texts in NO_COMPLAINT.items() for text in texts],
    ids=[f"{lang}-{i}" for lang, texts in NO_COMPLAINT.items() for i in range(len(texts))],
)
def test_look_alike_words_get_no_topic(matcher, lang, text):
    assert matcher.topics(text, lang) == [], matcher.keywords_found(text, lang)


def test_every_language_has_positive_and_negative_examples_for_every_topic():
    """Keeps this file honest: a language added to the lexicon comes with sentences here."""
    assert set(COMPLAINTS) == set(NO_COMPLAINT) == set(LANGUAGES)
    for lang, cases in COMPLAINTS.items():
        covered = {topic for _, expected in cases for topic in expected}
        assert covered == set(BUILTIN_TOPICS), (lang, set(BUILTIN_TOPICS) - covered)


def test_topics_are_ordered_by_distinct_keywords_then_by_name(matcher):
    text = "Late delivery, the courier lost the parcel, and a pricey tip on top."
    assert matcher.keywords_found(text, "en") == {"delivery": ["delivery", "courier*", "parcel"], "price": ["pricey"]}
    assert matcher.topics(text, "en") == ["delivery", "price"]
    assert matcher.topics("Bland soup and dirty tables.", "en") == ["cleanliness", "food"]  # one each: by name
    assert matcher.topics("Bland, bland, bland. Dirty and filthy tables.", "en") == ["cleanliness", "food"]


def test_english_is_checked_in_every_review_but_not_its_false_friends(matcher):
    assert matcher.topics("Jedzenie dobre, ale refund do dziś nie przyszedł.", "pl") == ["refunds"]
    assert matcher.topics("Stale coś nie tak z rezerwacją.", "pl") == []
    assert matcher.topics("The bread was stale.", "en") == ["food"]
    # only the review's language and English: Greek words mean nothing in an English review
    assert matcher.topics("Το δέμα δεν έφτασε.", "en") == []


@pytest.mark.parametrize("lang", [None, "und", ""])
def test_a_review_of_unknown_language_is_checked_in_every_language(matcher, lang):
    assert matcher.topics("Το δέμα δεν έφτασε.", lang) == ["delivery"]
    assert matcher.topics("Kelnerka była opryskliwa.", lang) == ["service"]


@pytest.mark.parametrize("lang", ["pl", "PL", "pl-PL", "pl_PL"])
def test_language_tags_are_read_by_their_language(matcher, lang):
    assert matcher.topics("Kelnerka była opryskliwa.", lang) == ["service"]


def test_a_language_without_a_lexicon_still_gets_english(matcher):
    assert matcher.topics("Entrega atrasada, refund never came.", "pt") == ["refunds"]


def test_empty_text_has_no_topics(matcher):
    assert matcher.topics("", "en") == [] and matcher.topics("   ", None) == []


def test_config_topics_replace_built_in_words_per_language_and_add_new_topics():
    config = parse_config(
        """
topics:
  delivery:
    en: [van driver]
  parking:
    en: [parking, car park]
    pl: ["parking*", miejsca parkingowe]
""",
        env={},
    )
    matcher = TopicMatcher.from_config(config)
    # English delivery words are now only the configured ones…
    assert matcher.topics("The parcel never arrived.", "en") == []
    assert matcher.topics("The van driver threw it over the fence.", "en") == ["delivery"]
    # …while Polish keeps its built-in delivery words, and other topics are untouched.
    assert matcher.topics("Kurier zgubił przesyłkę.", "pl") == ["delivery"]
    assert matcher.topics("Way overpriced.", "en") == ["price"]
    assert matcher.topics("No parking anywhere near the car park entrance.", "en") == ["parking"]
    assert matcher.topics("Brak miejsc na parkingu.", "pl") == ["parking"]
    assert topic_title("parking") == "Parking" and topic_title("opening_hours") == "Opening hours"
    # the built-ins themselves are not changed by a config
    assert TopicMatcher.from_config(None).topics("The parcel never arrived.", "en") == ["delivery"]


def test_a_configured_empty_list_turns_a_topic_off_for_that_language():
    matcher = TopicMatcher.from_config(parse_config("topics: {price: {en: []}}", env={}))
    assert matcher.topics("Way overpriced.", "en") == []
    assert matcher.topics("Ceny kosmiczne.", "pl") == ["price"]


def test_no_config_topics_means_the_shared_built_in_matcher():
    assert TopicMatcher.from_config(parse_config("data_dir: data", env={})) is TopicMatcher.from_config(None)


# --------------------------------------------------------------------------------------------------------------
# The lexicon itself


def test_every_topic_has_a_title_and_every_language():
    assert set(TOPIC_TITLES) == set(BUILTIN_TOPICS)
    for topic, by_lang in BUILTIN_TOPICS.items():
        assert set(by_lang) == set(LANGUAGES), topic
        assert all(len(words) >= 4 for words in by_lang.values()), topic


def test_lexicon_entries_are_well_formed():
    """`*` only at the end, no stem so short it swallows unrelated words, no entry listed twice."""
    for topic, by_lang in BUILTIN_TOPICS.items():
        for lang, words in by_lang.items():
            folded = [fold(word) for word in words]
            assert len(folded) == len(set(folded)), (topic, lang, sorted(w for w in folded if folded.count(w) > 1))
            for word in words:
                assert word == word.strip() and "*" not in word[:-1], (topic, lang, word)
                if word.endswith("*"):
                    assert len(fold(word[:-1])) >= 4, (topic, lang, word)
