"""Realistic sample data for the fake: the demo's, the tests' and the benchmark's templates."""

from __future__ import annotations

import random
import typing as t
import uuid

if t.TYPE_CHECKING:
    from fake_usersnap.store import Catalog


class SampleData:
    """Realistic feedback: forms with comments, ratings and yes/no inputs, labels, unicode."""

    LABELS = (
        ("bug", "Bug", "#f71007"),
        ("feature", "Feature request", "#1a7ff7"),
        ("ux", "UX", "#7b2ff7"),
        ("performance", "Performance", "#f7a81a"),
        ("billing", "Billing", "#17a34a"),
    )
    COMMENTS = (
        "The login button does nothing on Safari.",
        "Please add dark mode 🌙",
        "Export to CSV times out for big reports",
        "Die Seite lädt sehr langsam, bitte prüfen.",
        "La recherche ne trouve pas les accents: éèà",
        "結果の並び替えができません",
        "Love the new dashboard! 👏",
        "Checkout fails with a 500 after entering the coupon",
        'Text with "quotes", a backslash \\ and a\nnew line',
    )
    PROJECTS = ("Web app", "Mobile app (iOS)", "Marketing site", "Billing portal", "Admin")

    def __init__(self, fake: Catalog, rng: random.Random) -> None:
        self.fake = fake
        self.rng = rng
        self.label_ids = {
            ident: str(uuid.UUID(int=rng.getrandbits(128))) for ident, *_ in self.LABELS
        }

    def fill(self, *, projects: int, per_project: int) -> None:
        """Add projects (named after :attr:`PROJECTS`), their assignees and feedback."""
        for index in range(projects):
            name = self.PROJECTS[index % len(self.PROJECTS)]
            if index >= len(self.PROJECTS):
                name = f"{name} {index // len(self.PROJECTS) + 1}"
            project = self.fake.add_project(name)
            for user in self.users(self.rng.randint(0, 3)):
                self.fake.add_assignee(project["project_id"], **user)
            for _ in range(per_project):
                self.fake.add_feedback(project["project_id"], **self.feedback_fields())

    def users(self, count: int) -> list[dict[str, t.Any]]:
        """Up to four assignees, with non-ASCII names among them."""
        names = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Zoë", "Müller"), ("Li", "Wei")]
        return [
            {
                "user_id": str(uuid.UUID(int=self.rng.getrandbits(128))),
                "first_name": first,
                "last_name": last,
                "gravatar_url": f"https://www.gravatar.com/avatar/{index:032x}",
            }
            for index, (first, last) in enumerate(names[:count])
        ]

    def feedback_fields(self) -> dict[str, t.Any]:
        """The fields of one item that vary: inputs, state, labels, client, screenshot."""
        rng = self.rng
        comment = rng.choice(self.COMMENTS)
        inputs: list[dict[str, t.Any]] = [text_input(0, "Comment", comment)]
        if rng.random() < 0.6:
            rating = str(rng.randint(1, 5))
            inputs.append(
                {
                    "order": 1,
                    "label": "Rating",
                    "boolean_value": None,
                    "text_value": None,
                    "value": rating,
                }
            )
        if rng.random() < 0.4:
            inputs.append(
                {
                    "order": 2,
                    "label": "Would you recommend us?",
                    "boolean_value": rng.random() < 0.7,
                    "text_value": None,
                    "value": None,
                }
            )
        if rng.random() < 0.3:
            inputs.append(text_input(3, "What did you expect?", rng.choice(self.COMMENTS)))
        chosen = rng.sample(self.LABELS, k=rng.randint(0, 2))
        return {
            "comment": comment,
            "ordered_inputs": inputs,
            "status_type": rng.choice(("open", "open", "in_progress", "done")),
            "priority": rng.choice(("low", "medium", "high", None)),
            "email": rng.choice((None, "ana@example.com", "jürgen@example.de")),
            "labels": [
                {
                    "company_label_id": self.label_ids[ident],
                    "identifier": ident,
                    "name": name,
                    "color": color,
                }
                for ident, name, color in chosen
            ],
            "custom_data": rng.choice(
                (
                    {},
                    {"plan": "enterprise", "mrr": 1200, "user_id": rng.randint(1, 9999)},
                    {"System": "Staging", "Release Version": "0.2"},
                )
            ),
            "client": {
                "url": "https://app.example.com/reports",
                "client_type": "browser",
                "city_name": rng.choice(("Linz", "Berlin", "São Paulo")),
                "country_name": rng.choice(("Austria", "Germany", "Brazil")),
                "screen_width": 1728,
                "screen_height": 1117,
                "browser_full_name": "Firefox 103 (macOS Catalina)",
                "browser_os": "Macintosh",
                "browser_name": "Firefox",
                "browser_version": "103.0",
            },
            "screenshot": {
                "annotated_image_url": "https://resources.usersnap.com/shot.png",
                "comments": [{"label": "1", "comment": "here"}] if rng.random() < 0.3 else [],
            },
        }


def text_input(order: int | None, label: str | None, text: str | None) -> dict[str, t.Any]:
    """One text answer of a feedback form, as Usersnap puts it in ``ordered_inputs``."""
    return {
        "order": order,
        "label": label,
        "boolean_value": None,
        "text_value": text,
        "value": text,
    }
