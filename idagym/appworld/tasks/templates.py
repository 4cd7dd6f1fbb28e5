"""Task templates of the built-in suite.

A template enumerates its parameter space from the world (so tasks are unique and the suite is
deterministic) and turns one parameter set into a ``TaskSpec``: the instruction, a ground-truth
solution written the way an agent would (log in with the supervisor's passwords, call the app
APIs, ``complete_task``), and the tests: the answer for questions; for actions, the set of
changed models (AppWorld's collateral check) plus checks on the changed records.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from idagym.appworld.tasks.world import Person, World

# Shared start of every solution: passwords and profile from the supervisor app, and a helper
# that walks paginated list APIs (page_limit is capped at 20 by the apps).
PREAMBLE = '''\
passwords = {item["account_name"]: item["password"] for item in apis.supervisor.show_account_passwords()}
profile = apis.supervisor.show_profile()


def all_pages(api, **kwargs):
    results, page_index = [], 0
    while True:
        page = api(page_index=page_index, page_limit=20, **kwargs)
        if not page:
            return results
        results += page
        page_index += 1
'''


def login(app: str) -> str:
    username = "phone_number" if app == "phone" else "email"
    return (f'{app}_token = apis.{app}.login(username=profile["{username}"], '
            f'password=passwords["{app}"])["access_token"]\n')


def code(template: str, **values: Any) -> str:
    """Fill ``$name`` slots with Python literals (repr), leaving braces of the code alone."""
    return string.Template(template).substitute({k: repr(v) for k, v in values.items()})


@dataclass
class TaskSpec:
    instruction: str
    solution: str
    answer: Any = None  # None: an action task, judged on the database only
    changed: set[str] = field(default_factory=set)  # models an action must change (exactly)
    checks: list[tuple[str, str]] = field(default_factory=list)  # (requirement, test code)
    private_data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Template:
    name: str
    apps: tuple[str, ...]
    difficulty: int
    kind: str  # "question" or "action"
    space: Callable[[World], list[dict[str, Any]]]  # every valid parameter set
    make: Callable[[World, dict[str, Any]], TaskSpec]
    challenge: bool = False  # its tasks form the challenge split, which train never sees

    def __post_init__(self) -> None:
        assert self.kind in ("question", "action") and self.difficulty in (1, 2, 3)


TEMPLATES: list[Template] = []


def template(name: str, apps: tuple[str, ...], difficulty: int, kind: str,
             space: Callable[[World], list[dict[str, Any]]], challenge: bool = False) -> Callable:
    def register(make: Callable[[World, dict[str, Any]], TaskSpec]) -> Callable:
        TEMPLATES.append(Template(name, apps, difficulty, kind, space, make, challenge))
        return make
    return register


def solution(apps: tuple[str, ...], body: str, answer: str = "") -> str:
    logins = "".join(login(app) for app in apps)
    end = f"apis.supervisor.complete_task(answer={answer})" if answer else \
        "apis.supervisor.complete_task()"
    return PREAMBLE + "\n" + logins + body.rstrip() + "\n" + end + "\n"


def action(instruction: str, apps: tuple[str, ...], body: str, changed: set[str],
           check: tuple[str, str], p: dict) -> TaskSpec:
    """An action task solved by ``body`` that must change exactly the models ``changed``, judged
    by ``check`` (requirement, test code); its parameters ``p`` are the private data."""
    return TaskSpec(instruction, solution(apps, body), changed=changed, checks=[check],
                    private_data=p)


NEW_NOTES = [
    ("Dentist Reminder", "Call the dentist on Monday to move the appointment."),
    ("Podcast Ideas", "Interview a local baker about sourdough."),
    ("Car Maintenance", "Oil change due at 45,000 miles."),
    ("Birthday Plans", "Book a table for six at the Italian place."),
    ("Reading Notes", "Chapter 3 argues that habits compound like interest."),
    ("Garden Layout", "Tomatoes along the fence, herbs by the door."),
    ("Movie Night Picks", "Arrival, Paddington 2, and Spirited Away."),
    ("Budget Check", "Spend less than 300 dollars on eating out this month."),
]
NEW_ITEMS = ["batteries", "umbrella", "notebook", "tea", "socks", "stamps"]
NEW_TASKS = ["water the plants", "back up laptop", "order printer ink", "book flights",
             "write thank-you cards", "clean the garage"]
MESSAGES = ["See you at 7!", "Can you call me when you are free?", "Thanks a lot!",
            "Happy Friday!", "Lunch tomorrow?", "Got your package, thanks."]
MEMOS = ["pizza night", "parking", "book club", "gas money", "museum tickets", "lunch"]
AMOUNTS = [12, 18, 25, 30, 42, 55]
NEW_PLAYLISTS = ["Gym Mix", "Dinner Party", "Study Beats", "Weekend Vibes", "Road Songs",
                 "Cozy Evenings"]
NEW_FILES = [("ideas", "Try the new ramen place."), ("todo", "Renew car registration."),
             ("quotes", "Stay hungry, stay foolish."), ("plans", "Visit the coast in July.")]


# World look-ups by the names a task uses.

def _note(w: World, title: str) -> dict:
    return next(n for n in w.notes if n["title"] == title)


def _project(w: World, name: str) -> dict:
    return next(pr for pr in w.projects if pr["name"] == name)


def _playlist(w: World, title: str) -> dict:
    return next(pl for pl in w.playlists if pl["title"] == title)


def _tilde_path(f: dict) -> str:
    return f"~/{f['directory']}/{f['name']}"


def _file(w: World, path: str) -> dict:
    return next(f for f in w.files if _tilde_path(f) == path)


# ----------------------------------------------------------------------------- simple_note

@template("note_count_tag", ("simple_note",), 1, "question",
          lambda w: [{"tag": t} for t in sorted({t for n in w.notes for t in n["tags"]})])
def _(w: World, p: dict) -> TaskSpec:
    count = sum(p["tag"] in n["tags"] for n in w.notes)
    body = code("notes = all_pages(apis.simple_note.search_notes, access_token=simple_note_token, "
                "tags=[$tag])\ncount = len(notes)\n", tag=p["tag"])
    return TaskSpec(f"How many of my Simple Note notes are tagged '{p['tag']}'?",
                    solution(("simple_note",), body, "count"), answer=count)


def _list_notes(w: World) -> list[dict]:
    return [n for n in w.notes if n["items"] and n["title"] != "Money I Owe"]


FIND_NOTE = '''\
notes = all_pages(apis.simple_note.search_notes, access_token=simple_note_token, query=$title)
note_id = next(n["note_id"] for n in notes if n["title"] == $title)
'''
READ_NOTE = FIND_NOTE + '''\
content = apis.simple_note.show_note(access_token=simple_note_token, note_id=note_id)["content"]
'''
COUNT_LINES = "count = len([line for line in content.splitlines() if line.strip()])\n"


@template("note_count_items", ("simple_note",), 1, "question",
          lambda w: [{"title": n["title"]} for n in _list_notes(w)])
def _(w: World, p: dict) -> TaskSpec:
    body = code(READ_NOTE + COUNT_LINES, title=p["title"])
    return TaskSpec(f"How many items are on my '{p['title']}' list in Simple Note?",
                    solution(("simple_note",), body, "count"),
                    answer=len(_note(w, p["title"])["items"]))


NOTE_CHANGED = {"simple_note.Note"}
NOTE_ADDED_CHECK = '''\
added, updated, removed = models.changed_records("simple_note.Note")
test.case([n.title for n in added], "==", [$title])
'''


@template("note_create", ("simple_note",), 1, "action",
          lambda w: [{"title": t, "content": c} for t, c in NEW_NOTES])
def _(w: World, p: dict) -> TaskSpec:
    body = code("apis.simple_note.create_note(access_token=simple_note_token, title=$title, "
                "content=$content)\n", **p)
    check = code('''\
added, updated, removed = models.changed_records("simple_note.Note")
test.case(len(added), "==", 1)
test.case(len(updated) + len(removed), "==", 0)
test.case(added[0].title.strip(), "==", $title)
test.case(added[0].content.strip(), "==", $content)
''', **p)
    return action(f"Create a note in Simple Note titled '{p['title']}' with the content "
                  f"'{p['content']}'.", ("simple_note",), body, NOTE_CHANGED,
                  ("assert one note with the right title and content was added.", check), p)


@template("note_pin", ("simple_note",), 2, "action",
          lambda w: [{"title": n["title"]} for n in w.notes if not n["pinned"]])
def _(w: World, p: dict) -> TaskSpec:
    body = code(FIND_NOTE + "apis.simple_note.update_note(access_token=simple_note_token, "
                "note_id=note_id, pinned=True)\n", **p)
    check = code('''\
added, updated, removed = models.changed_records("simple_note.Note")
test.case(len(added) + len(removed), "==", 0)
test.case([note.title for note in updated], "==", [$title])
test.case(updated[0].pinned, "==", True)
''', **p)
    return action(f"Pin my Simple Note note titled '{p['title']}'.", ("simple_note",), body,
                  NOTE_CHANGED, ("assert only the requested note was pinned.", check), p)


@template("note_append_item", ("simple_note",), 2, "action",
          lambda w: [{"title": n["title"], "item": i} for n in _list_notes(w) for i in NEW_ITEMS
                     if i not in n["items"]])
def _(w: World, p: dict) -> TaskSpec:
    note = _note(w, p["title"])
    body = code(READ_NOTE + '''\
apis.simple_note.update_note(access_token=simple_note_token, note_id=note_id,
                             content=content.rstrip() + "\\n- " + $item)
''', **p)
    check = code('''\
added, updated, removed = models.changed_records("simple_note.Note")
test.case([note.title for note in updated], "==", [$title])
items = [line.strip().lstrip("-* ").strip() for line in updated[0].content.splitlines()]
test.case([item for item in items if item], "==", $items)
''', title=p["title"], items=[*note["items"], p["item"]])
    return action(f"Add '{p['item']}' as a new last item of my '{p['title']}' list in Simple "
                  "Note, keeping the same '- item' format.", ("simple_note",), body,
                  NOTE_CHANGED, ("assert the item was appended and nothing else changed.", check),
                  p)


# ----------------------------------------------------------------------------- todoist

TASK_CHANGED = {"todoist.Task"}
FIND_PROJECT = '''\
projects = all_pages(apis.todoist.show_projects, access_token=todoist_token)
project_id = next(p["project_id"] for p in projects if p["name"] == $project)
listing = apis.todoist.show_tasks(access_token=todoist_token, project_id=project_id)
tasks = listing["no_section_tasks"] + [t for s in listing["sections"] for t in s["tasks"]]
'''


@template("todo_count", ("todoist",), 1, "question",
          lambda w: [{"project": pr["name"], "done": d} for pr in w.projects for d in (0, 1)])
def _(w: World, p: dict) -> TaskSpec:
    pr = _project(w, p["project"])
    count = sum(t["is_completed"] == bool(p["done"]) for t in pr["tasks"])
    word = "completed" if p["done"] else "incomplete"
    body = code(FIND_PROJECT + "count = len([t for t in tasks if t['is_completed'] == $done])\n",
                project=p["project"], done=bool(p["done"]))
    return TaskSpec(f"How many {word} tasks are there in my Todoist project '{p['project']}'?",
                    solution(("todoist",), body, "count"), answer=count)


@template("todo_create_task", ("todoist",), 1, "action",
          lambda w: [{"project": pr["name"], "title": t} for pr in w.projects for t in NEW_TASKS])
def _(w: World, p: dict) -> TaskSpec:
    body = code(FIND_PROJECT + "apis.todoist.create_task(access_token=todoist_token, "
                "project_id=project_id, title=$title)\n", **p)
    check = code('''\
added, updated, removed = models.changed_records("todoist.Task")
test.case(len(added), "==", 1)
test.case(added[0].title.strip().lower(), "==", $title)
test.case(added[0].project.name, "==", $project)
''', **p)
    return action(f"Add a task '{p['title']}' to my Todoist project '{p['project']}'.",
                  ("todoist",), body, TASK_CHANGED,
                  ("assert the task was added to the right project.", check), p)


@template("todo_complete_task", ("todoist",), 2, "action",
          lambda w: [{"project": pr["name"], "title": t["title"]} for pr in w.projects
                     for t in pr["tasks"] if not t["is_completed"]])
def _(w: World, p: dict) -> TaskSpec:
    body = code(FIND_PROJECT + '''\
task_id = next(t["task_id"] for t in tasks if t["title"] == $title)
apis.todoist.update_task(access_token=todoist_token, task_id=task_id, is_completed=True)
''', **p)
    check = code('''\
added, updated, removed = models.changed_records("todoist.Task")
test.case(len(added) + len(removed), "==", 0)
test.case([(t.title, t.is_completed) for t in updated], "==", [($title, True)])
''', **p)
    return action(f"Mark the task '{p['title']}' in my Todoist project '{p['project']}' as "
                  "completed.", ("todoist",), body, TASK_CHANGED,
                  ("assert only that task was marked completed.", check), p)


def _top_task(pr: dict) -> str:
    return next(t["title"] for t in pr["tasks"] if t["priority"] == "high" and not
                t["is_completed"])


TOP_TASK = FIND_PROJECT + '''\
top = next(t["title"] for t in tasks if t["priority"] == "high" and not t["is_completed"])
'''


@template("todo_top_task", ("todoist",), 2, "question",
          lambda w: [{"project": pr["name"]} for pr in w.projects])
def _(w: World, p: dict) -> TaskSpec:
    return TaskSpec(f"What is the title of the high-priority task that is still open in my "
                    f"Todoist project '{p['project']}'?",
                    solution(("todoist",), code(TOP_TASK, **p), "top"),
                    answer=_top_task(_project(w, p["project"])))


# ----------------------------------------------------------------------------- spotify

FIND_PLAYLIST = '''\
playlists = all_pages(apis.spotify.show_playlist_library, access_token=spotify_token)
playlist_id = next(p["playlist_id"] for p in playlists if p["title"] == $playlist)
songs = apis.spotify.show_playlist(access_token=spotify_token, playlist_id=playlist_id)["songs"]
'''


@template("spotify_playlist_count", ("spotify",), 1, "question",
          lambda w: [{"playlist": p["title"]} for p in w.playlists])
def _(w: World, p: dict) -> TaskSpec:
    return TaskSpec(f"How many songs are in my Spotify playlist '{p['playlist']}'?",
                    solution(("spotify",), code(FIND_PLAYLIST + "count = len(songs)\n", **p),
                             "count"), answer=len(_playlist(w, p["playlist"])["song_ids"]))


def _longest(w: World, pl: dict) -> dict:
    return max((w.song(i) for i in pl["song_ids"]), key=lambda s: s["duration"])


def _unique_longest(w: World) -> list[dict]:
    out = []
    for pl in w.playlists:
        durations = sorted((w.song(i)["duration"] for i in pl["song_ids"]), reverse=True)
        if len(durations) < 2 or durations[0] != durations[1]:
            out.append(pl)
    return out


LONGEST = FIND_PLAYLIST + '''\
durations = {s["id"]: apis.spotify.show_song(song_id=s["id"])["duration"] for s in songs}
longest = next(s["title"] for s in songs if durations[s["id"]] == max(durations.values()))
'''


@template("spotify_longest_song", ("spotify",), 2, "question",
          lambda w: [{"playlist": p["title"]} for p in _unique_longest(w)])
def _(w: World, p: dict) -> TaskSpec:
    return TaskSpec(f"What is the title of the longest song in my Spotify playlist "
                    f"'{p['playlist']}'?", solution(("spotify",), code(LONGEST, **p), "longest"),
                    answer=_longest(w, _playlist(w, p["playlist"]))["title"])


@template("spotify_library_artist_count", ("spotify",), 2, "question",
          lambda w: [{"artist": a["name"]} for a in w.artists])
def _(w: World, p: dict) -> TaskSpec:
    artist = next(a for a in w.artists if a["name"] == p["artist"])
    count = sum(w.song(i)["artist_id"] == artist["id"] for i in w.library_song_ids)
    body = code('''\
library = all_pages(apis.spotify.show_song_library, access_token=spotify_token)
count = len([s for s in library if $artist in [a["name"] for a in s["artists"]]])
''', **p)
    return TaskSpec(f"How many songs by {p['artist']} are in my Spotify song library?",
                    solution(("spotify",), body, "count"), answer=count)


@template("spotify_like_song", ("spotify",), 1, "action",
          lambda w: [{"song": s["title"]} for s in w.songs])
def _(w: World, p: dict) -> TaskSpec:
    body = code('''\
results = apis.spotify.search_songs(query=$song, page_limit=20)
song_id = next(s["song_id"] for s in results if s["title"] == $song)
apis.spotify.like_song(access_token=spotify_token, song_id=song_id)
''', **p)
    check = code('''\
added, updated, removed = models.changed_records("spotify.SongLike")
test.case([like.song.title for like in added], "==", [$song])
''', **p)
    return action(f"Like the song '{p['song']}' on Spotify.", ("spotify",), body,
                  {"spotify.SongLike", "spotify.Song"}, ("assert exactly that song was liked.", check),
                  p)


def _song_pairs(w: World) -> list[dict]:
    out = []
    for k, title in enumerate(NEW_PLAYLISTS):
        for j in range(4):
            a, b = w.songs[(k * 11 + j * 5) % len(w.songs)], w.songs[(k * 7 + j * 13 + 3) %
                                                                    len(w.songs)]
            if a["id"] != b["id"]:
                out.append({"title": title, "songs": [a["title"], b["title"]]})
    return out


PLAYLIST_CHECK = '''\
added, updated, removed = models.changed_records("spotify.Playlist")
test.case([p.title for p in added], "==", [$title])
songs = models.end.spotify.PlaylistSong.find_all(playlist_id=added[0].id)
test.case(sorted(s.song.title for s in songs), "==", sorted($songs))
'''
CREATE_PLAYLIST = '''\
playlist_id = apis.spotify.create_playlist(access_token=spotify_token, title=$title)["playlist_id"]
for title in $titles:
    results = apis.spotify.search_songs(query=title, page_limit=20)
    song_id = next(s["song_id"] for s in results if s["title"] == title)
    apis.spotify.add_song_to_playlist(access_token=spotify_token, playlist_id=playlist_id,
                                      song_id=song_id)
'''


def _playlist_task(instruction: str, apps: tuple[str, ...], *, intro: str = "", title: str,
                   titles: str, songs: list[str], p: dict) -> TaskSpec:
    """Create the playlist ``title`` holding the songs named by the code expression ``titles``
    (computed by ``intro``), which must be exactly ``songs``."""
    body = intro + string.Template(CREATE_PLAYLIST).substitute(title=repr(title), titles=titles)
    return action(instruction, apps, body, {"spotify.Playlist", "spotify.PlaylistSong"},
                  ("assert the playlist was created with exactly those songs.",
                   code(PLAYLIST_CHECK, title=title, songs=songs)), p)


@template("spotify_create_playlist", ("spotify",), 2, "action", _song_pairs)
def _(w: World, p: dict) -> TaskSpec:
    a, b = p["songs"]
    return _playlist_task(f"Create a Spotify playlist titled '{p['title']}' with just the songs "
                          f"'{a}' and '{b}'.", ("spotify",), title=p["title"],
                          titles=repr(p["songs"]), songs=p["songs"], p=p)


# ----------------------------------------------------------------------------- venmo

def _received_from(w: World) -> list[dict]:
    emails = sorted({t["other"] for t in w.transactions if not t["outgoing"]})
    return [{"email": e} for e in emails]


@template("venmo_total_received", ("venmo",), 2, "question", _received_from)
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    total = sum(t["amount"] for t in w.transactions if t["other"] == p["email"] and
                not t["outgoing"])
    body = code('''\
transactions = all_pages(apis.venmo.show_transactions, access_token=venmo_token,
                         user_email=$email, direction="received")
total = sum(t["amount"] for t in transactions if t["sender"]["email"] == $email)
''', **p)
    return TaskSpec(f"How much money in total have I received from {person.name} "
                    f"({person.email}) on Venmo? Answer with just the number.",
                    solution(("venmo",), body, "total"), answer=round(total, 2))


def _pay_space(w: World) -> list[dict]:
    return [{"email": p.email, "amount": a, "memo": m} for p in w.people[:12]
            for a, m in zip(AMOUNTS, MEMOS, strict=True)]


def _pay_space_with(w: World, people: list[Person]) -> list[dict]:
    """``_pay_space``'s amounts and memos, each with a person of ``people`` (cycled) instead."""
    return [{**x, "email": p.email} for x, p in zip(_pay_space(w), people * 6, strict=False)]


