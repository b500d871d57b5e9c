import random

from django.core.management.base import BaseCommand
from django.db import transaction

from messaging.consent import ConsentContext, subscribe
from messaging.contacts import create_contact
from messaging.demo import demo_loaders
from messaging.models import Channel, ConsentRecord, Contact, Topic
from messaging.site import load_settings, update_site_settings

TOPICS = [
    ("newsletter", "Newsletter", "Monthly news and stories.", Topic.Kind.MARKETING),
    ("product-news", "Product news", "New features and releases.", Topic.Kind.MARKETING),
    ("promotions", "Promotions", "Offers and discounts.", Topic.Kind.MARKETING),
    ("reminders", "Reminders", "Appointment and lesson reminders.", Topic.Kind.MARKETING),
    ("progress-reports", "Progress reports", "Your weekly progress digest.", Topic.Kind.MARKETING),
    ("account", "Account and orders", "Receipts, password resets, shipping.", Topic.Kind.TRANSACTIONAL),
]
# What French-speaking contacts read on the preference center and unsubscribe pages.
TOPICS_FR = {
    "newsletter": ("Lettre d'information", "Nos actualités et nos histoires, chaque mois."),
    "product-news": ("Nouveautés produit", "Nouvelles fonctionnalités et versions."),
    "promotions": ("Promotions", "Offres et réductions."),
    "reminders": ("Rappels", "Rappels de rendez-vous et de cours."),
    "progress-reports": ("Bilans de progression", "Votre bilan hebdomadaire de progression."),
    "account": ("Compte et commandes", "Reçus, réinitialisations de mot de passe, livraisons."),
}
FIRST = [
    "Alice",
    "Bruno",
    "Chloé",
    "David",
    "Emma",
    "Farid",
    "Gabrielle",
    "Hugo",
    "Inès",
    "Jules",
    "Karim",
    "Léa",
    "Marc",
    "Nina",
    "Olivier",
    "Paul",
    "Quentin",
    "Rose",
    "Sami",
    "Théo",
    "Ursula",
    "Victor",
    "Wendy",
    "Yasmine",
]
LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Smith",
    "Johnson",
    "Moreau",
    "Laurent",
    "Brown",
    "Garcia",
    "Lefèvre",
    "Miller",
    "Roux",
    "Fournier",
    "Davis",
    "Girard",
    "Wilson",
]
PLACES = [("fr", "Europe/Paris", "+3361234"), ("en", "America/New_York", "+1212555")]
# The demo sender: with a postal address, a fresh install sends marketing mail to the
# sandbox at once (Settings → Sending changes it; fields already filled in are kept).
DEMO_SENDER = {
    "sender_name": "Mailroom Demo",
    "from_email": "hello@demo.mailroom.test",
    "postal_address": "Mailroom Demo SAS\n1 rue de la Poste\n75001 Paris, France",
}
STAGES = ["lead", "trial", "customer", "customer", "churned"]
TAGS = ["vip", "beta", "newsletter-2025", "webinar", "mobile"]


class Command(BaseCommand):
    help = (
        "Load demo contacts, topics and consents, then the higher apps' demo data (segments, the welcome "
        "automation, loyalty and referral programs). Safe to run again: nothing is duplicated."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--contacts", type=int, default=300)

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        rng = random.Random(42)  # the same demo data on every machine
        topics = []
        for position, (key, name, description, kind) in enumerate(TOPICS):
            topic, _created = Topic.objects.get_or_create(
                key=key,
                defaults={
                    "name": name,
                    "description": description,
                    "kind": kind,
                    "position": position,
                    "time_sensitive": key == "reminders",
                    "translations": {"fr": dict(zip(("name", "description"), TOPICS_FR[key], strict=True))},
                },
            )
            if not topic.translations:  # a topic seeded before topics had translations
                topic.translations = {"fr": dict(zip(("name", "description"), TOPICS_FR[key], strict=True))}
                topic.save(update_fields=["translations"])
            topics.append(topic)
        marketing = [t for t in topics if t.kind == Topic.Kind.MARKETING]
        existing = set(Contact.objects.filter(email__endswith="@demo.mailroom.test").values_list("email", flat=True))
        created = 0
        signup = ConsentContext(source=ConsentRecord.Source.SIGNUP, ip_address="127.0.0.1", wording_version="demo-v1")
        for n in range(1, options["contacts"] + 1):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            locale, zone, prefix = PLACES[n % 2]
            picks = rng.sample(marketing, rng.randint(0, 3))
            stage, tags, orders = rng.choice(STAGES), rng.sample(TAGS, rng.randint(0, 2)), rng.randint(0, 12)
            email = f"demo{n:04d}@demo.mailroom.test"
            if email in existing:
                continue
            contact = create_contact(
                actor=None,
                email=email,
                phone=f"{prefix}{n:04d}",
                first_name=first,
                last_name=last,
                locale=locale,
                timezone=zone,
                attributes={"lifecycle_stage": stage, "tags": tags, "order_count": orders, "ltv": orders * 37},
            )
            for topic in picks:
                subscribe(actor=None, contact=contact, topic=topic, channel=Channel.EMAIL, context=signup)
            if n % 3 == 0:
                subscribe(actor=None, contact=contact, topic=marketing[3], channel=Channel.SMS, context=signup)
            created += 1
        saved = load_settings()
        if missing := {name: value for name, value in DEMO_SENDER.items() if not getattr(saved, name)}:
            update_site_settings(actor=None, values=missing)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {created} contacts added, {len(existing)} already there."))
        for loader in demo_loaders():
            self.stdout.write(loader())
