"""The Customer message mapped from the read-model view, field by field: the
reference the service's builder (`service.rpc.convert.states`, which goes
straight from the fold state, skipping the view) is held equal to, byte for
byte, by property tests and the kill and split tests' checks. Two mappings
written apart, one plain and one fast, so a slip in either shows.
"""

from __future__ import annotations

from jericommerce.loyalty.v1 import customer_pb2

from projections.customer.model import Customer
from service.rpc.convert.scalars import number, timestamp
from service.rpc.convert.states import WALLET_PASS_STATUS


def customer_to_proto(c: Customer) -> customer_pb2.Customer:
    """The Customer message for a view, field by field."""
    utm = birthday = tier = None
    # registered_at is the createdAt of `Customer created`, so it tells
    # whether that event (the only source of utm) arrived.
    if c.registered_at is not None:
        utm = customer_pb2.Utm(
            source=c.utm.source, medium=c.utm.medium, campaign=c.utm.campaign
        )
    # Likewise the part's time is set exactly when its event arrived; the
    # other fields may be None even then (not sent).
    if c.tier.changed_at is not None:
        tier = customer_pb2.Tier(
            current=c.tier.current,
            previous=c.tier.previous,
            changed_at=timestamp(c.tier.changed_at),
        )
    if c.birthday.last_celebrated_at is not None:
        birthday = customer_pb2.Birthday(
            age=c.birthday.age,
            last_celebrated_at=timestamp(c.birthday.last_celebrated_at),
        )
    wallet = c.wallet_pass
    engagement = c.engagement
    return customer_pb2.Customer(
        customer_id=c.customer_id,
        email=c.email,
        first_name=c.first_name,
        last_name=c.last_name,
        phone_number=c.phone_number,
        origin=c.origin,
        referral=c.referral,
        utm=utm,
        registered_at=timestamp(c.registered_at),
        **number("points_balance", c.points_balance),
        **number("points_to_next_reward", c.points_to_next_reward),
        next_reward_name=c.next_reward_name,
        tier=tier,
        wallet_pass=customer_pb2.WalletPass(
            status=WALLET_PASS_STATUS[wallet.status],
            download_link=wallet.download_link,
            requested_at=timestamp(wallet.requested_at),
            installed_at=timestamp(wallet.installed_at),
            uninstalled_at=timestamp(wallet.uninstalled_at),
        ),
        coupons=[
            customer_pb2.Coupon(
                code=k.code,
                header=k.header,
                body=k.body,
                slug=k.slug,
                assigned_from=k.assigned_from,
                install_url=k.install_url,
                assigned_at=timestamp(k.assigned_at),
                pass_installed=k.pass_installed,
            )
            for k in c.coupons
        ],
        coupon_passes_installed=c.coupon_passes_installed,
        gift_cards=[
            customer_pb2.GiftCard(
                code=g.code,
                header=g.header,
                body=g.body,
                slug=g.slug,
                assigned_from=g.assigned_from,
                install_url=g.install_url,
                mail_sent=g.mail_sent,
                sent_at=timestamp(g.sent_at),
            )
            for g in c.gift_cards
        ],
        redeemable_rewards=[
            customer_pb2.RedeemableReward(
                reward_id=r.reward_id,
                reward_link=r.reward_link,
                reward_title=r.reward_title,
                **number("reward_value", r.reward_value),
                **number("reward_cost", r.reward_cost),
                **number("customer_remaining_balance", r.customer_remaining_balance),
                offered_at=timestamp(r.offered_at),
            )
            for r in c.redeemable_rewards
        ],
        redeemed_rewards=[
            customer_pb2.RedeemedReward(
                claim_id=r.claim_id,
                reward_id=r.reward_id,
                reward_link=r.reward_link,
                reward_title=r.reward_title,
                code=r.code,
                redeemed_at=timestamp(r.redeemed_at),
                refunded=r.refunded,
                refunded_at=timestamp(r.refunded_at),
            )
            for r in c.redeemed_rewards
        ],
        engagement=customer_pb2.Engagement(
            scans=engagement.scans,
            taps=engagement.taps,
            wallet_clicks=engagement.wallet_clicks,
            wallet_visits=engagement.wallet_visits,
            last_activity_at=timestamp(engagement.last_activity_at),
        ),
        birthday=birthday,
        event_count=c.event_count,
        position=c.position,
    )
