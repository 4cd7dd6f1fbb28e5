"""The built-in suite's world: one supervisor, her contacts, and their app data.

The world is first drawn as plain Python data from a seeded ``random.Random`` (so templates can
read it without a database), then written into AppWorld's own app databases through the
package's models (``Model.create_save``), which is what makes the real engine able to run it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# Every task of the suite happens at this instant. AppWorld freezes the clock at the task's
# datetime, so a login writes exactly this value into ``last_logged_in``; giving every account
# this value up front keeps a login from counting as a database change in collateral checks.
WORLD_DATETIME = datetime(2023, 5, 18, 12, 0, 0)

# The apps that hold data (and accounts) in this world.
APPS = ("spotify", "venmo", "simple_note", "todoist", "file_system", "phone")
# Apps whose data only the challenge split's tasks carry: base_dbs, which every train/dev/test
# task shares, leaves them empty (see ``populate_challenge``).
CHALLENGE_APPS = ("gmail", "splitwise", "amazon")

FIRST_NAMES_F = [
    "Alice", "Brenda", "Chloe", "Diana", "Elena", "Fiona", "Grace", "Hannah", "Isabel", "Julia",
    "Kara", "Laura", "Maya", "Nora", "Olivia", "Paula", "Quinn", "Rosa", "Sofia", "Tara",
]
FIRST_NAMES_M = [
    "Adam", "Brian", "Carlos", "Daniel", "Ethan", "Felix", "George", "Henry", "Ivan", "Jacob",
    "Kevin", "Liam", "Marcus", "Nathan", "Oscar", "Peter", "Rafael", "Samuel", "Thomas", "Victor",
]
LAST_NAMES = [
    "Anderson", "Brooks", "Castillo", "Dawson", "Ellis", "Fischer", "Garcia", "Hughes", "Ibarra",
    "Jensen", "Keller", "Lambert", "Morales", "Nguyen", "Owens", "Patel", "Quintero", "Ramirez",
    "Sullivan", "Turner", "Underwood", "Vargas", "Walsh", "Young", "Zimmerman",
]
RELATIONSHIPS = ["friend", "coworker", "sibling", "roommate", "manager", "cousin"]

GENRES = ["pop", "rock", "jazz", "hip-hop", "electronic", "indie", "country", "classical"]
ARTIST_NAMES = [
    "The Velvet Tides", "Nova Sinclair", "Echo Harbor", "Marlowe Grant", "Crimson Lanterns",
    "Juniper Vale", "Static Orchard", "Luna Castell", "The Paper Kites Club", "Orion Blake",
    "Silver Meridian", "Ada Monroe",
]
SONG_WORDS_A = [
    "Midnight", "Golden", "Electric", "Silent", "Broken", "Neon", "Wild", "Paper", "Velvet",
    "Crystal", "Summer", "Hollow", "Distant", "Burning", "Quiet", "Falling",
]
SONG_WORDS_B = [
    "Skies", "Roads", "Hearts", "Rivers", "Lights", "Dreams", "Echoes", "Waves", "Shadows",
    "Promises", "Horizons", "Mornings", "Streets", "Letters",
]
PLAYLIST_TITLES = [
    "Morning Run", "Late Night Drive", "Focus Flow", "Sunday Chill", "Party Starters",
    "Rainy Day",
]
NOTE_TAGS = ["personal", "work", "shopping", "ideas", "travel", "health"]
LIST_NOTES = {
    "Grocery List": ("shopping", ["milk", "eggs", "spinach", "bread", "coffee beans", "apples",
                                  "rice", "olive oil"]),
    "Packing List": ("travel", ["passport", "charger", "sunscreen", "toothbrush", "hat",
                                "sandals", "headphones"]),
    "Books To Read": ("personal", ["Dune", "Educated", "Circe", "Beloved", "Atomic Habits",
                                   "The Overstory"]),
    "Weekend Chores": ("personal", ["vacuum living room", "water plants", "laundry",
                                    "clean fridge", "take out recycling"]),
    "Gift Ideas": ("ideas", ["scarf", "board game", "coffee mug", "plant", "cookbook"]),
    "Team Meeting Agenda": ("work", ["budget review", "hiring plan", "roadmap update",
                                     "customer feedback", "retro actions"]),
}
PROSE_NOTES = {
    "Workout Plan": ("health", "Monday: legs. Wednesday: upper body. Friday: 5k run."),
    "Wifi Password": ("personal", "Home network password is sunflower-42."),
    "Startup Idea": ("ideas", "An app that plans weekly meals from what is in the fridge."),
    "Quarterly Goals": ("work", "Ship the billing redesign and cut support tickets by 20%."),
    "Trip to Lisbon": ("travel", "Flights booked for June 12. Visit Belem and Sintra."),
    "Doctor Notes": ("health", "Annual checkup on June 3 at 9am. Bring insurance card."),
}
TODO_PROJECTS = {
    "Home Renovation": ["paint bedroom", "fix leaking tap", "order new curtains",
                        "replace hallway bulbs", "sand the deck", "call the electrician"],
    "Work": ["prepare quarterly report", "review pull requests", "update onboarding docs",
             "schedule team offsite", "reply to vendor emails", "plan sprint demo"],
    "Personal": ["renew passport", "book dentist appointment", "pay electricity bill",
                 "return library books", "call grandma", "cancel old gym membership"],
    "Garden": ["buy tomato seedlings", "prune roses", "repair fence", "mulch flower beds",
               "set up compost bin"],
}
DIRECTORIES = ["documents", "photos", "music", "work", "recipes"]
FILE_STEMS = {
    "documents": ["resume", "lease_agreement", "tax_notes", "insurance", "car_service"],
    "photos": ["beach_day", "birthday_party", "hiking_trip", "graduation"],
    "music": ["setlist", "guitar_chords", "lyrics_draft"],
    "work": ["meeting_minutes", "project_plan", "budget_2023", "status_update"],
    "recipes": ["pancakes", "lasagna", "guacamole", "banana_bread"],
}
ALARM_LABELS = ["Wake up", "Gym", "Take medicine", "Team standup", "Pick up kids", "Bedtime",
                "Water plants"]
TEXT_SNIPPETS = [
    "Are we still on for dinner tonight?", "Can you send me the notes from today?",
    "Happy birthday! Hope you have a great one.", "Running 10 minutes late, sorry!",
    "Did you see the game last night?", "Thanks for your help yesterday.",
    "Let's catch up this weekend.", "I left my keys at your place.",
]
VENMO_MEMOS = ["dinner", "concert tickets", "groceries", "rent share", "taxi", "movie night",
               "birthday gift", "coffee", "utilities", "brunch"]

# Challenge apps' data.
EMAIL_TOPICS = [
    ("Weekend hiking plans", "Are you free on Saturday? I was thinking of the ridge trail, "
                             "leaving at 8am."),
    ("Book recommendation", "You have to read The Left Hand of Darkness. I finished it in two "
                            "days."),
    ("Dinner on Friday", "We booked a table at Osteria Nonna for 7:30. Let me know if you can "
                         "make it."),
    ("Photos from the wedding", "I finally sorted the photos from the wedding. There are 212 of "
                                "them, mostly of the dance floor."),
    ("Moving boxes", "I have about twenty spare moving boxes if you still need them for the move."),
    ("Jazz night", "I got two tickets for the jazz night at the Blue Room on June 2."),
    ("Lemon tart recipe", "Shortcrust base, lemon curd on top, then bake for 25 minutes at 180C."),
    ("Borrowed drill", "Thanks for lending me the drill. I will drop it off on Tuesday evening."),
    ("Marathon training", "I signed up for the October marathon. Want to join the Sunday long "
                          "runs?"),
    ("Quarterly report draft", "The draft of the quarterly report is ready for your review "
                               "before Thursday."),
    ("Garden party", "We are hosting a garden party on May 27. Bring a dish if you can."),
    ("Camping gear", "Do you still have the four-person tent? We need it for the lake trip."),
    ("Job referral", "My team is hiring a product designer. Would you like me to refer someone?"),
    ("Board game night", "Board game night is at my place next Wednesday. I will bring Catan."),
    ("Spanish lessons", "The Spanish class starts on June 5, every Monday at 6pm at the library."),
    ("Car pool schedule", "I can drive on Mondays and Thursdays if you take Tuesdays and Fridays."),
    ("Surprise party", "We are planning a surprise party for our neighbour on the 30th. Keep it "
                       "quiet!"),
    ("Old laptop", "I am selling my old laptop for 200 dollars if you know anyone interested."),
]
SENT_TOPICS = [("Checking in", "How have you been? It has been a while."),
               ("Quick question", "Do you still have the number of that plumber?"),
               ("Thank you", "Thanks again for dinner last week, it was lovely.")]
GROUPS = {  # name: (description, expenses, receipts still to record)
    "Lisbon Trip": ("Flights, food and fun in Portugal.",
                    ["hotel deposit", "airport taxi", "seafood dinner", "tram passes",
                     "museum tickets", "rental car", "wine tasting", "beach umbrellas"],
                    ["sunset boat tour", "fado show tickets", "train to Sintra"]),
    "Apartment 4B": ("Rent, utilities and groceries.",
                     ["internet bill", "electricity bill", "cleaning supplies", "groceries",
                      "water bill", "new shower curtain", "toilet paper", "light bulbs"],
                     ["vacuum cleaner", "plant pots", "dish rack"]),
    "Book Club": ("Books and snacks for our monthly meetups.",
                  ["snacks and wine", "book order", "room booking", "coffee and cake",
                   "tea and biscuits", "second book order", "name tags"],
                  ["author talk tickets", "pizza delivery", "bookshelf"]),
    "Ski Weekend": ("Cabin, lift passes and gas.",
                    ["cabin rental", "lift passes", "gas", "ski rental", "fondue dinner",
                     "firewood", "parking", "hot chocolate"],
                    ["snow chains", "hot tub rental", "breakfast supplies"]),
}
SELLERS = ["Northwind Goods", "Brightside Supply", "Cedar & Co", "Urban Nest", "Peak Outfitters",
           "Blue Harbor Trading"]
PRODUCTS = {  # product type: names (one product each)
    "backpack": ["Trail Backpack", "Commuter Backpack", "Roll-Top Backpack", "Laptop Backpack",
                 "Daypack Backpack"],
    "water bottle": ["Steel Water Bottle", "Insulated Water Bottle", "Glass Water Bottle",
                     "Sport Water Bottle", "Collapsible Water Bottle"],
    "desk lamp": ["LED Desk Lamp", "Swing Arm Desk Lamp", "Clip-On Desk Lamp", "Banker Desk Lamp",
                  "Wireless Charging Desk Lamp"],
    "yoga mat": ["Cork Yoga Mat", "Travel Yoga Mat", "Extra Thick Yoga Mat", "Jute Yoga Mat",
                 "Printed Yoga Mat"],
    "coffee maker": ["Pour Over Coffee Maker", "Drip Coffee Maker", "French Press Coffee Maker",
                     "Cold Brew Coffee Maker", "Single Serve Coffee Maker"],
    "umbrella": ["Compact Umbrella", "Golf Umbrella", "Clear Dome Umbrella", "Wind Proof Umbrella",
                 "Auto Open Umbrella"],
}
COLORS = ["black", "blue", "green", "grey", "red", "white"]
SIZES = ["small", "medium", "large"]


@dataclass
class Person:
    first_name: str
    last_name: str
    email: str
    phone_number: str
    birthday: str
    sex: str
    relationship: str = ""
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class World:
    """Plain data of the whole world; templates read it, ``populate`` writes it."""

    seed: int
    supervisor: Person
    people: list[Person]
    artists: list[dict[str, Any]]
    songs: list[dict[str, Any]]
    playlists: list[dict[str, Any]]
    library_song_ids: list[int]
    notes: list[dict[str, Any]]
    projects: list[dict[str, Any]]
    files: list[dict[str, Any]]
    alarms: list[dict[str, Any]]
    texts: list[dict[str, Any]]
    transactions: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    # Challenge apps (CHALLENGE_APPS), drawn from a separate stream so the rest stays as it was.
    emails: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    sellers: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    wish_list: list[int] = field(default_factory=list)  # product ids

    def person(self, email: str) -> Person:
        return next(p for p in self.people if p.email == email)

    def song(self, song_id: int) -> dict[str, Any]:
        return self.songs[song_id - 1]

    def artist(self, artist_id: int) -> dict[str, Any]:
        return self.artists[artist_id - 1]

    @property
    def home(self) -> str:
        return f"/home/{self.supervisor.first_name.lower()}/"


def _password(rng: random.Random) -> str:
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(rng.choice(alphabet) for _ in range(12))


def _phone(rng: random.Random, used: set[str]) -> str:
    while True:
        number = f"{rng.randint(201, 989)}{rng.randint(200, 999)}{rng.randint(1000, 9999)}"
        if number not in used:
            used.add(number)
            return number


def _past(rng: random.Random, max_days: int = 365) -> datetime:
    # Whole seconds only: AppWorld stores datetimes at second resolution.
    return WORLD_DATETIME - timedelta(seconds=rng.randint(3600, max_days * 86400))


def make_world(seed: int = 0, num_people: int = 24) -> World:
    """Draw the whole world from ``seed``; the same seed always gives the same world."""
    rng = random.Random(f"idagym-world-{seed}")
    phones: set[str] = set()
    firsts = rng.sample(FIRST_NAMES_F, 10) + rng.sample(FIRST_NAMES_M, 10)
    firsts += rng.sample([n for n in FIRST_NAMES_F + FIRST_NAMES_M if n not in firsts],
                         num_people + 1 - len(firsts))
    rng.shuffle(firsts)
    lasts = rng.sample(LAST_NAMES, num_people + 1)

    def new_person(first: str, last: str) -> Person:
        sex = "female" if first in FIRST_NAMES_F else "male"
        birthday = f"{rng.randint(1965, 2001)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        return Person(first, last, f"{first.lower()}.{last.lower()}@gmail.com",
                      _phone(rng, phones), birthday, sex)

    supervisor = new_person(firsts[0], lasts[0])
    supervisor.passwords = {app: _password(rng) for app in APPS}
    people = [new_person(first, last) for first, last in zip(firsts[1:], lasts[1:], strict=True)]
    for i, person in enumerate(people):
        person.relationship = RELATIONSHIPS[i % len(RELATIONSHIPS)]
        person.passwords = {app: _password(rng) for app in APPS}

    # Spotify: a shared catalogue plus the supervisor's playlists and library.
    artists = [{"id": i + 1, "name": n, "genre": rng.choice(GENRES)}
               for i, n in enumerate(ARTIST_NAMES)]
    titles = [f"{a} {b}" for a in SONG_WORDS_A for b in SONG_WORDS_B]
    rng.shuffle(titles)
    songs = []
    for i, title in enumerate(titles[:72]):
        artist = artists[i % len(artists)]
        songs.append({"id": i + 1, "title": title, "artist_id": artist["id"],
                      "genre": artist["genre"], "duration": rng.randint(130, 330) + i % 7,
                      "release_date": _past(rng, 3000), "play_count": rng.randint(0, 50000)})
    playlists = []
    for i, title in enumerate(PLAYLIST_TITLES):
        song_ids = rng.sample(range(1, len(songs) + 1), rng.randint(5, 11))
        playlists.append({"id": i + 1, "title": title, "song_ids": song_ids,
                          "is_public": rng.random() < 0.5})
    library_song_ids = sorted(rng.sample(range(1, len(songs) + 1), 30))

    # Simple Note: list notes (one item a line) and prose notes.
    notes = []
    for title, (tag, items) in LIST_NOTES.items():
        chosen = rng.sample(items, rng.randint(3, len(items)))
        notes.append({"title": title, "content": "\n".join(f"- {x}" for x in chosen),
                      "items": chosen, "tags": [tag], "pinned": False})
    for title, (tag, text) in PROSE_NOTES.items():
        notes.append({"title": title, "content": text, "items": [], "tags": [tag],
                      "pinned": rng.random() < 0.3})
    # A note listing songs (for the note -> playlist template).
    mix = rng.sample(songs, 4)
    notes.append({"title": "Songs For The Road Trip",
                  "content": "\n".join(f"- {s['title']}" for s in mix),
                  "items": [s["title"] for s in mix], "tags": ["travel"], "pinned": False})
    # A note listing what the supervisor owes (for the note -> venmo template).
    debtors = rng.sample(people, 3)
    owed = [(p, rng.randint(8, 60)) for p in debtors]
    notes.append({"title": "Money I Owe",
                  "content": "\n".join(f"- {p.name}: ${a}" for p, a in owed),
                  "items": [f"{p.email}|{a}" for p, a in owed], "tags": ["personal"],
                  "pinned": False})
    for i, note in enumerate(notes):
        note["id"] = i + 1
        note["created_at"] = _past(rng, 200)

    # Todoist: projects with tasks of mixed priority and completion.
    projects = []
    task_id = 0
    for i, (name, titles_) in enumerate(TODO_PROJECTS.items()):
        tasks = []
        for order, title in enumerate(titles_):
            task_id += 1
            tasks.append({"id": task_id, "title": title, "order_index": order,
                          "priority": rng.choice(["low", "medium", "medium", "high"]),
                          "is_completed": rng.random() < 0.3})
        # Exactly one open high-priority task per project keeps "most urgent" questions unique.
        for t in tasks:
            if t["priority"] == "high":
                t["priority"] = "medium"
        open_tasks = [t for t in tasks if not t["is_completed"]]
        rng.choice(open_tasks)["priority"] = "high"
        projects.append({"id": i + 1, "name": name, "tasks": tasks})

    # File system: a few directories of text files under the supervisor's home.
    files = []
    for directory in DIRECTORIES:
        for stem in rng.sample(FILE_STEMS[directory], rng.randint(2, len(FILE_STEMS[directory]))):
            lines = [f"{stem.replace('_', ' ')} line {k + 1}" for k in range(rng.randint(2, 9))]
            files.append({"directory": directory, "name": f"{stem}.txt",
                          "content": "\n".join(lines), "num_lines": len(lines)})

    # Phone: alarms and text messages with contacts.
    alarms = []
    for i, label in enumerate(rng.sample(ALARM_LABELS, 6)):
        alarms.append({"id": i + 1, "label": label,
                       "time": f"{rng.randint(5, 22):02d}:{rng.choice([0, 15, 30, 45]):02d}",
                       "enabled": rng.random() < 0.6})
    texts = []
    for _ in range(30):
        other = rng.choice(people)
        texts.append({"other": other.email, "incoming": rng.random() < 0.5,
                      "message": rng.choice(TEXT_SNIPPETS), "created_at": _past(rng, 60)})
    texts.sort(key=lambda t: t["created_at"])

    # Venmo: payments and requests between the supervisor and her contacts.
    transactions = []
    for _ in range(40):
        other = rng.choice(people)
        transactions.append({"other": other.email, "outgoing": rng.random() < 0.6,
                             "amount": float(rng.randint(5, 120)),
                             "description": rng.choice(VENMO_MEMOS),
                             "created_at": _past(rng, 300)})
    requests = []
    for _ in range(10):
        other = rng.choice(people)
        requests.append({"other": other.email, "amount": float(rng.randint(10, 80)),
                         "description": rng.choice(VENMO_MEMOS), "created_at": _past(rng, 30),
                         "approved": rng.random() < 0.3})
    world = World(seed, supervisor, people, artists, songs, playlists, library_song_ids, notes,
                  projects, files, alarms, texts, transactions, requests)
    _draw_challenge(world)
    return world


def _cents(rng: random.Random, low: int, high: int) -> float:
    return rng.randint(low * 100, high * 100) / 100


def _draw_challenge(w: World) -> None:
    """Add the challenge apps' data to ``w``, from a random stream of its own."""
    rng = random.Random(f"idagym-world-{w.seed}-challenge")
    sup = w.supervisor
    for p in [sup, *w.people]:
        p.passwords.update({app: _password(rng) for app in CHALLENGE_APPS})

    # Splitwise: groups of the supervisor and four contacts; every expense is split equally
    # among all members, and every member but the supervisor paid at least one.
    for name, (description, expenses, receipts) in GROUPS.items():
        members = rng.sample(w.people, 4)
        payers = [*members, sup, *(rng.choice([sup, *members]) for _ in expenses)]
        group = {"name": name, "description": description,
                 "members": [sup.email, *(m.email for m in members)], "expenses": [],
                 "receipts": []}
        for desc, payer in zip(expenses, payers, strict=False):
            group["expenses"].append({"description": desc, "payer": payer.email,
                                      "amount": _cents(rng, 15, 400),
                                      "created_at": _past(rng, 90)})
        for desc, sender in zip(receipts, rng.sample(members, len(receipts)), strict=True):
            group["receipts"].append({"description": desc, "payer": sender.email,
                                      "amount": _cents(rng, 20, 300)})
        w.groups.append(group)

    # Gmail: letters from contacts, receipts still to record in Splitwise, a few sent emails.
    senders = rng.sample(w.people, 12)
    for k, (subject, text) in enumerate(EMAIL_TOPICS):
        sender = senders[k] if k < len(senders) else rng.choice(senders)
        w.emails.append({"sender": sender.email, "recipients": [sup.email], "subject": subject,
                         "body": f"Hi {sup.first_name},\n\n{text}\n\n{sender.first_name}"})
    for group in w.groups:
        for r in group["receipts"]:
            payer = w.person(r["payer"])
            w.emails.append({
                "sender": payer.email, "recipients": [sup.email],
                "subject": f"Receipt: {r['description']}",
                "body": f"Hi {sup.first_name},\n\nI paid for the {r['description']} "
                        f"({group['name']}).\nTotal: ${r['amount']:.2f}\n\n"
                        f"Could you put it on Splitwise?\n{payer.first_name}"})
    for subject, text in SENT_TOPICS:
        other = rng.choice(w.people)
        w.emails.append({"sender": sup.email, "recipients": [other.email], "subject": subject,
                         "body": f"Hi {other.first_name},\n\n{text}\n\n{sup.first_name}"})
    times = sorted({_past(rng, 120) for _ in range(3 * len(w.emails))}, reverse=True)
    for email, when in zip(w.emails, rng.sample(times, len(w.emails)), strict=True):
        email["created_at"] = when  # distinct: "the latest email" is always one email

    # Amazon: sellers, products of a few types with a unique cheapest each, a wish list.
    w.sellers = [{"id": i + 1, "name": n} for i, n in enumerate(SELLERS)]
    for product_type, names in PRODUCTS.items():
        prices = rng.sample(range(899, 15000, 7), len(names))
        for name, price in zip(names, prices, strict=True):
            w.products.append({
                "id": len(w.products) + 1, "product_type": product_type, "name": name,
                "seller_id": rng.choice(w.sellers)["id"], "price": price / 100,
                "rating": rng.randint(30, 50) / 10, "color": rng.choice(COLORS),
                "relative_size": rng.choice(SIZES), "delivery_days": rng.randint(1, 7),
                "inventory_quantity": rng.randint(20, 100)})
    for seller in w.sellers:
        ratings = [p["rating"] for p in w.products if p["seller_id"] == seller["id"]]
        seller["rating"] = round(sum(ratings) / len(ratings), 1) if ratings else 0.0
    w.wish_list = sorted(rng.sample([p["id"] for p in w.products], 6))


