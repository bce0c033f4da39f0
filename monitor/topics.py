"""Complaint topics (delivery, refunds, price, …): a multilingual keyword lexicon and the matcher over review text."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from monitor.keywords import KeywordSet

# Written for precision: a topic wrongly attached is worse than one missed. So a bare word that is as often praise
# or neutral as a complaint ("staff", "food", "quality") is only listed inside a complaint phrase, and every stem
# was checked against the language's frequent words (`price*` would catch "priceless", so: `price`, `prices`, …).
# Write keywords with their accents: matching folds case and accents on both sides ("pret" finds "preț").
BUILTIN_TOPICS: dict[str, dict[str, list[str]]] = {
    "delivery": {
        "en": ["delivery", "deliveries", "undelivered", "not delivered", "never delivered", "delivered late",
               "was delivered", "were delivered", "delivered the wrong", "parcel", "parcels", "courier*", "shipping",
               "shipment*", "shipped", "dispatched", "tracking number", "tracking", "postage", "in transit",
               "lost in the post", "lost in the mail", "never arrived", "DHL", "DPD", "FedEx", "Royal Mail"],
        "pl": ["dostaw*", "dostarcz*", "kurier*", "przesyłk*", "paczkę", "paczce", "paczką", "paczkomat*", "wysyłk*",
               "nie dotarł*", "nie doszł*", "nie doszła", "InPost", "DHL", "DPD"],
        "ro": ["livrar*", "livrat*", "livrării", "livra", "livrează", "curier*", "colet*", "expediere*", "expediat*",
               "AWB", "Fan Courier", "Sameday", "Cargus", "nu a ajuns", "n-a ajuns", "nu mi-a ajuns"],
        "el": ["παράδοση", "παράδοσης", "παραδόθηκε", "παραδοθεί", "αποστολή", "αποστολής", "αποστολές", "κούριερ",
               "courier", "δέμα", "δέματος", "δέματα", "ντελίβερι", "διανομέα*", "διανομή", "δεν παρέλαβα",
               "δεν έφτασε", "ACS", "ΕΛΤΑ", "Speedex"],
        "lt": ["pristatym*", "pristatė", "pristatyti", "pristatytas", "pristatyta", "kurjer*", "siunta", "siuntos",
               "siuntin*", "siuntim*", "paštomat*", "Omniva", "DPD", "LP Express", "neatkeliavo"],
        "de": ["Liefer*", "geliefert", "Zustell*", "zugestellt", "Paket", "Pakete", "Paketdienst*", "Versand*",
               "versendet", "verschickt", "Kurier", "Kurierdienst*", "Sendungsverfolgung", "Sendungsnummer",
               "nicht angekommen", "nie angekommen", "DHL", "Hermes", "DPD"],
        "fr": ["livraison*", "livrer", "livrée", "livrées", "livreur*", "livreuse*", "colis", "expédition*",
               "expédié*", "transporteur*", "Colissimo", "Chronopost", "jamais arrivé*"],
        "es": ["entrega", "entregas", "entregado", "entregada", "entregaron", "envío", "envíos", "paquete*",
               "repartidor*", "mensajería", "mensajero*", "seguimiento del pedido", "nunca llegó el pedido", "SEUR",
               "MRW"],
        "it": ["consegn*", "spedizion*", "spedit*", "corriere", "corrieri", "pacco", "pacchi", "fattorino",
               "mai arrivat*", "BRT", "GLS"],
        "nl": ["bezorging*", "bezorger*", "bezorgen", "bezorgkosten", "bezorgtijd*", "niet bezorgd", "nooit bezorgd",
               "levering*", "geleverd", "leverde*", "leveren", "levertijd*", "pakket*", "koerier*", "verzending*",
               "verzendkosten", "verzonden", "PostNL", "track & trace", "track and trace"],
    },
    "refunds": {
        "en": ["refund*", "reimburs*", "money back", "money-back", "chargeback", "returns", "return policy",
               "returned it", "returned the item", "store credit", "credit note"],
        "pl": ["zwrot", "zwrotu", "zwrotem", "zwrocie", "zwroty", "zwrotów", "zwrot pieniędzy", "reklamacj*",
               "odstąpienie od umowy", "oddać pieniądze", "oddania pieniędzy", "oddali pieniądze", "chargeback"],
        "ro": ["rambursa*", "restitui*", "retur", "returul", "retururi", "returnare", "returnarea", "returnat",
               "returnată", "returnez", "returneze", "returnează", "banii înapoi", "să-mi dea banii",
               "returnarea banilor"],
        "el": ["επιστροφή", "επιστροφής", "επιστροφές", "επιστροφή χρημάτων", "επιστροφή των χρημάτων", "αποζημίωσ*",
               "πίσω τα χρήματά μου", "πίσω τα λεφτά μου", "πιστωτικό σημείωμα"],
        "lt": ["grąžinimas", "grąžinimo", "grąžinimą", "grąžinimui", "grąžinti", "grąžino", "grąžinkite", "grąžins",
               "kompensacij*", "pinigų grąžin*"],
        "de": ["Rückerstatt*", "zurückerstatt*", "Erstattung*", "erstattet", "Geld zurück", "Geld zurückerstattet",
               "Rücksendung*", "Retoure*", "Umtausch*", "Gutschrift*", "Reklamation*", "Widerruf*"],
        "fr": ["rembours*", "rendre mon argent", "récupérer mon argent", "rétractation", "retourner le produit",
               "retour du produit"],
        "es": ["reembols*", "devolución", "devoluciones", "devolver el dinero", "devuelvan el dinero",
               "devolvieron el dinero", "devolver mi dinero", "recuperar mi dinero"],
        "it": ["rimbors*", "restituzion*", "rivoglio i miei soldi", "soldi indietro", "recesso", "reso del prodotto"],
        "nl": ["terugbetal*", "terugstort*", "teruggestort", "geld terug", "geld teruggekregen", "restitutie",
               "retourneren", "retourzending*", "geretourneerd", "creditnota"],
    },
    "service": {
        "en": ["customer service", "customer support", "customer care", "support team", "helpdesk", "help desk",
               "rudely", "rudeness", "very rude", "so rude", "extremely rude", "really rude", "was rude", "were rude",
               "is rude", "are rude", "rude staff", "rude and", "unfriendly", "unhelpful", "impolite",
               "disrespectful", "condescending", "arrogant", "dismissive", "unprofessional", "attitude",
               "bad service", "poor service", "terrible service", "horrible service", "awful service",
               "worst service", "lousy service", "service was terrible", "service was horrible", "service was awful",
               "service was bad", "service was poor", "service is terrible", "no response", "never responded",
               "never replied", "no reply", "hung up", "ignored us", "ignored me", "ignored my", "manager"],
        "pl": ["obsługa klienta", "obsługi klienta", "obsługę klienta", "obsłudze klienta", "biuro obsługi",
               "fatalna obsługa", "słaba obsługa", "beznadziejna obsługa", "tragiczna obsługa", "okropna obsługa",
               "obsługa fatalna", "obsługa beznadziejna", "obsługa tragiczna", "niemiły", "niemiła", "niemili",
               "niemiłego", "niemiłej", "niemiło", "nieuprzejm*", "opryskliw*", "chamsk*", "chamstw*", "arogan*",
               "bezczeln*", "nieprofesjonaln*", "brak odpowiedzi", "nikt nie odbiera", "nie odbierają", "infolini*",
               "konsultant*", "ignorują", "zignorowa*"],
        "ro": ["serviciul clienți", "serviciu clienți", "relații cu clienții", "relațiile cu clienții",
               "asistență clienți", "call center", "nepoliticos*", "nesimți*", "obraznic*", "arogan*",
               "neprofesionis*", "atitudine*", "nu răspund la telefon", "nu răspunde la telefon",
               "nu răspund la mail*", "nu răspunde la mail*", "niciun răspuns", "nici un răspuns"],
        "el": ["εξυπηρέτηση πελατών", "κακή εξυπηρέτηση", "απαράδεκτη εξυπηρέτηση", "άθλια εξυπηρέτηση",
               "χάλια εξυπηρέτηση", "ανύπαρκτη εξυπηρέτηση", "μηδενική εξυπηρέτηση", "καμία εξυπηρέτηση",
               "αγενέστατ*", "αγενής", "αγενείς", "αγένεια", "απρεπ*", "ειρωνικ*", "αντιεπαγγελματ*", "υπεροπτικ*",
               "δεν απαντ*", "δεν σηκών*", "μας αγνόησαν", "με αγνόησαν", "τηλεφωνικό κέντρο"],
        "lt": ["klientų aptarnavim*", "blogas aptarnavimas", "prastas aptarnavimas", "baisus aptarnavimas",
               "aptarnavimas baisus", "aptarnavimas prastas", "nemandag*", "arogantišk*", "įžūl*", "neprofesional*",
               "neatsako", "neatsakė", "neatsiliepia", "ignoruoja", "ignoravo"],
        "de": ["Kundenservice", "Kundendienst", "Kundensupport", "Kundenbetreuung", "der Support", "den Support",
               "vom Support", "Hotline", "unfreundlich*", "unhöflich*", "frech", "freche", "frechen", "frecher",
               "arrogant*", "herablassend*", "unprofessionell*", "keine Antwort", "nicht erreichbar", "ignoriert",
               "Servicewüste", "schlechter Service", "schlechten Service"],
        "fr": ["service client*", "service après-vente", "SAV", "impoli*", "désagréable*", "irrespectueu*",
               "arrogant*", "méprisant*", "grossier*", "hautain*", "aucune réponse", "pas de réponse", "sans réponse",
               "accueil glacial", "mauvais accueil"],
        "es": ["atención al cliente", "servicio al cliente", "maleducad*", "mal educad*", "grosero*", "grosera*",
               "antipátic*", "prepotente*", "arrogante*", "mala atención", "pésima atención", "pésimo servicio",
               "mal servicio", "no contestan", "no responden", "nadie contesta", "sin respuesta"],
        "it": ["servizio clienti", "assistenza clienti", "customer care", "maleducat*", "scortes*", "sgarbat*",
               "arrogant*", "antipatic*", "cafon*", "nessuna risposta", "non rispondono", "pessimo servizio"],
        "nl": ["klantenservice", "klantendienst", "helpdesk", "onbeleefd*", "onvriendelijk*", "klantonvriendelijk*",
               "brutaal", "brutale", "arrogant*", "geen reactie", "geen antwoord", "slechte service"],
    },
    "quality": {
        "en": ["defective", "defect", "defects", "faulty", "broken", "it broke", "broke after", "broke within",
               "broke down", "stopped working", "quit working", "doesn't work", "doesn’t work", "does not work",
               "didn't work", "didn’t work", "did not work", "not working", "damaged", "malfunction*", "poor quality",
               "bad quality", "low quality", "terrible quality", "cheap quality", "quality control", "cheaply made",
               "poorly made", "flimsy", "fell apart", "falls apart", "falling apart", "arrived cracked",
               "cracked screen", "was cracked", "leaking", "counterfeit", "knockoff", "knock-off", "expired"],
        "pl": ["wadliw*", "wada", "wady", "wadę", "uszkodz*", "zepsut*", "zepsuł się", "zepsuła się", "zepsuło się",
               "nie działa*", "przestał działać", "przestała działać", "przestało działać", "słaba jakość",
               "słabej jakości", "kiepska jakość", "kiepskiej jakości", "niska jakość", "niskiej jakości",
               "jakość wykonania", "tandet*", "pękł*", "pęknięt*", "rozpadł się", "rozpadła się", "podróbk*",
               "wybrakowan*", "przeterminowan*"],
        "ro": ["defect*", "stricat*", "s-a stricat", "nu funcționează", "nu mai funcționează", "nu merge",
               "nu mai merge", "a cedat", "calitate slabă", "calitate proastă", "calitatea slabă",
               "calitatea proastă", "calitate îndoielnică", "deteriorat*", "zgâriat*", "crăpat*", "fisurat*", "rupt",
               "ruptă", "rupte", "contrafăcut*", "falsificat*", "expirat*"],
        "el": ["ελαττωματικ*", "ελάττωμα", "ελαττώματα", "χαλασ*", "δεν λειτουργ*", "σταμάτησε να λειτουργεί",
               "κακή ποιότητα", "κακής ποιότητας", "χαμηλή ποιότητα", "χαμηλής ποιότητας", "κακή κατασκευή",
               "κατεστραμμέν*", "σπασμέν*", "έσπασε", "ραγισμέν*", "γρατζουν*", "γρατσουν*", "απομίμησ*", "μαϊμού",
               "ληγμέν*"],
        "lt": ["brokas", "broko", "broką", "brokuot*", "sugedo", "sugedęs", "sugedusi", "sugedę", "neveik*",
               "nebeveik*", "prasta kokybė", "prastos kokybės", "bloga kokybė", "blogos kokybės", "nekokybišk*",
               "suskil*", "sulūž*", "apgadint*", "klastot*"],
        "de": ["defekt*", "kaputt*", "beschädigt*", "funktioniert nicht", "funktioniert nicht mehr", "minderwertig*",
               "schlechte Qualität", "schlechter Qualität", "mangelhaft*", "zerbrochen", "schlecht verarbeitet",
               "billig verarbeitet", "Fälschung*"],
        "fr": ["défectueu*", "défaut de fabrication", "cassé", "cassée", "cassés", "cassées", "abîmé*", "endommagé*",
               "ne fonctionne pas", "ne fonctionne plus", "ne marche pas", "ne marche plus", "en panne",
               "mauvaise qualité", "qualité médiocre", "piètre qualité", "contrefaçon*", "fissuré*", "périmé",
               "périmée", "périmés", "périmées"],
        "es": ["defectuos*", "roto", "rota", "rotos", "rotas", "se rompió", "estropead*", "dañad*", "no funciona",
               "dejó de funcionar", "mala calidad", "baja calidad", "pésima calidad", "calidad pésima", "falsificad*",
               "caducad*", "agrietad*"],
        "it": ["difettos*", "difetto", "difetti", "rotto", "rotta", "rotti", "rotte", "si è rotto", "si è rotta",
               "guasto", "guasta", "guasti", "danneggiat*", "non funziona", "smesso di funzionare", "scarsa qualità",
               "bassa qualità", "pessima qualità", "qualità scadente", "scadente", "contraffatt*", "graffiat*"],
        "nl": ["defect", "defecte", "kapot*", "beschadigd*", "werkt niet", "werkt niet meer", "doet het niet",
               "slechte kwaliteit", "matige kwaliteit", "lage kwaliteit", "waardeloze kwaliteit", "namaak",
               "stukgegaan", "gescheurd"],
    },
    "food": {
        "en": ["cold food", "food was cold", "food came cold", "food arrived cold", "lukewarm", "bland", "tasteless",
               "flavorless", "flavourless", "no flavor", "no flavour", "no taste", "stale", "undercooked",
               "overcooked", "burnt", "soggy", "rubbery", "watery", "inedible", "food poisoning", "rotten", "moldy",
               "mouldy", "not fresh", "too salty", "microwaved"],
        "pl": ["zimne jedzenie", "jedzenie zimne", "jedzenie było zimne", "bez smaku", "niesmaczn*", "nieśwież*",
               "niedopieczon*", "niedogotowan*", "rozgotowan*", "przypalon*", "przesolon*", "rozmokł*", "wodnist*",
               "zatrucie pokarmowe", "zatrułem się", "zatrułam się", "zatruliśmy się", "spleśniał*", "niejadaln*",
               "niedosmażon*"],
        "ro": ["mâncarea rece", "mâncare rece", "mâncarea era rece", "fără gust", "fad", "fadă", "insipid*",
               "nesărat*", "prea sărat*", "neproaspăt*", "nu era proaspăt*", "crud", "crudă", "ars", "arsă",
               "intoxicați*", "m-am intoxicat", "toxiinfecție", "mucegăit*", "necomestibil*"],
        "el": ["κρύο φαγητό", "φαγητό κρύο", "φαγητό ήταν κρύο", "ήρθε κρύο", "ήρθαν κρύα", "άνοστ*", "άγευστ*",
               "μπαγιάτικ*", "ωμό", "ωμά", "άψητ*", "καμέν*", "παραβρασμέν*", "παραψημέν*", "αλμυρ*",
               "τροφική δηλητηρίαση", "νερουλ*", "μουχλιασμέν*", "χαλασμένο φαγητό", "μπαγιάτικο"],
        "lt": ["šaltas maistas", "maistas šaltas", "maistas buvo šaltas", "atšal*", "beskon*", "neskan*", "nešviež*",
               "neiškep*", "perkep*", "sudeg*", "per sūr*", "apsinuodij*", "supelėj*", "pervir*", "nevalgom*"],
        "de": ["kaltes Essen", "Essen war kalt", "Essen kalt", "lauwarm", "fad", "fades Essen", "geschmacklos",
               "versalzen", "angebrannt", "matschig", "labberig", "ungenießbar", "Lebensmittelvergiftung",
               "verdorben*", "abgestanden", "nicht frisch", "zu salzig", "verkocht", "halbroh"],
        "fr": ["tiède*", "sans goût", "insipide*", "trop fade", "très fade", "c'est fade", "plat fade", "pas frais",
               "pas fraîche", "pas fraîches", "rassis", "pas cuit*", "trop cuit*", "mal cuit*", "cramé*",
               "trop salé*", "intoxication alimentaire", "immangeable*", "caoutchouteu*", "plat froid servi",
               "arrivé froid", "arrivés froids", "servi froid"],
        "es": ["comida fría", "llegó fría", "tibia", "sin sabor", "insípid*", "soso", "rancio*", "quemado", "quemada",
               "quemados", "quemadas", "muy salado", "demasiado salado", "intoxicación alimentaria", "incomible*",
               "aceitos*", "no estaba fresco", "poco fresco", "crudo por dentro"],
        "it": ["cibo freddo", "arrivato freddo", "arrivata fredda", "tiepid*", "insipid*", "senza sapore", "sciapo",
               "sciapa", "stantio", "stantia", "bruciat*", "scotti", "scotta", "salatissim*", "troppo salat*",
               "immangiabil*", "intossicazione alimentare", "gommos*", "non fresco", "poco fresco"],
        "nl": ["koud eten", "eten was koud", "lauw", "lauwe", "smakeloos", "smakeloze", "flauw", "oudbakken",
               "aangebrand*", "verbrand", "te zout", "voedselvergiftiging", "oneetbaar", "taai", "niet vers",
               "niet meer vers"],
    },
    "price": {
        "en": ["price", "prices", "pricing", "priced", "pricey", "overpriced", "expensive", "costly", "rip off",
               "rip-off", "ripoff", "not worth the money", "not worth the price", "highway robbery",
               "daylight robbery"],
        "pl": ["cena", "ceny", "cenę", "cenach", "cenami", "cenowo", "cennik*", "drogo", "drogie", "za drogi",
               "za droga", "drożej", "drożyzn*", "zdzierstw*", "przepłac*", "zawyżon*"],
        "ro": ["preț", "prețul", "prețuri", "prețurile", "prețului", "prețurilor", "scump*", "costisitor*",
               "nu merită banii", "suprapreț"],
        "el": ["υψηλή τιμή", "υψηλές τιμές", "τσουχτερ*", "φουσκωμένες τιμές", "φουσκωμένη τιμή", "αισχρές τιμές",
               "αύξηση τιμής", "αύξηση της τιμής", "αύξησαν την τιμή", "λάθος τιμή", "ακριβό", "ακριβά", "ακριβός",
               "ακριβοί", "πανάκριβ*", "ακριβότερ*", "ακριβούτσικ*", "υπερτιμημέν*", "δεν αξίζει τα λεφτά",
               "δεν αξίζει τα χρήματα"],
        "lt": ["kain*", "brangu", "brangus", "brangi", "brangiai", "brangiau", "brangiausi*", "brangesn*", "brangios",
               "brangių", "permok*", "neverta pinigų", "nevertas pinigų"],
        "de": ["Preis", "Preise", "Preisen", "Preises", "Preis-Leistung*", "Preiserhöhung*", "Fahrpreis*",
               "Ticketpreis*", "teuer*", "überteuert*", "Abzocke*", "Wucher", "Wucherpreis*"],
        "fr": ["prix", "tarif", "tarifs", "trop cher", "trop chère", "trop chers", "trop chères", "hors de prix",
               "coûteux", "coûteuse*", "onéreu*", "exorbitant*"],
        "es": ["precio", "precios", "caro", "caros", "muy cara", "demasiado caro", "demasiado cara", "carísim*",
               "tarifa*", "costoso*", "abusivo*"],
        "it": ["prezzo", "prezzi", "caro", "cari", "troppo cara", "troppo care", "costoso", "costosa", "costosi",
               "costose", "conto salato", "esorbitant*", "tariff*"],
        "nl": ["prijs", "prijzen", "prijzig*", "te duur", "veel te duur", "erg duur", "duurder", "prijs-kwaliteit*",
               "overprijsd", "afzetterij"],
    },
    "waiting": {
        "en": ["waited", "waiting", "the wait", "had to wait", "have to wait", "wait time", "wait times", "delay",
               "delayed", "delays", "took forever", "takes forever", "long wait", "long line", "long lines", "queue",
               "queues", "queued", "queuing", "queueing", "slow service", "service was slow", "service is slow",
               "arrived late", "hours late", "minutes late", "days late", "weeks late", "running late"],
        "pl": ["czekam", "czekamy", "czekałem", "czekałam", "czekaliśmy", "czekałyśmy", "czekać", "czekanie",
               "czekania", "czekaniu", "czas oczekiwania", "kolejk*", "opóźni*", "spóźnił", "spóźniła", "spóźnili",
               "spóźnienie", "spóźnienia", "spóźnieniem", "spóźniony", "spóźniona", "powoln*"],
        "ro": ["timp de așteptare", "timpul de așteptare", "așteptare", "așteptarea", "așteptat o oră",
               "am așteptat o oră", "am așteptat ore", "aștept de", "așteptăm de", "la coadă", "coadă", "întârzi*",
               "servire lentă"],
        "el": ["αναμον*", "καθυστέρ*", "άργησ*", "ουρά", "ουρές", "περιμέναμε πάνω", "περιμέναμε μισή",
               "περιμέναμε μία", "περίμενα πάνω", "περίμενα μισή"],
        "lt": ["laukti", "laukiau", "laukėme", "laukėm", "laukta", "laukimo", "laukimas", "laukimą", "vėluo*",
               "vėlav*", "eilė", "eilėje", "eilės"],
        "de": ["Wartezeit*", "warten", "gewartet", "wartete*", "Warteschlange*", "Verspätung*", "verspätet*",
               "Verzögerung*", "verzögert", "zu spät", "dauert ewig", "ewig gedauert", "ewig warten"],
        "fr": ["attente", "attendre", "ai attendu", "avons attendu", "ont attendu", "retard*", "lenteur*",
               "faire la queue", "fait la queue"],
        "es": ["tiempo de espera", "la espera", "lista de espera", "esperando", "esperé", "esperamos más", "tardaron",
               "tardanza", "retraso*", "demora*", "hacer cola", "haciendo cola", "lentitud"],
        "it": ["attesa", "abbiamo aspettato", "ho aspettato", "aspettare", "ritard*", "lentezza", "in coda",
               "fare la coda"],
        "nl": ["wachten", "gewacht", "wachttijd*", "wachtrij*", "vertraging*", "vertraagd", "te laat"],
    },
    "billing": {
        "en": ["charged twice", "double charged", "double-charged", "overcharged", "overcharging", "charged me",
               "charged us", "charged my card", "invoice*", "billing", "billed", "the bill", "our bill", "my bill",
               "credit card", "debit card", "payment*", "receipt*", "subscription*", "hidden fees", "extra fees",
               "hidden charges", "service fee", "booking fee", "cancellation fee", "late fee", "auto-renew*",
               "direct debit", "unauthorized charge*", "unauthorised charge*"],
        "pl": ["fakturę", "faktury", "fakturą", "fakturze", "faktura VAT", "fakturowan*", "płatnoś*", "przelew*",
               "rachunek", "rachunku", "rachunki", "rachunkiem", "paragon*", "obciążono", "obciążyli", "obciążył*",
               "pobrano", "pobrali pieniądze", "pobrali opłatę", "opłata", "opłaty", "opłat", "opłatę", "opłatami",
               "opłatach", "dopłat*", "subskrypcj*", "abonament*", "karta kredytowa", "podwójnie pobran*",
               "dwukrotnie pobran*", "BLIK"],
        "ro": ["factur*", "plată", "plăți", "plății", "plățile", "plata cu cardul", "de pe card", "din card",
               "cardul bancar", "taxat*", "taxă", "comision*", "abonament*", "bon fiscal", "chitanț*"],
        "el": ["τιμολόγι*", "απόδειξη", "απόδειξης", "αποδείξεις", "πληρωμή", "πληρωμής", "πληρωμές", "πληρωμών",
               "χρέωσ*", "χρεώθηκ*", "χρεώνουν", "χρεώνει", "κάρτα", "κάρτας", "συνδρομή", "συνδρομής", "συνδρομές"],
        "lt": ["sąskait*", "mokėjim*", "apmokėjim*", "nuskaičiav*", "nuskaitė", "kortel*", "prenumerat*", "mokest*",
               "kvit*", "čekis", "čekio"],
        "de": ["Rechnung*", "abgebucht", "Abbuchung*", "Lastschrift*", "Zahlung*", "Gebühr", "Gebühren",
               "Kreditkarte*", "EC-Karte", "doppelt berechnet", "Quittung*", "Kassenbon", "Abo", "Abonnement*",
               "Mahnung*", "Inkasso*"],
        "fr": ["factur*", "paiement*", "prélèvement*", "prélevé*", "débité", "débitée", "débités", "carte bancaire",
               "carte bleue", "abonnement*", "ticket de caisse", "l'addition", "l’addition", "surfactur*"],
        "es": ["factur*", "cobro", "cobros", "cobrar", "cobran", "cobraron", "cobrado", "cobrarme", "cobrarnos",
               "pago", "pagos", "tarjeta", "doble cargo", "cargo indebido", "cargos", "suscripci*", "comisión",
               "comisiones"],
        "it": ["fattur*", "pagament*", "addebit*", "carta di credito", "bancomat", "scontrin*", "il conto",
               "abbonament*", "commissione", "commissioni"],
        "nl": ["factuur", "facturen", "facturatie", "gefactureerd", "betaling*", "afgeschreven", "incasso*",
               "creditcard", "pinnen", "rekening", "abonnement*", "aanmaning*", "dubbel betaald",
               "dubbel afgeschreven"],
    },
    "website": {
        "en": ["website", "web site", "webpage", "web page", "the app", "mobile app", "their app", "your app",
               "app crashes", "app crashed", "app keeps", "login", "log in", "log-in", "sign in", "password",
               "online checkout", "online ordering", "error message", "buggy", "glitch*", "crashes",
               "keeps crashing"],
        "pl": ["strona internetowa", "stronie internetowej", "strony internetowej", "stronę internetową",
               "na stronie internetowej", "na stronie sklepu", "na ich stronie", "na waszej stronie",
               "na stronie www", "aplikacj*", "logowani*", "zalogowa*", "hasło", "witryn*"],
        "ro": ["site", "site-ul", "siteul", "site-ului", "pe site", "aplicația", "aplicației", "aplicația mobilă",
               "platformă", "platforme", "platformei", "logare", "autentificare", "parolă", "pagina web"],
        "el": ["ιστοσελίδ*", "site", "app", "πλατφόρμ*", "ιστότοπ*"],
        "lt": ["svetain*", "programėl*", "prisijungim*", "nepavyksta prisijungti", "negaliu prisijungti",
               "slaptažod*", "internetinėje parduotuvėje"],
        "de": ["Webseite*", "Website*", "Homepage*", "Internetseite*", "App", "Apps", "Login", "einloggen",
               "Passwort", "Onlineshop*", "Online-Shop*", "DB Navigator"],
        "fr": ["site internet", "site web", "le site", "sur le site", "l'application", "l’application",
               "cette application", "application mobile", "appli", "mot de passe", "un bug", "des bugs", "bugue*",
               "beug*"],
        "es": ["página web", "sitio web", "la web", "la página", "aplicación", "app", "contraseña", "iniciar sesión"],
        "it": ["sito", "sito web", "app", "applicazione", "password", "login"],
        "nl": ["website", "webshop", "site", "app", "inloggen", "wachtwoord"],
    },
    "cleanliness": {
        "en": ["dirty", "filthy", "unclean", "not clean", "unhygienic", "hygiene", "cockroach*", "roach", "roaches",
               "rats", "mouse droppings", "smelly", "stank", "stinks", "stinky", "stench", "mold", "mould", "dusty",
               "stained", "stains", "grimy", "hair in my"],
        "pl": ["brud", "brudu", "brudem", "brudno", "brudny", "brudna", "brudne", "brudnych", "brudnym", "brudnej",
               "brudnymi", "brudnego", "niehigien*", "higien*", "karaluch*", "szczur*", "śmierdz*", "smród", "smrodu",
               "pleśń", "pleśni", "zaniedban*", "zakurzon*", "nieposprzątan*", "włos w"],
        "ro": ["murdar*", "mizerie", "igien*", "neigienic*", "gândaci", "gândac", "șoareci", "șobolani",
               "mirosea urât", "miros urât", "miroase urât", "miros neplăcut", "pute", "mucegai*", "nu era curat",
               "nu e curat"],
        "el": ["βρώμικ*", "βρωμιά", "βρωμιές", "βρώμα", "βρωμάει", "βρωμούσε", "λερωμέν*", "ακάθαρτ*", "κατσαρίδ*",
               "μούχλα", "άπλυτ*", "λίγδα", "λιγδιασμέν*", "έλλειψη υγιεινής", "τρίχα στο"],
        "lt": ["nešvaru", "nešvarus", "nešvari", "nešvarios", "nešvarių", "nešvarius", "nešvarumas", "nešvarumo",
               "purvin*", "higien*", "nehigien*", "tarakon*", "žiurkės", "žiurkė", "žiurkių", "smird*", "dvok*",
               "pelės", "pelėsi*", "dulkėt*", "apleist*"],
        "de": ["schmutzig*", "dreckig*", "Dreck", "verdreckt*", "Schmutz", "unhygienisch*", "Hygiene*", "Kakerlake*",
               "Ratten", "Mäuse", "stinkt", "stank", "Gestank", "Schimmel*", "verschmutzt*", "ungepflegt*",
               "unsauber*"],
        "fr": ["saleté*", "crasseu*", "crasse", "pas propre", "pas très propre", "malpropre*", "insalubr*", "hygiène",
               "cafard*", "blatte*", "rats", "moisi*", "puant*", "ça pue", "cheveu dans"],
        "es": ["sucio*", "sucia*", "suciedad", "mugr*", "falta de higiene", "poca higiene", "higiene", "cucaracha*",
               "ratas", "moho", "olía mal", "huele mal", "mal olor", "apestaba", "apesta", "no estaba limpio",
               "poco limpio"],
        "it": ["sporc*", "lurid*", "scarsa igiene", "poca igiene", "mancanza di igiene", "igiene", "scarafagg*",
               "blatte", "topi", "muffa", "puzza", "puzzava", "puzzolente", "poco pulito", "non pulito",
               "non era pulito"],
        "nl": ["vies", "vieze", "smerig*", "vuil", "vuile", "goor", "onhygiënisch*", "hygiëne", "kakkerlak*",
               "ratten", "muizen", "schimmel*", "stinkt", "stonk", "ongedierte"],
    },
}

TOPIC_TITLES: dict[str, str] = {
    "delivery": "Delivery",
    "refunds": "Refunds & returns",
    "service": "Customer service",
    "quality": "Product quality",
    "food": "Food & drink",
    "price": "Price",
    "waiting": "Waiting time",
    "billing": "Billing & payment",
    "website": "Website & app",
    "cleanliness": "Cleanliness",
}

# Reviews mix languages (an English word in a Polish review is common), so English is always checked too…
MIXED_IN = "en"
# …except English keywords that are everyday words of the review's language once accents are folded.
FALSE_FRIENDS: dict[str, frozenset[str]] = {
    "pl": frozenset({"stale"}),  # "stale" = constantly, "stałe" = constant
    "ro": frozenset({"bland"}),  # "blând" = gentle
    "fr": frozenset({"fee", "fees"}),  # "fée" = fairy
}
UNDETERMINED = ("", "und")


def topic_title(topic: str) -> str:
    """How a topic reads in an email: the built-in title, or the config's topic name made readable."""
    if topic in TOPIC_TITLES:
        return TOPIC_TITLES[topic]
    readable = " ".join(topic.replace("_", " ").split()) or topic
    return readable[:1].upper() + readable[1:]  # not .capitalize(): "DHL" stays "DHL"


