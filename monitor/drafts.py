"""Draft replies shown with an alert: per-language, per-topic templates (built in, overridable in config)."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# Placeholders: {author}, {business}, {site}. `[…]` marks what the owner must fill in before posting; a draft is
# never posted by repwatch. The built-ins apologise and move the conversation to a private channel, which is what
# review platforms and reputation guides advise for a public reply to a complaint.
BUILTIN_DRAFTS: dict[str, dict[str, str]] = {
    "en": {
        "default": "Hi {author}, thank you for taking the time to tell us about this, and we are sorry we let you "
        "down. We would like to put it right: please contact us at [email or phone] with your order details so we "
        "can look into it personally. — {business}",
    },
    "pl": {
        "default": "Dzień dobry {author}, dziękujemy za opinię i przepraszamy, że nie spełniliśmy oczekiwań. "
        "Chcemy to wyjaśnić: prosimy o kontakt pod adresem [e-mail lub telefon] z numerem zamówienia, a zajmiemy "
        "się sprawą osobiście. — {business}",
    },
    "ro": {
        "default": "Bună ziua {author}, vă mulțumim că ne-ați scris și ne pare rău pentru experiența neplăcută. "
        "Dorim să rezolvăm situația: vă rugăm să ne contactați la [e-mail sau telefon] cu detaliile comenzii, "
        "iar noi ne ocupăm personal. — {business}",
    },
    "el": {
        "default": "Γεια σας {author}, σας ευχαριστούμε για το σχόλιό σας και λυπούμαστε για την εμπειρία σας. "
        "Θέλουμε να το διορθώσουμε: επικοινωνήστε μαζί μας στο [email ή τηλέφωνο] με τα στοιχεία της "
        "παραγγελίας σας και θα το αναλάβουμε προσωπικά. — {business}",
    },
    "lt": {
        "default": "Sveiki, {author}, dėkojame už atsiliepimą ir atsiprašome, kad nuvylėme. Norime tai ištaisyti: "
        "susisiekite su mumis [el. paštas arba telefonas] ir nurodykite užsakymo duomenis – pasirūpinsime "
        "asmeniškai. — {business}",
    },
    "de": {
        "default": "Hallo {author}, vielen Dank für Ihre Rückmeldung – es tut uns leid, dass wir Sie enttäuscht "
        "haben. Wir möchten das klären: Bitte kontaktieren Sie uns unter [E-Mail oder Telefon] mit Ihren "
        "Bestelldaten, wir kümmern uns persönlich darum. — {business}",
    },
    "fr": {
        "default": "Bonjour {author}, merci d'avoir pris le temps de nous écrire, et désolés de vous avoir déçu. "
        "Nous voulons arranger cela : contactez-nous à [e-mail ou téléphone] avec les détails de votre commande "
        "et nous nous en occupons personnellement. — {business}",
    },
    "es": {
        "default": "Hola {author}, gracias por contarnos su experiencia y lamentamos haberle decepcionado. "
        "Queremos solucionarlo: escríbanos a [correo o teléfono] con los datos de su pedido y nos ocuparemos "
        "personalmente. — {business}",
    },
}
FALLBACK_LANGUAGE = "en"


class Drafts:
    """Chooses and fills the draft for a review: its language (else English), its first topic with a template,
    else that language's `default`. Config entries win over built-ins, key by key."""

    def __init__(self, overrides: Mapping[str, Mapping[str, str]] | None = None):
        self.templates: dict[str, dict[str, str]] = {lang: dict(t) for lang, t in BUILTIN_DRAFTS.items()}
        for lang, by_topic in (overrides or {}).items():
            self.templates.setdefault(lang.lower(), {}).update(by_topic)

    def template(self, language: str | None, topics: Sequence[str] = ()) -> str | None:
        for lang in dict.fromkeys([(language or "").lower(), FALLBACK_LANGUAGE]):
            by_topic = self.templates.get(lang)
            if not by_topic:
                continue
            for topic in [*topics, "default"]:
                if topic in by_topic:
                    return by_topic[topic]
        return None

    def draft(self, *, language: str | None, topics: Sequence[str] = (), author: str | None, business: str,
              site: str) -> str | None:
        template = self.template(language, topics)
        if template is None:
            return None
        # Placeholders were checked when the config was loaded; values are plain text (the notifier escapes).
        text = template.format(author=" ".join((author or "").split())[:60], business=business, site=site)
        return re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
