"""The vocabulary of the simulated JeriCommerce programme: who the customers
are, where they shop, what they can earn, and how often each event occurs.

Every generator of traffic (the demo, the kill test, the bench, the
integration tests) draws from these tables, so one edit here changes them all.
"""

from __future__ import annotations

from projections.events import EventType as T

# Relative frequency of each type after a customer's creation (a mix of a
# busy programme: points and scans dominate, refunds and birthdays are rare).
WEIGHTS: dict[T, int] = {
    T.BALANCE_CHANGED: 24,
    T.CUSTOMER_SCANNED: 9,
    T.CUSTOMER_TAPPED: 6,
    T.WALLET_CLICK: 9,
    T.WALLET_VISIT: 9,
    T.COUPON_ASSIGNED: 5,
    T.COUPON_PASS_INSTALLED: 4,
    T.COUPON_PASS_UNINSTALLED: 2,
    T.REWARD_REDEEMABLE: 5,
    T.REWARD_REDEEMED: 3,
    T.REWARD_REFUNDED: 1,
    T.TIER_CHANGED: 3,
    T.WALLET_PASS_REQUESTED: 3,
    T.WALLET_PASS_INSTALLED: 3,
    T.WALLET_PASS_UNINSTALLED: 1,
    T.GIFT_CARD_SENT: 2,
    T.CUSTOMER_BIRTHDAY: 1,
    T.CUSTOMER_CREATED: 1,  # a re-sent creation, now and then
}

# Types a newer JeriCommerce might send: stored and replayed, never folded.
UNKNOWN_TYPES = ("Points expired", "Referral completed", "Customer merged")

# fmt: off
FIRST_NAMES = (
    "Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Leo", "Valeria", "Daniel",
    "Paula", "Álvaro", "Emma", "Pablo", "Julia", "Manuel", "Carla", "Adrián", "Noa",
    "Marco", "Olivia", "Enzo", "Aitana", "Iker", "Chloé", "Liam", "Yuki", "Priya",
    "Omar", "Ingrid", "Tomás", "Inés",
)
LAST_NAMES = (
    "García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Fernández", "Díaz",
    "Moreno", "Navarro", "Romero", "Torres", "Ruiz", "Serrano", "Molina", "Ortega",
    "Castro", "Núñez", "Iglesias", "Vidal",
)
# fmt: on
# (storeId, name, city, lat, lng)
STORES = (
    ("st-bcn-01", "Barcelona Gràcia", "Barcelona", 41.4036, 2.1561),
    ("st-mad-02", "Madrid Malasaña", "Madrid", 40.4265, -3.7043),
    ("st-vlc-01", "Valencia Ruzafa", "Valencia", 39.4623, -0.3736),
    ("st-svq-01", "Sevilla Triana", "Sevilla", 37.3828, -6.0020),
)
DEVICES = (
    {"model": "iPhone 15", "os": "iOS 17.4", "wallet": "Apple Wallet"},
    {"model": "Pixel 8", "os": "Android 14", "wallet": "Google Wallet"},
    {"model": "Galaxy S23", "os": "Android 14", "wallet": "Google Wallet"},
    {"model": "iPhone 13", "os": "iOS 16.7", "wallet": "Apple Wallet"},
)
BROWSERS = ("Chrome 122", "Safari 17.3", "Firefox 123", "Samsung Internet 24")
ORIGINS = ("shopify", "pos", "web", "app")
UTM_SOURCES = ("instagram", "newsletter", "google", "tiktok", "in-store")
UTM_MEDIUMS = ("social", "email", "cpc", "qr")
UTM_CAMPAIGNS = ("spring-sale", "welcome", "black-friday", "loyalty-launch")
# (rewardId, title, value in euros, cost in points)
REWARDS = (
    ("rwd-free-coffee", "Free coffee", 2.5, 100),
    ("rwd-10-off", "10 € off your next order", 10, 250),
    ("rwd-tote-bag", "Canvas tote bag", 18.5, 400),
)
# Points a customer needs for each tier, highest first.
TIER_FLOORS = ((800, "Gold"), (300, "Silver"), (0, "Bronze"))
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
AMOUNTS = (20, 35, 50, 80, 120, 150, 200, -10, -50)
SHOP = "https://shop.example.com"
WALLET = "https://wallet.example.com"
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