def merge_topics(
    builtin: Mapping[str, Mapping[str, Sequence[str]]], configured: Mapping[str, Mapping[str, Sequence[str]]]
) -> dict[str, dict[str, list[str]]]:
    """Config over built-ins: a configured topic replaces that topic's words for the languages it lists only."""
    merged = {topic: {lang: list(words) for lang, words in by_lang.items()} for topic, by_lang in builtin.items()}
    for topic, by_lang in configured.items():
        languages = merged.setdefault(topic, {})
        for lang, words in by_lang.items():
            languages[_language(lang) or lang] = list(words)
    return merged


def _language(lang: str | None) -> str | None:
    """'pl', 'PL', 'pl-PL', 'pl_PL' → 'pl'; no language or 'und' → None (check every language)."""
    if lang is None:
        return None
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    return None if code in UNDETERMINED else code


class TopicMatcher:
    """Which complaint topics a review's text mentions, in the review's language and English."""

    def __init__(self, lexicon: Mapping[str, Mapping[str, Sequence[str]]]):
        self.lexicon = {topic: {lang: list(words) for lang, words in by_lang.items()} for topic, by_lang in lexicon.items()}
        self._compiled: dict[str | None, list[tuple[str, KeywordSet]]] = {}

    @classmethod
    def from_config(cls, config: Any | None) -> TopicMatcher:
        """Built-ins merged with config.yaml's `topics:`; None (no config) → the built-ins only."""
        configured = getattr(config, "topics", None) or {}
        return builtin_matcher() if not configured else cls(merge_topics(BUILTIN_TOPICS, configured))

    @property
    def languages(self) -> list[str]:
        return sorted({lang for by_lang in self.lexicon.values() for lang in by_lang})

    def title(self, topic: str) -> str:
        return topic_title(topic)

    def topics(self, text: str, lang: str | None) -> list[str]:
        """Topic ids found in `text`, most distinct keywords first, then by id."""
        if not text:
            return []
        hits = [(topic, len(keywords.find(text))) for topic, keywords in self._keyword_sets(_language(lang))]
        return [topic for topic, count in sorted(hits, key=lambda hit: (-hit[1], hit[0])) if count]

    def keywords_found(self, text: str, lang: str | None) -> dict[str, list[str]]:
        """Topic → the keywords that made it match: why a topic was attached."""
        found = {topic: keywords.find(text) for topic, keywords in self._keyword_sets(_language(lang))}
        return {topic: words for topic, words in found.items() if words}

    def _keyword_sets(self, lang: str | None) -> list[tuple[str, KeywordSet]]:
        compiled = self._compiled.get(lang)
        if compiled is None:
            compiled = []
            for topic, by_lang in sorted(self.lexicon.items()):
                if lang is None:
                    chosen = [word for words in by_lang.values() for word in words]
                else:
                    skip = FALSE_FRIENDS.get(lang, frozenset()) if lang != MIXED_IN else frozenset()
                    mixed_in = [word for word in by_lang.get(MIXED_IN, []) if word not in skip]
                    chosen = by_lang.get(lang, []) + mixed_in
                words = list(dict.fromkeys(chosen))
                keywords = KeywordSet(words)
                if keywords:
                    compiled.append((topic, keywords))
            self._compiled[lang] = compiled
        return compiled


@cache
def builtin_matcher() -> TopicMatcher:
    """One shared matcher over the built-in lexicon (compiled lazily, once per language)."""
    return TopicMatcher(BUILTIN_TOPICS)