VENMO_SEND_CHECK = '''\
added, updated, removed = models.changed_records("venmo.Transaction")
test.case(len(added), "==", 1)
test.case(added[0].receiver.email, "==", $email)
test.case(added[0].sender.email, "==", main_user.email)
test.case(round(added[0].amount, 2), "==", $amount)
'''
VENMO_SEND_CHANGED = {"venmo.Transaction", "venmo.User", "venmo.Notification"}


def _payment_check(p: dict) -> tuple[str, str]:
    """The check of a task paying ``p["amount"]`` to ``p["email"]``."""
    return ("assert one payment of the right amount went to the right person.",
            code(VENMO_SEND_CHECK, email=p["email"], amount=float(p["amount"])))


@template("venmo_send", ("venmo",), 1, "action", _pay_space)
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    body = code("apis.venmo.create_transaction(access_token=venmo_token, receiver_email=$email, "
                "amount=$amount, description=$memo)\n", **p)
    return action(f"Send ${p['amount']} to {person.name} ({person.email}) on Venmo with the "
                  f"description '{p['memo']}'.", ("venmo",), body, VENMO_SEND_CHANGED,
                  _payment_check(p), p)


VENMO_REQUEST_CHECK = '''\
added, updated, removed = models.changed_records("venmo.PaymentRequest")
test.case(len(added), "==", 1)
test.case(added[0].receiver.email, "==", $email)
test.case(round(added[0].amount, 2), "==", $amount)
'''