def populate(world: World, models: Any) -> None:
    """Write ``world`` into an empty ``ModelCollection`` (all apps loaded)."""
    now = WORLD_DATETIME
    sup = world.supervisor
    everyone = [sup, *world.people]

    # admin: the people of the world; evaluation looks the supervisor up here.
    for p in everyone:
        models.admin.MainUser.create_save(first_name=p.first_name, last_name=p.last_name,
                                          email=p.email, phone_number=p.phone_number,
                                          birthday=p.birthday, sex=p.sex)
    # supervisor: profile, account passwords, address and card.
    s = models.supervisor.Supervisor.create_save(
        first_name=sup.first_name, last_name=sup.last_name, email=sup.email,
        phone_number=sup.phone_number, birthday=sup.birthday, sex=sup.sex)
    for app in APPS:
        models.supervisor.AccountPassword.create_save(supervisor_id=s.id, account_name=app,
                                                      password=sup.passwords[app])
    models.supervisor.Address.create_save(supervisor_id=s.id, name="Home",
                                          street_address="12 Maple Street", city="Seattle",
                                          state="Washington", country="United States",
                                          zip_code=98101)

    def account(app: str, p: Person, **extra: Any) -> Any:
        login = {"phone_number": p.phone_number} if app == "phone" else {"email": p.email}
        fields = {"first_name": p.first_name, "last_name": p.last_name,
                  "password": p.passwords[app], "created_at": now - timedelta(days=400),
                  "last_logged_in": now, **login, **extra}
        if app != "phone":
            fields["verified"] = True
        return getattr(models, app).User.create_save(**fields)

    users = {app: {p.email: account(app, p) for p in everyone} for app in APPS}
    me = {app: users[app][sup.email] for app in APPS}

    # spotify
    sp = models.spotify
    for a in world.artists:
        sp.Artist.create_save(name=a["name"], genre=a["genre"], created_at=now - timedelta(days=900))
    for song in world.songs:
        sp.Song.create_save(title=song["title"], artist_ids=[song["artist_id"]],
                            duration=song["duration"], release_date=song["release_date"],
                            genre=song["genre"], play_count=song["play_count"])
    for pl in world.playlists:
        row = sp.Playlist.create_save(title=pl["title"], user_id=me["spotify"].id,
                                      is_public=pl["is_public"],
                                      created_at=now - timedelta(days=100))
        for k, song_id in enumerate(pl["song_ids"]):
            sp.PlaylistSong.create_save(playlist_id=row.id, song_id=song_id,
                                        added_at=now - timedelta(days=90 - k))
    for k, song_id in enumerate(world.library_song_ids):
        sp.UserLibrarySong.create_save(user_id=me["spotify"].id, song_id=song_id,
                                       created_at=now - timedelta(days=80 - k))
    sp.MusicPlayer.create_save(user_id=me["spotify"].id)

    # simple_note
    for note in world.notes:
        models.simple_note.Note.create_save(user_id=me["simple_note"].id, title=note["title"],
                                            content=note["content"], tags=note["tags"],
                                            pinned=note["pinned"], created_at=note["created_at"],
                                            updated_at=note["created_at"])

    # todoist
    td = models.todoist
    # A project is listed to the users linked to it as collaborators, the owner included.
    inbox = td.Project.create_save(user_id=me["todoist"].id, name="Inbox", is_inbox=True,
                                   created_at=now - timedelta(days=400))
    td.ProjectCollaboratorLink.create_save(project_id=inbox.id, user_id=me["todoist"].id)
    for pr in world.projects:
        row = td.Project.create_save(user_id=me["todoist"].id, name=pr["name"],
                                     created_at=now - timedelta(days=60))
        td.ProjectCollaboratorLink.create_save(project_id=row.id, user_id=me["todoist"].id)
        pr["db_id"] = row.id
        for t in pr["tasks"]:
            trow = td.Task.create_save(project_id=row.id, user_id=me["todoist"].id,
                                       title=t["title"], priority=t["priority"],
                                       order_index=t["order_index"],
                                       is_completed=t["is_completed"],
                                       created_at=now - timedelta(days=30))
            t["db_id"] = trow.id

    # file_system: home, sub-directories, files.
    fs = models.file_system
    for p in everyone:
        fs.Directory.create_save(path=f"/home/{p.first_name.lower()}/",
                                 user_id=users["file_system"][p.email].id,
                                 created_at=now - timedelta(days=400),
                                 updated_at=now - timedelta(days=400))
    for directory in DIRECTORIES:
        fs.Directory.create_save(path=f"{world.home}{directory}/", user_id=me["file_system"].id,
                                 created_at=now - timedelta(days=300),
                                 updated_at=now - timedelta(days=300))
    for f in world.files:
        fs.File.create_save(path=f"{world.home}{f['directory']}/{f['name']}",
                            user_id=me["file_system"].id, content=f["content"],
                            created_at=now - timedelta(days=50),
                            updated_at=now - timedelta(days=50))

    # phone: contacts with relationships, alarms, text messages.
    ph = models.phone
    for p in world.people:
        ph.Contact.create_save(user_id=me["phone"].id, first_name=p.first_name,
                               last_name=p.last_name, email=p.email, phone_number=p.phone_number,
                               relationships=[p.relationship], birthday=p.birthday,
                               created_at=now - timedelta(days=200))
    for alarm in world.alarms:
        ph.Alarm.create_save(user_id=me["phone"].id, time=alarm["time"], label=alarm["label"],
                             enabled=alarm["enabled"], repeat_days=["monday", "wednesday"],
                             created_at=now - timedelta(days=100))
    for text in world.texts:
        other = users["phone"][text["other"]]
        sender, receiver = (other, me["phone"]) if text["incoming"] else (me["phone"], other)
        msg = ph.GlobalTextMessage.create_save(sender_id=sender.id, receiver_id=receiver.id,
                                               message=text["message"],
                                               created_at=text["created_at"])
        for owner in (sender, receiver):
            ph.UserTextMessage.create_save(global_text_message_id=msg.id, user_id=owner.id,
                                           created_at=text["created_at"])

    # venmo: friendships, payments, requests; a balance large enough for every task.
    vm = models.venmo
    me["venmo"].venmo_balance = 5000.0
    me["venmo"].save()
    for p in world.people:
        vm.Friendship.create_save(user_id=me["venmo"].id, friend_id=users["venmo"][p.email].id,
                                  created_at=now - timedelta(days=300))
    for tx in world.transactions:
        other = users["venmo"][tx["other"]]
        sender, receiver = (me["venmo"], other) if tx["outgoing"] else (other, me["venmo"])
        vm.Transaction.create_save(sender_id=sender.id, receiver_id=receiver.id,
                                   amount=tx["amount"], description=tx["description"],
                                   created_at=tx["created_at"], updated_at=tx["created_at"])
    for rq in world.requests:
        other = users["venmo"][rq["other"]]
        vm.PaymentRequest.create_save(sender_id=other.id, receiver_id=me["venmo"].id,
                                      amount=rq["amount"], description=rq["description"],
                                      created_at=rq["created_at"], updated_at=rq["created_at"],
                                      approved_at=rq["created_at"] if rq["approved"] else None)


