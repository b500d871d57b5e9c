"""The growth app's API resources, mounted by config/api.py under /api/v1/."""

from django.urls import path

from growth.api.giftcards import (
    ContactGiftCardsView,
    GiftCardDetailView,
    GiftCardsView,
    RedeemGiftCardView,
    RefundGiftCardView,
)
from growth.api.loyalty import LoyaltyLedgerView, LoyaltyView, RedeemPointsView
from growth.api.referrals import CouponPoolsView, ReferralsView, ReferralView

routes: list = []  # no viewsets: plain views only (config/api.py reads both)

urlpatterns = [
    path("contacts/<int:contact_id>/referral/", ReferralView.as_view(), name="contact-referral"),
    path("referrals/", ReferralsView.as_view(), name="referrals"),
    path("referral-programs/<int:program_id>/coupon-codes/", CouponPoolsView.as_view(), name="referral-coupon-pools"),
    path("contacts/<int:contact_id>/loyalty/", LoyaltyView.as_view(), name="contact-loyalty"),
    path("contacts/<int:contact_id>/loyalty/transactions/", LoyaltyLedgerView.as_view(), name="contact-loyalty-transactions"),
    path("contacts/<int:contact_id>/loyalty/redeem/", RedeemPointsView.as_view(), name="contact-loyalty-redeem"),
    path("contacts/<int:contact_id>/gift-cards/", ContactGiftCardsView.as_view(), name="contact-gift-cards"),
    path("gift-cards/", GiftCardsView.as_view(), name="gift-cards"),
    path("gift-cards/<int:card_id>/", GiftCardDetailView.as_view(), name="gift-card-detail"),
    path("gift-cards/redeem/", RedeemGiftCardView.as_view(), name="gift-card-redeem"),
    path("gift-cards/<int:card_id>/refund/", RefundGiftCardView.as_view(), name="gift-card-refund"),
]