@template("venmo_request", ("venmo",), 1, "action", lambda w: _pay_space_with(w, w.people[12:]))
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    body = code("apis.venmo.create_payment_request(access_token=venmo_token, user_email=$email, "
                "amount=$amount, description=$memo)\n", **p)
    return action(f"Request ${p['amount']} from {person.name} ({person.email}) on Venmo for "
                  f"'{p['memo']}'.", ("venmo",), body, {"venmo.PaymentRequest", "venmo.Notification"},
                  ("assert one request of the right amount went to the right person.",
                   code(VENMO_REQUEST_CHECK, email=p["email"], amount=float(p["amount"]))), p)


# ----------------------------------------------------------------------------- file_system

FS_CHANGED = {"file_system.File", "file_system.Directory"}
READ_FILE = '''\
content = apis.file_system.show_file(access_token=file_system_token, file_path=$path)["content"]
'''
FILE_ADDED_CHECK = '''\
added, updated, removed = models.changed_records("file_system.File")
test.case([f.tilde_path for f in added], "==", [$path])
'''


@template("file_line_count", ("file_system",), 1, "question",
          lambda w: [{"path": _tilde_path(f)} for f in w.files])
def _(w: World, p: dict) -> TaskSpec:
    return TaskSpec(f"How many lines does my file '{p['path']}' have?",
                    solution(("file_system",), code(READ_FILE + COUNT_LINES, **p), "count"),
                    answer=_file(w, p["path"])["num_lines"])


