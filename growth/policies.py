"""Who may do what in growth (see messaging.policies for the pattern)."""

from messaging.policies import requires

can_view_referrals = requires("growth.view_referral", "growth.view_referralcode")
can_create_referral_codes = requires("growth.add_referralcode")
# Recording a friend's sign-up through the API: whoever may hand out codes.
can_record_referrals = requires("growth.view_referral", "growth.add_referralcode")
can_view_loyalty = requires("growth.view_loyaltyaccount", "growth.view_loyaltytransaction")
can_redeem_points = requires("growth.view_loyaltyaccount", "growth.add_loyaltytransaction")
can_view_gift_cards = requires("growth.view_giftcard")
can_issue_gift_cards = requires("growth.view_giftcard", "growth.issue_giftcard")
can_redeem_gift_cards = requires("growth.add_giftcardtransaction")
can_refund_gift_cards = requires("growth.view_giftcard", "growth.add_giftcardtransaction")
# The contact page's timeline: a card's ledger entries, and referrals without the codes list.
can_view_gift_card_ledger = requires("growth.view_giftcard", "growth.view_giftcardtransaction")
can_view_referral_list = requires("growth.view_referral")
# The console's own actions and the contact growth page's ledgers.
can_reject_referrals = requires("growth.reject_referral")
can_disable_gift_cards = requires("growth.disable_giftcard")
can_adjust_points = requires("growth.adjust_loyaltyaccount")
can_view_points_ledger = requires("growth.view_loyaltytransaction")
can_view_gift_card_transactions = requires("growth.view_giftcardtransaction")
# Referral coupons: the pool's codes are uploaded by whoever runs the program; nobody reads one back.
can_view_coupons = requires("growth.view_couponcode")
can_upload_coupons = requires("growth.view_referralprogram", "growth.add_couponcode")
