"""Complaint cues per language: the cheap screen that picks which 4-5★ reviews get their text read."""
from __future__ import annotations

from monitor.keywords import KeywordSet

# A 4-5★ review is read by the text scorer (to flag it `mixed`) only when one of these appears: reading every
# rated review would cost the model's time on the bulk of reviews that are simply positive. Written by hand;
# `stem*` matches word starts; matching ignores case and accents (unaccented Romanian and Greek match too).
COMPLAINT_CUES: dict[str, list[str]] = {
    "en": ["never again", "not recommend", "wouldn't recommend", "would not recommend", "don't buy", "do not buy",
           "waste of money", "waste of time", "terrible", "awful", "horrible", "worst", "scam*", "disappoint*",
           "avoid", "rude", "useless", "broke", "broken", "refund", "stopped working", "doesn't work",
           "does not work", "poor quality", "rip off", "ripoff", "not worth", "garbage", "disgusting",
           "unacceptable", "never arrived", "still waiting"],
    "pl": ["nie polecam", "nigdy więcej", "odradzam", "porażk*", "fataln*", "tragiczn*", "tragedi*", "beznadziej*",
           "oszu*", "rozczarow*", "zawiod*", "strata pieniędzy", "nie działa", "zepsu*", "reklamacj*",
           "nie kupujcie", "omijać", "omijajcie", "unikajcie", "najgorsz*", "okropn*", "żenad*", "skandal*"],
    "ro": ["nu recomand", "nu mai cumpar*", "nu mai comand*", "niciodată", "dezamăg*", "groaznic*", "oribil*",
           "țeap*", "bani aruncați", "banii aruncați", "nu funcționează", "s-a stricat", "cel mai prost",
           "cea mai proastă", "evitați", "jalnic*", "penibil*", "bătaie de joc", "lipsă de respect"],
    "el": ["δεν το συνιστώ", "δεν συνιστώ", "δεν το προτείνω", "δεν προτείνω", "δεν το συστήνω", "απαράδεκτ*",
           "απογοητ*", "χάλι*", "άθλι*", "χειρότερ*", "απάτη*", "πεταμένα", "ποτέ ξανά", "χάλασε", "δεν λειτουργ*",
           "αποφύγετε", "κοροϊδ*", "αισχ*", "ελαττωματικ*"],
    "de": ["nie wieder", "nicht empfehlen", "nicht zu empfehlen", "nicht empfehlenswert", "enttäusch*",
           "katastroph*", "schrecklich*", "furchtbar*", "miserabel*", "betrug*", "abzocke*", "finger weg", "kaputt",
           "defekt*", "funktioniert nicht", "schlechtest*", "unverschämt*", "frechheit", "ärgerlich*", "mangelhaft*"],
    "lt": ["nerekomenduoju", "niekada daugiau", "nusivyl*", "siaubing*", "blogiausi*", "apgav*", "sugedo",
           "neveikia", "venkite", "pinigai išmesti", "apgaulė*"],
    "fr": ["ne recommande pas", "plus jamais", "déçu*", "décevant*", "arnaque*", "horrible*", "nul", "catastroph*",
           "ne fonctionne pas", "en panne", "à éviter", "inadmissible"],
    "es": ["no lo recomiendo", "no recomiendo", "nunca más", "decepcion*", "estafa*", "horrible*", "pésim*",
           "no funciona", "roto", "rota", "evitar"],
    "it": ["non lo consiglio", "sconsiglio", "sconsigliat*", "mai più", "delus*", "truffa*", "pessim*",
           "non funziona", "rotto", "rotta", "evitate"],
    "nl": ["niet aan te raden", "nooit meer", "teleurgesteld*", "teleurstell*", "oplichter*", "slecht*",
           "werkt niet", "kapot", "vermijd"],
}  # fmt: skip


class ComplaintCues:
    """`found(text, lang)`: the cues of the text's language (and English: reviews mix), all of them when unknown."""

    def __init__(self) -> None:
        self._sets: dict[str, KeywordSet] = {}

    def found(self, text: str, lang: str | None) -> list[str]:
        key = lang if lang in COMPLAINT_CUES else "*"
        if key not in self._sets:
            words = [w for words in COMPLAINT_CUES.values() for w in words] if key == "*" else \
                COMPLAINT_CUES[key] + (COMPLAINT_CUES["en"] if key != "en" else [])  # fmt: skip
            self._sets[key] = KeywordSet(words)
        return self._sets[key].find(text)