@template("file_create", ("file_system",), 1, "action",
          lambda w: [{"path": f"~/{d}/{stem}.txt", "content": c}
                     for d in sorted({f["directory"] for f in w.files}) for stem, c in NEW_FILES])
def _(w: World, p: dict) -> TaskSpec:
    body = code("apis.file_system.create_file(access_token=file_system_token, file_path=$path, "
                "content=$content)\n", **p)
    check = code(FILE_ADDED_CHECK + '''\
test.case(added[0].content.strip(), "==", $content)
test.case(len(updated) + len(removed), "==", 0)
''', **p)
    return action(f"Create a file '{p['path']}' containing '{p['content']}'.", ("file_system",),
                  body, FS_CHANGED, ("assert the file was created with the right content.", check),
                  p)


@template("file_move", ("file_system",), 2, "action",
          lambda w: [{"path": _tilde_path(f), "to": d, "name": f["name"]}
                     for f in w.files for d in ("documents", "work") if d != f["directory"]])
def _(w: World, p: dict) -> TaskSpec:
    body = code("apis.file_system.move_file(access_token=file_system_token, "
                "source_file_path=$path, destination_file_path='~/' + $to + '/' + $name)\n", **p)
    check = code('''\
old = models.start.file_system.File.find_all(tilde_path=$path)
new = models.end.file_system.File.find_all(tilde_path="~/" + $to + "/" + $name)
test.case(len(new), "==", 1)
test.case(models.end.file_system.File.find_all(tilde_path=$path), "==", [])
test.case(new[0].content, "==", old[0].content)
''', **p)
    return action(f"Move my file '{p['path']}' into my '~/{p['to']}/' directory, keeping its "
                  "name.", ("file_system",), body, FS_CHANGED,
                  ("assert the file was moved with its content.", check), p)


