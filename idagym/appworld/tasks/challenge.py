"""Templates of the challenge split (as AppWorld's test-challenge): train never sees them.

They use apps that no train task touches (gmail, splitwise, amazon), alone or with one train
app. Their data lives only in the challenge tasks' own ``dbs/`` (see ``world.populate_challenge``),
so the train/dev/test tasks and base_dbs are the same as before this split existed.
"""

from __future__ import annotations

from idagym.appworld.tasks.templates import (
    NOTE_ADDED_CHECK,
    NOTE_CHANGED,
    TaskSpec,
    action,
    code,
    solution,
    template,
)
from idagym.appworld.tasks.world import World

FIND_USER = '''\
users = all_pages(apis.gmail.search_users, query=$name)
email_address = next(u["email"] for u in users if u["first_name"] + " " + u["last_name"] == $name)
'''
FIND_GROUP = '''\
groups = all_pages(apis.splitwise.show_groups, access_token=splitwise_token)
group = next(g for g in groups if g["name"] == $group)
'''
READ_EMAIL = '''\
threads = all_pages(apis.gmail.show_inbox_threads, access_token=gmail_token, query=$subject)
thread_id = next(t["email_thread_id"] for t in threads if t["subject"] == $subject)
email = apis.gmail.show_thread(access_token=gmail_token, email_thread_id=thread_id)["emails"][0]
'''
EMAIL_CHANGED = {"gmail.Email", "gmail.GlobalEmailThread", "gmail.UserEmailThread"}
EXPENSE_CHANGED = {"splitwise.Expense", "splitwise.ExpenseShare", "splitwise.Notification"}


def _received(w: World) -> list[dict]:
    """Emails the supervisor received, newest first."""
    return sorted((e for e in w.emails if w.supervisor.email in e["recipients"]),
                  key=lambda e: e["created_at"], reverse=True)


def _letters(w: World) -> list[dict]:
    return [e for e in _received(w) if not e["subject"].startswith("Receipt: ")]


def _group(w: World, name: str) -> dict:
    return next(g for g in w.groups if g["name"] == name)


# ----------------------------------------------------------------------------- gmail

@template("gmail_latest_subject", ("gmail",), 2, "question",
          lambda w: [{"email": e} for e in sorted({e["sender"] for e in _received(w)})],
          challenge=True)
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    latest = next(e for e in _received(w) if e["sender"] == p["email"])
    body = code(FIND_USER + '''\
threads = all_pages(apis.gmail.show_inbox_threads, access_token=gmail_token,
                    from_email=email_address)
subject = max(threads, key=lambda t: t["created_at"])["subject"]
''', name=person.name)
    return TaskSpec(f"What is the subject of the most recent email that {person.name} sent me "
                    "on Gmail?", solution(("gmail",), body, "subject"), answer=latest["subject"])


@template("email_to_note", ("gmail", "simple_note"), 2, "action",
          lambda w: [{"subject": e["subject"]} for e in _letters(w)], challenge=True)
def _(w: World, p: dict) -> TaskSpec:
    email = next(e for e in _letters(w) if e["subject"] == p["subject"])
    body = code(READ_EMAIL + "apis.simple_note.create_note(access_token=simple_note_token, "
                "title=$subject, content=email['body'])\n", **p)
    check = code(NOTE_ADDED_CHECK + 'test.case(added[0].content.strip(), "==", $content)\n',
                 title=p["subject"], content=email["body"].strip())
    return action(f"Save the email '{p['subject']}' that {w.person(email['sender']).name} sent "
                  "me on Gmail as a new Simple Note note, with the email's subject as its title "
                  "and the email's body as its content.", ("gmail", "simple_note"), body,
                  NOTE_CHANGED, ("assert one note holding the email was added.", check), p)


# ----------------------------------------------------------------------------- splitwise

@template("splitwise_member_paid", ("splitwise",), 2, "question",
          lambda w: [{"group": g["name"], "email": m} for g in w.groups for m in g["members"]
                     if m != w.supervisor.email], challenge=True)
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    total = sum(x["amount"] for x in _group(w, p["group"])["expenses"]
                if x["payer"] == p["email"])
    body = code(FIND_GROUP + '''\
member = next(m["email"] for m in group["members"] if m["name"] == $name)
expenses = all_pages(apis.splitwise.show_group_expenses, access_token=splitwise_token,
                     group_id=group["group_id"])
total = round(sum(e["paid_amount"] for e in expenses if e["payer"]["email"] == member), 2)
''', group=p["group"], name=person.name)
    return TaskSpec(f"How much has {person.name} paid in total for the expenses of my Splitwise "
                    f"group '{p['group']}'? Answer with just the number.",
                    solution(("splitwise",), body, "total"), answer=round(total, 2))


EXPENSE_CHECK = '''\
added, updated, removed = models.changed_records("splitwise.Expense")
test.case(len(added), "==", 1)
expense, members = added[0], sorted($members)
test.case(expense.group.name, "==", $group)
test.case(models.end.splitwise.User.find_one(id=expense.payer_id).email, "==", $payer)
test.case(round(expense.amount, 2), "==", $amount)
test.case((expense.description or "").strip().lower(), "==", $description)
shares = models.end.splitwise.ExpenseShare.find_all(expense_id=expense.id)
debtors = [models.end.splitwise.User.find_one(id=s.debtor_id).email for s in shares]
test.case(sorted(debtors), "==", members)
test.case(max(abs(s.share_amount - $amount / len(members)) for s in shares), "<=", 0.01)
'''


