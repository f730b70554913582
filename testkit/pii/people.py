"""The secrets and the people of the scenario: values distinctive enough
that finding one in a log or an answer can only mean a leak."""

from __future__ import annotations

import re
from dataclasses import dataclass

from testkit.signing import headers as signed_headers

OLD_SECRET = "pii-Old-Secret-7c1f2e9a"
NEW_SECRET = "pii-New-Secret-b93a0d4e"
SECRETS = (OLD_SECRET, NEW_SECRET, f"{OLD_SECRET},{NEW_SECRET}")


def headers(body: bytes, kind: str, secret: str = NEW_SECRET) -> dict[str, str]:
    return signed_headers(body, kind, secret)


@dataclass(frozen=True)
class Person:
    customer_id: str
    email: str
    first_name: str
    last_name: str
    phone: str

    def values(self) -> list[str]:
        digits = re.sub(r"\D", "", self.phone)
        return [self.email, self.first_name, self.last_name, self.phone, digits]


PEOPLE = (
    Person(
        "pii-cust-1",
        "Zephyrine.Quillfeather@Example.ORG",
        "Zephyrine",
        "Quillfeather",
        "+34 611 408 297",
    ),
    Person(
        "pii-cust-2",
        "marcelo.vandenbroek+loyal@mailbox.test",
        "Marcelo",
        "Vandenbroek",
        "(555) 014-7788",
    ),
    Person(
        "pii-cust-3",
        "ÁNGELES.ÑÚÑEZ-Ybarra@correo.example",
        "Ángeles",
        "Ñúñez-Ybarra",
        "0044 7700 900461",
    ),
)
# Asked for, never sent: a lookup of it must not echo it, nor log it.
UNKNOWN_EMAIL = "Nobody.Ostrogoth+probe@unknown.example"
# In events that never reach a read model (forged, invalid, too large).
STRANGER = Person(
    "pii-stranger", "Wilhelmina.Strangeways@elsewhere.test", "Wilhelmina",
    "Strangeways", "+1 (202) 555-0187",
)  # fmt: skip
PERSONAL = [v for p in (*PEOPLE, STRANGER) for v in p.values()] + [UNKNOWN_EMAIL]


def leaks(text: str, values: list[str]) -> list[str]:
    low = text.lower()
    return [v for v in values if v.lower() in low]