# ----------------------------------------------------------------------------- phone

FIND_ALARM = '''\
alarms = all_pages(apis.phone.show_alarms, access_token=phone_token)
alarm = next(a for a in alarms if a["label"] == $label)
'''


@template("phone_alarm_time", ("phone",), 1, "question",
          lambda w: [{"label": a["label"]} for a in w.alarms])
def _(w: World, p: dict) -> TaskSpec:
    alarm = next(a for a in w.alarms if a["label"] == p["label"])
    return TaskSpec(f"What time is my '{p['label']}' alarm set for on my phone? Answer in HH:MM.",
                    solution(("phone",), code(FIND_ALARM + "time = alarm['time']\n", **p),
                             "time"), answer=alarm["time"])


@template("phone_toggle_alarm", ("phone",), 1, "action",
          lambda w: [{"label": a["label"], "enabled": not a["enabled"]} for a in w.alarms])
def _(w: World, p: dict) -> TaskSpec:
    body = code(FIND_ALARM + "apis.phone.update_alarm(access_token=phone_token, "
                "alarm_id=alarm['alarm_id'], enabled=$enabled)\n", **p)
    check = code('''\
added, updated, removed = models.changed_records("phone.Alarm")
test.case([(a.label, a.enabled) for a in updated], "==", [($label, $enabled)])
test.case(len(added) + len(removed), "==", 0)
''', **p)
    verb = "Turn on" if p["enabled"] else "Turn off"
    return action(f"{verb} my '{p['label']}' alarm on my phone.", ("phone",), body,
                  {"phone.Alarm"}, ("assert only that alarm was switched.", check), p)