@template("receipt_to_splitwise", ("gmail", "splitwise"), 3, "action",
          lambda w: [{"group": g["name"], "description": r["description"]} for g in w.groups
                     for r in g["receipts"]], challenge=True)
def _(w: World, p: dict) -> TaskSpec:
    group = _group(w, p["group"])
    receipt = next(r for r in group["receipts"] if r["description"] == p["description"])
    payer = w.person(receipt["payer"])
    body = code(READ_EMAIL, subject=f"Receipt: {p['description']}") + code('''\
total = float(next(line for line in email["body"].splitlines()
                   if line.startswith("Total:")).split("$$")[1])
''') + code(FIND_GROUP + '''\
apis.splitwise.record_expense(access_token=splitwise_token, description=$description,
                              paid_amount=total, payer_email=email["sender"]["email"],
                              debtor_emails=[m["email"] for m in group["members"]],
                              group_id=group["group_id"])
''', group=p["group"], description=p["description"])
    check = code(EXPENSE_CHECK, group=p["group"], payer=payer.email, amount=receipt["amount"],
                 description=p["description"].lower(), members=group["members"])
    return action(f"{payer.name} emailed me the receipt for the {p['description']} (subject "
                  f"'Receipt: {p['description']}'). Record it in our Splitwise group "
                  f"'{p['group']}' as an expense paid by {payer.first_name}, with the "
                  f"description '{p['description']}' and the total from the receipt, split "
                  "equally among all members of the group, me included.",
                  ("gmail", "splitwise"), body, EXPENSE_CHANGED,
                  ("assert one expense with the receipt's payer, total and equal shares was "
                   "added to the group.", check), p)


# ----------------------------------------------------------------------------- amazon

@template("amazon_cheapest_to_cart", ("amazon",), 2, "action",
          lambda w: [{"product_type": t, "quantity": q}
                     for t in sorted({x["product_type"] for x in w.products}) for q in (1, 2, 3)],
          challenge=True)
def _(w: World, p: dict) -> TaskSpec:
    cheapest = min((x for x in w.products if x["product_type"] == p["product_type"]),
                   key=lambda x: x["price"])
    body = code('''\
products = all_pages(apis.amazon.search_products, product_type=$product_type)
cheapest = min(products, key=lambda product: product["price"])
apis.amazon.add_product_to_cart(access_token=amazon_token, product_id=cheapest["product_id"],
                                quantity=$quantity)
''', **p)
    check = code('''\
added, updated, removed = models.changed_records("amazon.CartEntry")
test.case([(e.product.name, e.quantity) for e in added], "==", [($name, $quantity)])
test.case(len(updated) + len(removed), "==", 0)
''', name=cheapest["name"], quantity=p["quantity"])
    units = "1 unit" if p["quantity"] == 1 else f"{p['quantity']} units"
    return action(f"Add {units} of the cheapest {p['product_type']} sold on Amazon to my cart.",
                  ("amazon",), body, {"amazon.CartEntry"},
                  ("assert only the cheapest product was added, in the right quantity.", check),
                  p)


def _wish_limits(w: World) -> list[int]:
    """Whole-dollar limits that each split the wish list's prices in a different place."""
    prices = sorted(x["price"] for x in w.products if x["id"] in w.wish_list)
    return [int((a + b) / 2) for a, b in zip(prices, prices[1:], strict=False)
            if int((a + b) / 2) > a][1:4]


@template("wish_list_to_email", ("amazon", "gmail"), 3, "action",
          lambda w: [{"email": x.email, "limit": limit} for x in w.people[:8]
                     for limit in _wish_limits(w)], challenge=True)
def _(w: World, p: dict) -> TaskSpec:
    person = w.person(p["email"])
    names = [x["name"] for x in w.products if x["id"] in w.wish_list and x["price"] < p["limit"]]
    subject = "Wish list ideas"
    body = code('''\
wish_list = apis.amazon.show_wish_list(access_token=amazon_token)
names = [entry["product_name"] for entry in wish_list if entry["price"] < $limit]
''', limit=p["limit"]) + code(FIND_USER, name=person.name) + code('''\
apis.gmail.send_email(access_token=gmail_token, email_addresses=[email_address],
                      subject=$subject, body="\\n".join(names))
''', subject=subject)
    check = code('''\
added, updated, removed = models.changed_records("gmail.Email")
test.case(len(added), "==", 1)
recipients = [models.end.gmail.User.find_one(id=i).email for i in added[0].recipient_ids]
test.case(recipients, "==", [$email])
test.case(added[0].subject.strip().lower(), "==", $subject.lower())
lines = [line.strip().lstrip("-* ").strip() for line in added[0].body.splitlines()]
test.case(sorted(line for line in lines if line), "==", sorted($names))
''', email=person.email, subject=subject, names=names)
    return action(f"Email {person.name} the names of the products in my Amazon wish list that "
                  f"cost less than ${p['limit']}, one name per line, with the subject "
                  f"'{subject}'.", ("amazon", "gmail"), body, EMAIL_CHANGED,
                  ("assert one email listing exactly those products went to the right person.",
                   check), p)