def populate_challenge(world: World, models: Any) -> None:
    """Write the challenge apps' data of ``world`` into ``models`` (which hold base_dbs)."""
    now = WORLD_DATETIME
    sup = world.supervisor
    everyone = [sup, *world.people]
    s = models.supervisor.Supervisor.first()
    for app in CHALLENGE_APPS:
        models.supervisor.AccountPassword.create_save(supervisor_id=s.id, account_name=app,
                                                      password=sup.passwords[app])

    def account(app: str, p: Person) -> Any:
        extra = {} if app == "gmail" else {"verified": True}  # gmail has no verification
        return getattr(models, app).User.create_save(
            first_name=p.first_name, last_name=p.last_name, email=p.email,
            password=p.passwords[app], created_at=now - timedelta(days=400),
            last_logged_in=now, **extra)

    users = {app: {p.email: account(app, p) for p in everyone} for app in CHALLENGE_APPS}

    # gmail: one thread per email, seen by the sender (read) and each recipient.
    gm = models.gmail
    for e in world.emails:
        sender = users["gmail"][e["sender"]]
        recipients = [users["gmail"][r] for r in e["recipients"]]
        email = gm.Email.create_save(sender_id=sender.id, recipient_ids=[r.id for r in recipients],
                                     subject=e["subject"], body=e["body"],
                                     created_at=e["created_at"])
        thread = gm.GlobalEmailThread.create_save(email_ids=[email.id], created_at=e["created_at"],
                                                  updated_at=e["created_at"])
        for user, incoming in [(sender, False), *((r, True) for r in recipients)]:
            gm.UserEmailThread.create_save(
                global_email_thread_id=thread.id, user_id=user.id, email_ids=[email.id],
                incoming=incoming, outgoing=not incoming, read=not incoming,
                created_at=e["created_at"], updated_at=e["created_at"])

    # splitwise: groups (explicit invitation codes: the default is random), equal splits.
    sw = models.splitwise
    for k, g in enumerate(world.groups):
        row = sw.Group.create_save(user_id=users["splitwise"][sup.email].id, name=g["name"],
                                   description=g["description"], invitation_code=f"IDG{k:02d}",
                                   created_at=now - timedelta(days=120))
        members = [users["splitwise"][m] for m in g["members"]]
        for member in members:
            sw.GroupMember.create_save(group_id=row.id, user_id=member.id,
                                       joined_at=now - timedelta(days=120))
        for x in g["expenses"]:
            payer = users["splitwise"][x["payer"]]
            expense = sw.Expense.create_save(user_id=payer.id, payer_id=payer.id, group_id=row.id,
                                             description=x["description"], amount=x["amount"],
                                             created_at=x["created_at"])
            for member in members:
                sw.ExpenseShare.create_save(expense_id=expense.id, debtor_id=member.id,
                                            share_amount=round(x["amount"] / len(members), 2),
                                            created_at=x["created_at"])

    # amazon: sellers, products, the supervisor's wish list.
    am = models.amazon
    for seller in world.sellers:
        am.Seller.create_save(name=seller["name"], rating=seller["rating"])
    for p in world.products:
        am.Product.create_save(
            product_type=p["product_type"], name=p["name"],
            description=f"A {p['color']} {p['product_type']} from {world.sellers[p['seller_id'] - 1]['name']}.",
            seller_id=p["seller_id"], price=p["price"], delivery_days=p["delivery_days"],
            inventory_quantity=p["inventory_quantity"], weight=1.0, length=10.0, width=8.0,
            height=4.0, color=p["color"], relative_size=p["relative_size"], rating=p["rating"],
            seller_rating=world.sellers[p["seller_id"] - 1]["rating"])
    for product_id in world.wish_list:
        am.WishListEntry.create_save(user_id=users["amazon"][sup.email].id, product_id=product_id)