@template("phone_contact_count", ("phone",), 1, "question",
          lambda w: [{"relationship": r} for r in sorted({p.relationship for p in w.people})])
def _(w: World, p: dict) -> TaskSpec:
    count = sum(x.relationship == p["relationship"] for x in w.people)
    body = code('''\
contacts = all_pages(apis.phone.search_contacts, access_token=phone_token, relationship=$relationship)
count = len(contacts)
''', **p)
    return TaskSpec(f"How many of my phone contacts are marked as my {p['relationship']}?",
                    solution(("phone",), body, "count"), answer=count)


TEXT_CHECK = '''\
added, updated, removed = models.changed_records("phone.GlobalTextMessage")
test.case(len(added), "==", 1)
test.case(added[0].receiver.phone_number, "==", $phone)
test.case(added[0].message.strip().lower(), "==", $message.lower())
'''
FIND_CONTACT = '''\
contacts = all_pages(apis.phone.search_contacts, access_token=phone_token, query=$name)
contact = next(c for c in contacts if c["first_name"] + " " + c["last_name"] == $name)
'''


def _text_task(instruction: str, apps: tuple[str, ...], person: Person, *, intro: str = "",
               message: str, expected: str, p: dict) -> TaskSpec:
    """Text ``person`` (looked up in the phone contacts) the value of the code expression
    ``message``, computed by the solution code ``intro``; the text must be ``expected``."""
    body = intro + code(FIND_CONTACT, name=person.name) + (
        "apis.phone.send_text_message(access_token=phone_token, "
        f"phone_number=contact['phone_number'], message={message})\n")
    return action(instruction, apps, body, {"phone.GlobalTextMessage", "phone.UserTextMessage"},
                  ("assert exactly that text was sent to the right person.",
                   code(TEXT_CHECK, phone=person.phone_number, message=expected)), p)


@template("phone_text", ("phone",), 1, "action",
          lambda w: [{"email": p.email, "message": m} for p in w.people for m in MESSAGES[:2]])
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    return _text_task(f"Send a text message to {person.name} saying '{p['message']}'.",
                      ("phone",), person, message=repr(p["message"]), expected=p["message"],
                      p=p)


# ----------------------------------------------------------------------------- multi-app

@template("venmo_pay_contact", ("phone", "venmo"), 2, "action",
          lambda w: _pay_space_with(w, w.people[6:]))
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    body = code(FIND_CONTACT, name=person.name) + code(
        "apis.venmo.create_transaction(access_token=venmo_token, "
        "receiver_email=contact['email'], amount=$amount, description=$memo)\n",
        amount=p["amount"], memo=p["memo"])
    return action(f"Pay my {person.relationship} {person.name} ${p['amount']} on Venmo for "
                  f"'{p['memo']}'. Their email is in my phone contacts.", ("phone", "venmo"),
                  body, VENMO_SEND_CHANGED, _payment_check(p), p)


@template("venmo_sent_to_relationship", ("phone", "venmo"), 3, "question",
          lambda w: [{"relationship": r} for r in sorted({p.relationship for p in w.people})])
def _(w: World, p: dict) -> TaskSpec:
    emails = {x.email for x in w.people if x.relationship == p["relationship"]}
    total = sum(t["amount"] for t in w.transactions if t["outgoing"] and t["other"] in emails)
    body = code('''\
contacts = all_pages(apis.phone.search_contacts, access_token=phone_token, relationship=$relationship)
total = 0
for contact in contacts:
    transactions = all_pages(apis.venmo.show_transactions, access_token=venmo_token,
                             user_email=contact["email"], direction="sent")
    total += sum(t["amount"] for t in transactions if t["receiver"]["email"] == contact["email"])
''', **p)
    return TaskSpec(f"How much money in total have I sent on Venmo to the people marked as my "
                    f"{p['relationship']} in my phone contacts? Answer with just the number.",
                    solution(("phone", "venmo"), body, "total"), answer=round(total, 2))


@template("note_list_to_todo", ("simple_note", "todoist"), 2, "action",
          lambda w: [{"note": n["title"], "project": pr["name"]} for n in _list_notes(w)
                     for pr in w.projects if n["title"] != "Songs For The Road Trip"])
def _(w: World, p: dict) -> TaskSpec:
    note = _note(w, p["note"])
    body = code(READ_NOTE + '''\
items = [line.strip().lstrip("-* ").strip() for line in content.splitlines() if line.strip()]
''', title=p["note"]) + code(FIND_PROJECT, project=p["project"]) + '''\
for item in items:
    apis.todoist.create_task(access_token=todoist_token, project_id=project_id, title=item)
'''
    check = code('''\
added, updated, removed = models.changed_records("todoist.Task")
test.case(sorted(t.title.strip().lower() for t in added), "==", sorted($items))
test.case({t.project.name for t in added}, "==", {$project})
''', items=[i.lower() for i in note["items"]], project=p["project"])
    return action(f"Add every item of my '{p['note']}' list in Simple Note as a separate task "
                  f"in my Todoist project '{p['project']}'.", ("simple_note", "todoist"), body,
                  TASK_CHANGED, ("assert one task per list item was added to the project.", check),
                  p)


@template("note_songs_to_playlist", ("simple_note", "spotify"), 3, "action",
          lambda w: [{"title": t} for t in NEW_PLAYLISTS])
def _(w: World, p: dict) -> TaskSpec:
    intro = '''\
notes = all_pages(apis.simple_note.search_notes, access_token=simple_note_token,
                  query="Songs For The Road Trip")
note_id = next(n["note_id"] for n in notes if n["title"] == "Songs For The Road Trip")
content = apis.simple_note.show_note(access_token=simple_note_token, note_id=note_id)["content"]
titles = [line.strip().lstrip("-* ").strip() for line in content.splitlines() if line.strip()]
'''
    return _playlist_task(f"Create a Spotify playlist titled '{p['title']}' containing exactly the "
                          "songs listed in my Simple Note note 'Songs For The Road Trip'.",
                          ("simple_note", "spotify"), intro=intro, title=p["title"],
                          titles="titles", songs=_note(w, "Songs For The Road Trip")["items"],
                          p=p)


@template("file_to_note", ("file_system", "simple_note"), 2, "action",
          lambda w: [{"path": _tilde_path(f),
                      "title": f["name"].removesuffix(".txt").replace("_", " ").title()}
                     for f in w.files])
def _(w: World, p: dict) -> TaskSpec:
    body = code(READ_FILE + "apis.simple_note.create_note(access_token=simple_note_token, "
                "title=$title, content=content)\n", **p)
    check = code(NOTE_ADDED_CHECK + 'test.case(added[0].content.strip(), "==", $content)\n',
                 title=p["title"], content=_file(w, p["path"])["content"])
    return action(f"Create a Simple Note note titled '{p['title']}' whose content is exactly "
                  f"the content of my file '{p['path']}'.", ("file_system", "simple_note"), body,
                  NOTE_CHANGED, ("assert the note was created with the file's content.", check), p)


@template("playlist_to_file", ("spotify", "file_system"), 2, "action",
          lambda w: [{"playlist": pl["title"], "path": f"~/{d}/{pl['title'].lower().replace(' ', '_')}.txt"}
                     for pl in w.playlists for d in ("music", "documents")])
def _(w: World, p: dict) -> TaskSpec:
    titles = [w.song(i)["title"] for i in _playlist(w, p["playlist"])["song_ids"]]
    body = code(FIND_PLAYLIST + '''\
apis.file_system.create_file(access_token=file_system_token, file_path=$path,
                             content="\\n".join(s["title"] for s in songs))
''', **p)
    check = code(FILE_ADDED_CHECK + '''\
lines = [line.strip() for line in added[0].content.splitlines() if line.strip()]
test.case(sorted(lines), "==", sorted($titles))
''', path=p["path"], titles=titles)
    return action(f"Save the titles of the songs in my Spotify playlist '{p['playlist']}' to a "
                  f"new file '{p['path']}', one title per line.", ("spotify", "file_system"),
                  body, FS_CHANGED,
                  ("assert the file lists the playlist's songs in order.", check), p)


@template("text_top_task", ("todoist", "phone"), 2, "action",
          lambda w: [{"project": pr["name"], "email": x.email} for pr in w.projects
                     for x in w.people[:6]])
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    return _text_task(f"Text {person.name} the title of the high-priority task that is still "
                      f"open in my Todoist project '{p['project']}' (just the title).",
                      ("todoist", "phone"), person, intro=code(TOP_TASK, project=p["project"]),
                      message="top", expected=_top_task(_project(w, p["project"])), p=p)


@template("text_longest_song", ("spotify", "phone"), 3, "action",
          lambda w: [{"playlist": pl["title"], "email": x.email} for pl in _unique_longest(w)
                     for x in w.people[6:12]])
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    return _text_task(f"Text {person.name} the title of the longest song in my Spotify playlist "
                      f"'{p['playlist']}' (just the title).", ("spotify", "phone"), person,
                      intro=code(LONGEST, playlist=p["playlist"]), message="longest",
                      expected=_longest(w, _playlist(w, p["playlist"]))["title"], p=p)


@template("contact_phone_to_file", ("phone", "file_system"), 1, "action",
          lambda w: [{"email": x.email} for x in w.people])
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    path = f"~/documents/{person.first_name.lower()}_phone.txt"
    body = code(FIND_CONTACT, name=person.name) + code(
        "apis.file_system.create_file(access_token=file_system_token, file_path=$path, "
        "content=contact['phone_number'])\n", path=path)
    check = code(FILE_ADDED_CHECK + 'test.case(added[0].content.strip(), "==", $phone)\n',
                 path=path, phone=person.phone_number)
    return action(f"Create a file '{path}' containing only the phone number of my contact "
                  f"{person.name}.", ("phone", "file_system"), body, FS_CHANGED,
                  ("assert the file holds the contact's phone number.", check), p)


@template("pay_debts_from_note", ("simple_note", "phone", "venmo"), 3, "action",
          lambda w: [{"memo": m} for m in MEMOS + ["paying you back", "settling up"]])
def _(w: World, p: dict) -> TaskSpec:
    note = next(n for n in w.notes if n["title"] == "Money I Owe")
    debts = {e: float(a) for e, a in (item.split("|") for item in note["items"])}
    body = code('''\
notes = all_pages(apis.simple_note.search_notes, access_token=simple_note_token, query="Money I Owe")
note_id = next(n["note_id"] for n in notes if n["title"] == "Money I Owe")
content = apis.simple_note.show_note(access_token=simple_note_token, note_id=note_id)["content"]
contacts = all_pages(apis.phone.search_contacts, access_token=phone_token)
emails = {c["first_name"] + " " + c["last_name"]: c["email"] for c in contacts}
for line in content.splitlines():
    if ":" not in line:
        continue
    name, amount = line.strip().lstrip("-* ").split(":")
    apis.venmo.create_transaction(access_token=venmo_token, receiver_email=emails[name.strip()],
                                  amount=float(amount.strip().lstrip("$$")), description=$memo)
''', **p)
    check = code('''\
added, updated, removed = models.changed_records("venmo.Transaction")
paid = sorted((t.receiver.email, round(t.amount, 2)) for t in added)
test.case(paid, "==", sorted($debts))
''', debts=sorted(debts.items()))
    return action("Pay back everyone listed in my Simple Note note 'Money I Owe' the amount "
                  f"next to their name on Venmo, with the description '{p['memo']}'. Their "
                  "emails are in my phone contacts.", ("simple_note", "phone", "venmo"), body,
                  VENMO_SEND_CHANGED,
                  ("assert each listed person was paid the listed amount.", check), p)


@template("dir_files_to_todo", ("file_system", "todoist"), 2, "action",
          lambda w: [{"directory": d, "project": pr["name"]}
                     for d in sorted({f["directory"] for f in w.files}) for pr in w.projects])
def _(w: World, p: dict) -> TaskSpec:
    names = sorted(f["name"] for f in w.files if f["directory"] == p["directory"])
    body = code('''\
entries = apis.file_system.show_directory(access_token=file_system_token,
                                          directory_path="~/" + $directory + "/", entry_type="files")
''', directory=p["directory"]) + code(FIND_PROJECT, project=p["project"]) + '''\
for path in entries:
    apis.todoist.create_task(access_token=todoist_token, project_id=project_id,
                             title="Review " + path.split("/")[-1])
'''
    check = code('''\
added, updated, removed = models.changed_records("todoist.Task")
test.case(sorted(t.title.strip().lower() for t in added), "==", $titles)
test.case({t.project.name for t in added}, "==", {$project})
''', titles=sorted(f"review {n}" for n in names), project=p["project"])
    return action(f"For every file in my '~/{p['directory']}/' directory, add a task titled "
                  f"'Review <file name>' (e.g. 'Review {names[0]}') to my Todoist project "
                  f"'{p['project']}'.", ("file_system", "todoist"), body, TASK_CHANGED,
                  ("assert one review task per file was added to the project.", check), p)


@template("open_tasks_to_note", ("todoist", "simple_note"), 2, "action",
          lambda w: [{"project": pr["name"], "title": f"{pr['name']} {suffix}"}
                     for pr in w.projects for suffix in ("Open Tasks", "Still To Do")])
def _(w: World, p: dict) -> TaskSpec:
    titles = [t["title"] for t in _project(w, p["project"])["tasks"] if not t["is_completed"]]
    body = code(FIND_PROJECT, project=p["project"]) + code('''\
content = "\\n".join("- " + t["title"] for t in tasks if not t["is_completed"])
apis.simple_note.create_note(access_token=simple_note_token, title=$title, content=content)
''', title=p["title"])
    check = code(NOTE_ADDED_CHECK + '''\
items = [line.strip().lstrip("-* ").strip().lower() for line in added[0].content.splitlines()]
test.case(sorted(item for item in items if item), "==", sorted($titles))
''', title=p["title"], titles=[t.lower() for t in titles])
    return action(f"Create a Simple Note note titled '{p['title']}' listing the titles of the "
                  f"incomplete tasks of my Todoist project '{p['project']}', one per line as "
                  "'- title'.", ("todoist", "simple_note"), body, NOTE_CHANGED,
                  ("assert the note lists exactly the open tasks.", check), p)


# The challenge split's templates come last, so the ones above keep their order.
from idagym.appworld.tasks import challenge as _challenge  # noqa: E402, F401
